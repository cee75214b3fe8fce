<?php

declare(strict_types=1);

namespace Drover\Task;

use Drover\Runtime\Loop;
use Drover\Runtime\TaskHandler;

/**
 * A drover task worker in PHP (task_worker.cmd), as Swoole's onTask: runs
 * the tasks workers send (in PHP, Go or any language) one at a time and
 * returns each one's result.
 *
 *     Worker::serve(function (string $task, int $id): string {
 *         [$op, $n] = explode(' ', $task);
 *         return (string) ($n * $n);
 *     });
 *
 * The callable returns the result as a string (null for an empty result).
 * An exception fails the task: the worker that asked gets a TaskError with
 * its message, and the log gets file:line; the task worker carries on. A
 * PHP fatal error fails the task the same way, then the task worker exits
 * and drover starts a new one.
 */
final class Worker
{
    /** @param callable(string $task, int $taskId): ?string $onTask */
    public static function serve(callable $onTask): never
    {
        Loop::run(new TaskHandler(\Closure::fromCallable($onTask)));
    }
}
