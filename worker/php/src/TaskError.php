<?php

declare(strict_types=1);

namespace Drover;

/**
 * A task that gave no result: the task worker reported an error (its
 * message), or drover could not run it (no task workers, task_queue_max
 * reached, the task worker died, task_timeout), or the caller's wait timed
 * out ($timedOut). Task::wait throws it; Task::waitMulti and Task::async
 * callbacks get it in place of a result.
 */
final class TaskError extends \RuntimeException
{
    public function __construct(string $message, public readonly bool $timedOut = false)
    {
        parent::__construct($message);
    }
}
