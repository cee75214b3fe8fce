<?php

// The PHP worker of the process hygiene tests (e2e/hygiene_test.go).

declare(strict_types=1);

require __DIR__ . '/../../../worker/php/autoload.php';

use Drover\Http\Request;
use Drover\Http\Response;

Drover\Http\Worker::serve(static function (Request $r) {
    switch ($r->path()) {
        case '/sigign':
            // The signal dispositions of a program this handler starts.
            return Response::text((string) shell_exec('grep SigIgn /proc/self/status'));
        case '/bg':
            // A background child, as `cmd &` in a worker script: its pid.
            return Response::text(trim((string) shell_exec('sleep 301 > /dev/null 2>&1 & echo $!')));
    }
    return Response::text('not found', 404);
});
