<?php

declare(strict_types=1);

namespace Drover;

use Drover\Runtime\Loop;

/**
 * Timers run by the worker's loop between events, as Swoole's
 * Timer::tick / Timer::after. A PHP worker handles one event at a time, so
 * a timer that falls due during a request runs right after it: use timers
 * for periodic chores (refresh an in-memory cache, flush metrics), not for
 * deadlines inside a request.
 *
 *     Timer::tick(3_600_000, fn () => $cache->refresh()); // every hour
 *     Timer::after(500, fn () => error_log('half a second later'));
 *
 * What a timer throws or prints is logged; the worker carries on.
 */
final class Timer
{
    /** Calls $fn($timerId) every $ms milliseconds until cleared; returns the timer id. */
    public static function tick(int $ms, callable $fn): int
    {
        return Loop::get()->addTimer($ms, $ms, \Closure::fromCallable($fn));
    }

    /** Calls $fn($timerId) once, $ms milliseconds from now; returns the timer id. */
    public static function after(int $ms, callable $fn): int
    {
        return Loop::get()->addTimer($ms, null, \Closure::fromCallable($fn));
    }

    /** Cancels a timer; false if it had already run (after) or was cleared. */
    public static function clear(int $timerId): bool
    {
        return Loop::get()->clearTimer($timerId);
    }
}
