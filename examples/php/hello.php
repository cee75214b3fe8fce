<?php

// A drover PHP worker: GET / answers "Hello, World!".
//   make run-php     (or: bin/drover start -c examples/php/hello.yaml)
//   curl http://127.0.0.1:8082/
// The same script also runs under php-fpm, which scripts/bench/php.sh
// uses to compare the two.

declare(strict_types=1);

require __DIR__ . '/../../worker/php/autoload.php';

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\Worker;

Worker::serve(static function (Request $r): Response {
    return match ($r->path()) {
        '/' => Response::text('Hello, World!'),
        '/echo' => new Response(200, ['Content-Type' => $r->header('content-type') ?? 'application/octet-stream'], $r->body),
        '/stream' => new Response(200, ['Content-Type' => 'text/plain'], (static function () use ($r) {
            for ($i = 1, $n = (int) $r->query('n', 3); $i <= $n; $i++) {
                yield "tick $i\n";
            }
        })()),
        default => Response::text("no route for {$r->path()}\n", 404),
    };
});
