<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * What a kind of worker (HTTP, stream, task) does with the frames the loop
 * does not handle itself.
 *
 * @internal
 */
interface Handler
{
    /** The role this handler plays: "worker" or "task_worker". */
    public function role(): string;

    /** Handles one frame from the master. */
    public function frame(int $type, int $flags, int $id, string $payload): void;

    /**
     * The worker is dying (a PHP fatal error, exit() in the handler): answer
     * the event in flight, if any, so that its client is not left hanging.
     * $why is for the answer's log line.
     */
    public function abort(string $why): void;

    /** What the worker is doing now, for log lines ("GET /path"), or '' when idle. */
    public function current(): string;
}
