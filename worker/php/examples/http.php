<?php

// The smallest HTTP worker: bin/drover start -c worker/php/examples/drover.yaml
// then curl http://127.0.0.1:8085/hello?name=you

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\Worker;
use Drover\Timer;

$started = time();                 // bootstrap: runs once per worker
$hits = 0;                         // lives as long as the worker
Timer::tick(60_000, static function () use (&$hits): void {
    error_log("served $hits requests in the last minute");   // goes to drover's log
    $hits = 0;
});

Worker::serve(static function (Request $r) use (&$hits, $started): Response {
    $hits++;
    return match ($r->path()) {
        '/hello' => Response::text(sprintf("Hello, %s!\n", $r->query('name', 'World'))),
        '/json' => Response::json(['received' => $r->json(), 'worker_up_s' => time() - $started]),
        default => Response::text("try /hello?name=you\n", 404),
    };
});
