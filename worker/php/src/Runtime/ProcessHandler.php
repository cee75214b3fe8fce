<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * A user process gets no events: the loop runs its timers and messages
 * until drover stops it.
 *
 * @internal Use Drover\Process::serve.
 */
final class ProcessHandler implements Handler
{
    public function role(): string
    {
        return 'process';
    }

    public function frame(int $type, int $flags, int $id, string $payload): void
    {
        // Nothing comes to a user process but what the loop handles.
    }

    public function abort(string $why): void
    {
    }

    public function current(): string
    {
        return '';
    }
}
