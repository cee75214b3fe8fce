<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * Runs Task frames with a callable and answers each with one TaskResult.
 *
 * @internal Use Drover\Task\Worker::serve.
 */
final class TaskHandler implements Handler
{
    private ?int $id = null;

    public function __construct(private readonly \Closure $onTask)
    {
    }

    public function role(): string
    {
        return 'task_worker';
    }

    public function current(): string
    {
        return $this->id === null ? '' : "task {$this->id}";
    }

    public function frame(int $type, int $flags, int $id, string $payload): void
    {
        if ($type !== Frame::TASK) {
            return; // not for task workers, or from a later protocol version
        }
        $loop = Loop::get();
        $this->id = $id;
        $level = $loop->startCapture();
        try {
            $result = ($this->onTask)($payload, $id);
            if ($result !== null && !is_string($result)) {
                throw new \UnexpectedValueException(sprintf('the task handler returned %s: return a string (encode it, e.g. json_encode) or null', get_debug_type($result)));
            }
            $loop->write(Frame::TASK_RESULT, $id, (string) $result);
        } catch (\Throwable $e) {
            Log::line(sprintf('task %d failed: uncaught %s; the asking worker gets the error, the task worker carries on', $id, Log::describe($e)));
            $loop->write(Frame::TASK_RESULT, $id, $e->getMessage() !== '' ? $e->getMessage() : $e::class, Frame::FLAG_ABORT);
        } finally {
            $loop->endCapture($level, "task $id");
            $this->id = null;
        }
    }

    public function abort(string $why): void
    {
        if ($this->id !== null) {
            Loop::get()->write(Frame::TASK_RESULT, $this->id, "$why in the PHP task worker (pid " . getmypid() . ')', Frame::FLAG_ABORT);
        }
    }
}
