<?php

declare(strict_types=1);

namespace Drover;

use Drover\Runtime\Loop;

/**
 * Messages between drover's workers, task workers and user processes, as
 * Swoole's sendMessage / onPipeMessage. Worker ids are 0..workerNum-1 for
 * workers, then the task workers (Server::taskWorkerId(0) …). A message
 * from one sender arrives in order; one for an id with no worker running is
 * dropped (drover logs it).
 *
 *     Message::onMessage(function (int $from, string $data) { ... });
 *     Message::send(0, 'invalidate users');
 */
final class Message
{
    /** Sends $data to the worker with id $workerId. */
    public static function send(int $workerId, string $data): void
    {
        Loop::get()->sendMessage($workerId, $data);
    }

    /** Sets the callback for messages: fn(int $fromWorkerId, string $data). Null removes it. */
    public static function onMessage(?callable $fn): void
    {
        Loop::get()->onMessage($fn === null ? null : \Closure::fromCallable($fn));
    }
}
