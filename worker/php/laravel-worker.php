<?php

declare(strict_types=1);

/*
 * drover's worker for Laravel applications: point worker.cmd at this file
 * and start drover in the app's root (or pass the root as an argument):
 *
 *     worker:
 *       cmd: [php, vendor/drover/drover/laravel-worker.php]   # composer
 *       cmd: [php, /opt/drover/worker/php/laravel-worker.php]  # a checkout
 *
 * Each worker boots the application once and serves every request with a
 * fresh sandbox of it (Drover\Laravel\Worker, docs/php.md "Laravel").
 */

require __DIR__ . '/autoload.php';

Drover\Laravel\Worker::serve($argv[1] ?? null);
