<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * Paces a wait for another process's lock (the Go SDK's waiter): spins
 * first (the holder is done in a moment), then yields the CPU (the holder
 * may need it), then sleeps, doubling up to a millisecond; every so often
 * it is time to ask whether the holder is gone.
 *
 * @internal
 */
final class Waiter
{
    private const SPIN = 64;
    private const YIELD = 64;
    private const CHECK_EVERY = 16;

    private int $n = 0;
    private int $sleepUs = 0;
    private ?float $deadline = null;

    /** Waits one round; true when it is time to check the holder. */
    public function pause(Shm $shm): bool
    {
        $this->n++;
        if ($this->n <= self::SPIN) {
            return false;
        }
        if ($this->n <= self::SPIN + self::YIELD) {
            $shm->libc->sched_yield();
        } else {
            $this->sleepUs = $this->sleepUs === 0 ? 10 : min(2 * $this->sleepUs, 1000);
            usleep($this->sleepUs);
        }
        return $this->n === self::SPIN + 1 || ($this->n - self::SPIN) % self::CHECK_EVERY === 0;
    }

    /** Whether the wait passed $bound seconds, counted from its first call past the spins. */
    public function expired(float $bound): bool
    {
        if ($this->n <= self::SPIN) {
            return false;
        }
        $now = hrtime(true) / 1e9;
        if ($this->deadline === null) {
            $this->deadline = $now + $bound;
            return false;
        }
        return $now > $this->deadline;
    }
}
