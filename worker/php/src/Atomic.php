<?php

declare(strict_types=1);

namespace Drover;

use Drover\Runtime\Shm;

/**
 * A counter every worker, task worker and user process shares, with
 * Swoole\Atomic's methods, declared in drover.yaml (atomics: [requests]):
 *
 *     $requests = new Drover\Atomic('requests');   // was: new Swoole\Atomic()
 *     $requests->add();                             // the new value, across every process
 *
 * A signed 64-bit integer (Swoole\Atomic\Long's range); add, sub and
 * cmpset are one atomic instruction each (libatomic), so that increments
 * from PHP and Go workers add up. wait and wakeup use it as Swoole does,
 * as an event flag: wakeup turns a 0 into 1 and wakes waiters, wait takes
 * a 1 back to 0 or sleeps (a futex) until a wakeup.
 */
final class Atomic
{
    private Shm $shm;
    private int $off;

    /** Opens the atomic $name of drover.yaml's atomics:. */
    public function __construct(string $name)
    {
        $this->shm = Shm::get();
        $off = $this->shm->atomics[$name] ?? null;
        if ($off === null) {
            $have = implode(', ', array_keys($this->shm->atomics)) ?: 'none';
            throw new \InvalidArgumentException("drover: no atomic \"$name\" (declared: $have; add it under atomics: in drover.yaml)");
        }
        $this->off = $off;
    }

    /** Adds $addValue; returns the new value. */
    public function add(int $addValue = 1): int
    {
        return Table::wrapAdd($this->shm->fetchAdd64($this->off, $addValue), $addValue);
    }

    /** Subtracts $subValue; returns the new value. */
    public function sub(int $subValue = 1): int
    {
        return $this->add(-$subValue);
    }

    public function get(): int
    {
        return $this->shm->i64[$this->off >> 3];
    }

    public function set(int $value): void
    {
        $this->shm->store64($this->off, $value);
    }

    /** Stores $setValue if the value is $cmpValue; whether it did. */
    public function cmpset(int $cmpValue, int $setValue): bool
    {
        return $this->shm->cas64($this->off, $cmpValue, $setValue);
    }

    /**
     * Takes the value from 1 to 0 and returns true, sleeping while it is 0
     * until a wakeup, for at most $timeout seconds (-1: no bound). False
     * at the timeout, or at once when the value is neither 0 nor 1.
     */
    public function wait(float $timeout = 1.0): bool
    {
        if ($this->cmpset(1, 0)) {
            return true;
        }
        $shm = $this->shm;
        $wake = $this->off + 8;
        $waiters = $this->off + 12;
        $deadline = $timeout >= 0 ? hrtime(true) / 1e9 + $timeout : null;
        while (true) {
            $seq = $shm->u32[$wake >> 2];
            $shm->fetchAdd32($waiters, 1);
            if ($this->cmpset(1, 0)) {
                $shm->fetchAdd32($waiters, -1);
                return true;
            }
            if ($this->get() !== 0) {
                $shm->fetchAdd32($waiters, -1);
                return false;
            }
            $left = -1.0;
            if ($deadline !== null && ($left = $deadline - hrtime(true) / 1e9) <= 0) {
                $shm->fetchAdd32($waiters, -1);
                return false;
            }
            $shm->futexWait($wake, $seq, $left);
            $shm->fetchAdd32($waiters, -1);
            if ($this->cmpset(1, 0)) {
                return true;
            }
        }
    }

    /** Turns a 0 into 1 and wakes up to $n waiters; true, as Swoole's. */
    public function wakeup(int $n = 1): bool
    {
        $shm = $this->shm;
        if ($this->cmpset(0, 1) && $shm->u32[($this->off + 12) >> 2] > 0) {
            $shm->fetchAdd32($this->off + 8, 1);
            $shm->futexWake($this->off + 8, max($n, 1));
        }
        return true;
    }
}
