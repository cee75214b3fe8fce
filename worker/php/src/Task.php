<?php

declare(strict_types=1);

namespace Drover;

use Drover\Runtime\Loop;

/**
 * Hands work to drover's task workers (task_worker.cmd, in PHP, Go or any
 * language speaking the protocol) from a worker, as Swoole's task /
 * taskwait / taskWaitMulti. A task and its result are strings (bytes):
 * encode structured data yourself (json_encode, msgpack_pack), so that task
 * workers in any language can read it.
 *
 *     $sum = Task::wait('square 7 0s');                    // "49"
 *     $all = Task::waitMulti(['a' => 'square 2 0s', 'b' => 'square 3 0s']);
 *     Task::async('send-mail 42', function (string|TaskError $r) { ... });
 */
final class Task
{
    /**
     * Sends a task and returns at once with its id. $onFinish($result, $id),
     * if given, runs between events once the result is back; $result is the
     * result string or a TaskError.
     */
    public static function async(string $data, ?callable $onFinish = null): int
    {
        return Loop::get()->task($data, $onFinish === null ? null : \Closure::fromCallable($onFinish));
    }

    /**
     * Sends a task and waits up to $timeout seconds for its result.
     *
     * @throws TaskError when the task failed, could not run, or timed out
     */
    public static function wait(string $data, float $timeout = 10.0): string
    {
        $r = Loop::get()->taskWaitMulti([$data], $timeout)[0];
        if ($r instanceof TaskError) {
            throw $r;
        }
        return $r;
    }

    /**
     * Sends every task at once and waits up to $timeout seconds in all for
     * their results, which come back under the keys of $tasks, each a
     * string or a TaskError (failed, or no result in time).
     *
     * @param array<array-key, string> $tasks
     * @return array<array-key, string|TaskError>
     */
    public static function waitMulti(array $tasks, float $timeout = 10.0): array
    {
        return Loop::get()->taskWaitMulti($tasks, $timeout);
    }
}
