<?php

declare(strict_types=1);

namespace Drover;

use Drover\Runtime\Loop;

/**
 * Facts about the running worker: which slot it has and how many others
 * there are (for Message::send), as Swoole's $server->worker_id.
 */
final class Server
{
    /** "worker" or "task_worker". */
    public static function role(): string
    {
        return Loop::get()->role;
    }

    /** This worker's id: 0..workerNum-1 for workers, workerNum.. for task workers (as messages address them). */
    public static function workerId(): int
    {
        $l = Loop::get();
        return $l->role === 'task_worker' ? $l->workerNum + $l->workerId : $l->workerId;
    }

    /** The config's worker_num. */
    public static function workerNum(): int
    {
        return Loop::get()->workerNum;
    }

    /** The config's task_worker_num. */
    public static function taskWorkerNum(): int
    {
        return Loop::get()->taskWorkerNum;
    }

    /** The id of task worker $i (0-based) for Message::send. */
    public static function taskWorkerId(int $i): int
    {
        return Loop::get()->workerNum + $i;
    }

    /** Whether this process runs as a drover worker (serve() was called). */
    public static function running(): bool
    {
        return Loop::running();
    }
}
