<?php

declare(strict_types=1);

namespace Drover\Runtime;

use function Drover\Native\answer;
use function Drover\Native\flush;
use function Drover\Native\has_cancel;
use function Drover\Native\pending;
use function Drover\Native\read;
use function Drover\Native\response;
use function Drover\Native\write;

/**
 * The channel with drover's PHP extension (worker/php/ext) doing its work
 * in C: the read buffer, each frame's header, the Request map, the
 * Response's encoding and the write buffer. What goes over the wire, and
 * what each method returns, is Channel's (tests/Runtime/NativeTest.php
 * runs both on the same frames); Channel::open picks this one when
 * Native::enabled().
 *
 * The extension keeps one channel per process: a worker has one.
 *
 * @internal
 */
final class NativeChannel extends Channel
{
    public function __construct(\Socket $socket, int $fd)
    {
        parent::__construct($socket);
        \Drover\Native\open($fd);
    }

    public function read(?float $timeout = null): ?array
    {
        $f = read($timeout);
        if ($f === false) {
            $this->masterGone(\Drover\Native\error());
        }
        return $f;
    }

    public function gone(): never
    {
        $this->masterGone(\Drover\Native\error());
    }

    public function hasCancel(int $id): bool
    {
        return has_cancel($id);
    }

    public function response(int $id, int $status, array $headers, string $body = '', int $flags = Frame::FLAG_END): void
    {
        response($id, $status, $headers, $body, $flags);
    }

    public function answer(int $id, \Drover\Http\Response $res, string $body): void
    {
        // The header list is built in C from the Response's own map.
        if (!answer($id, $res->status, $res->headerMap(), $body)) {
            response($id, $res->status, $res->wireHeaders(), $body);
        }
    }

    public function write(int $type, int $id, string $payload = '', int $flags = 0): void
    {
        write($type, $id, $payload, $flags);
    }

    public function pending(): bool
    {
        return pending();
    }

    public function flush(): void
    {
        if (!flush()) {
            $this->masterGone(\Drover\Native\error());
        }
    }
}
