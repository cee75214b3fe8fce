<?php

declare(strict_types=1);

namespace Drover\Stream;

use Drover\Runtime\Loop;
use Drover\Runtime\StreamHandler;

/**
 * Serves stream listeners (protocol: length, eof, raw) with callbacks, as
 * Swoole's onConnect / onReceive / onClose:
 *
 *     Worker::serve(
 *         onReceive: fn (int $conn, string $data) => Worker::send($conn, $data), // echo
 *         onConnect: fn (int $conn, array $info) => error_log("hello {$info['remote']}"),
 *         onClose: fn (int $conn) => null,
 *     );
 *
 * $data is one packet as the listener cut it (with its length header or
 * package_eof). send() and close() work on any connection id, at any time
 * (from a timer too), as Swoole's $server->send($fd, …). What a callback
 * throws or prints is logged; the worker carries on.
 */
final class Worker
{
    /**
     * @param callable(int $conn, string $data): void $onReceive
     * @param ?callable(int $conn, array{listener: int, remote: string, local: string} $info): void $onConnect
     * @param ?callable(int $conn, string $reason): void $onClose
     */
    public static function serve(callable $onReceive, ?callable $onConnect = null, ?callable $onClose = null): never
    {
        Loop::run(new StreamHandler(
            \Closure::fromCallable($onReceive),
            $onConnect === null ? null : \Closure::fromCallable($onConnect),
            $onClose === null ? null : \Closure::fromCallable($onClose),
        ));
    }

    /** Sends bytes to connection $conn (dropped if it is closed). */
    public static function send(int $conn, string $data): void
    {
        StreamHandler::send($conn, $data);
    }

    /**
     * Binds connection $conn to user id $uid for dispatch_mode 5 (Swoole's
     * bind): from then on its events go to worker $uid % worker_num.
     */
    public static function bind(int $conn, int $uid): void
    {
        StreamHandler::bind($conn, $uid);
    }

    /** Closes connection $conn once what was sent to it before is written. */
    public static function close(int $conn): void
    {
        StreamHandler::close($conn);
    }
}
