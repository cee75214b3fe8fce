<?php

// examples/php/tasks.php: the PHP twin of examples/tasks (Go). One script
// plays both roles: drover starts it as a worker (HTTP) and as a task
// worker, and either side can be swapped for the Go binary, since both
// speak the same tasks ("square <i> <delay>" -> "<i*i>").
//   make build && bin/drover start -c examples/php/tasks.yaml
//   curl 'http://127.0.0.1:8083/fanout?n=100'     # 338350
//   curl 'http://127.0.0.1:8083/async'            # a task result delivered to a callback
//   curl 'http://127.0.0.1:8083/counter'          # a count a timer keeps in memory

declare(strict_types=1);

require __DIR__ . '/../../worker/php/autoload.php';

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\Worker;
use Drover\Task;
use Drover\TaskError;
use Drover\Timer;

if (getenv('DROVER_ROLE') === 'task_worker') {
    Drover\Task\Worker::serve(static function (string $task): string {
        $f = explode(' ', $task);
        if (count($f) !== 3 || $f[0] !== 'square' || !is_numeric($f[1])) {
            throw new InvalidArgumentException("unknown task \"$task\"");
        }
        $delay = (float) $f[2] * (str_ends_with($f[2], 'ms') ? 1000 : (str_ends_with($f[2], 's') ? 1_000_000 : 1));
        usleep((int) $delay);
        return (string) ((int) $f[1] ** 2);
    });
}

$ticks = 0;
$lastResult = 'none yet';
Timer::tick(100, static function () use (&$ticks): void {
    $ticks++;
});

Worker::serve(static function (Request $r) use (&$ticks, &$lastResult): Response {
    switch ($r->path()) {
        case '/fanout':
            $n = filter_var($r->query('n'), FILTER_VALIDATE_INT, ['options' => ['min_range' => 1, 'max_range' => 10000]]);
            if ($n === false) {
                return Response::text("n must be a number from 1 to 10000\n", 400);
            }
            $delay = (string) $r->query('delay', '50ms');
            $tasks = [];
            for ($i = 1; $i <= $n; $i++) {
                $tasks[] = "square $i $delay";
            }
            $sum = 0;
            $failed = [];
            foreach (Task::waitMulti($tasks, 30.0) as $result) {
                if ($result instanceof TaskError) {
                    $failed[] = $result->getMessage();
                } else {
                    $sum += (int) $result;
                }
            }
            if ($failed) {
                return Response::text(sprintf("%d of %d tasks failed (first: %s)\n", count($failed), $n, $failed[0]), 502);
            }
            return Response::text("$sum\n");
        case '/async':
            $id = Task::async('square 7 10ms', static function (string|TaskError $r) use (&$lastResult): void {
                $lastResult = $r instanceof TaskError ? 'error: ' . $r->getMessage() : $r;
            });
            return Response::text("sent task $id; last result: $lastResult\n");
        case '/counter':
            return Response::text(sprintf("timer ticks %d in pid %d\n", $ticks, getmypid()));
    }
    return Response::text("no route\n", 404);
});
