<?php

// A PHP worker that sleeps before it answers (GET /?ms=20: 20 ms, the
// default): the handler of scripts/bench/pool.sh, where a pool's size
// decides how many requests a second it serves.

declare(strict_types=1);

require __DIR__ . '/../../worker/php/autoload.php';

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\Worker;

Worker::serve(static function (Request $r): Response {
    usleep(1000 * (int) $r->query('ms', '20'));
    return Response::text('slept');
});
