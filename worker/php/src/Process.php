<?php

declare(strict_types=1);

namespace Drover;

use Drover\Runtime\Loop;
use Drover\Runtime\ProcessHandler;

/**
 * A drover user process in PHP (processes: in drover.yaml), as Swoole's
 * addProcess: one per server beside the workers, restarted when it dies,
 * left running on reload. It gets no requests; it runs timers and
 * messages until drover stops it: a cache refresher, a metrics flusher.
 *
 *     $cache = new Drover\Table('cache');
 *     Timer::tick(60_000, fn () => refresh($cache));   // every minute
 *     Drover\Process::serve();
 *
 * Set up timers and Message::onMessage before serve(), which never returns.
 */
final class Process
{
    public static function serve(): never
    {
        Loop::run(new ProcessHandler());
    }
}
