<?php

// A PHP worker over the shared table t (hits int, value string(64)) and the
// atomic requests, for e2e/tables_test.go. The task worker is Go
// (E2E_HANDLER=tables), reading and incrementing the same rows.
//
//   /set?k=K&v=V    value of K = V; answers this worker's pid
//   /get?k=K        "V N pid" (value, hits, this worker's pid); 404 when absent
//   /incr?k=K       hits of K + 1 here, in PHP; answers the new count
//   /goincr?k=K     the same by the Go task worker; answers its count
//   /goget?k=K      "V N" as the Go task worker reads it
//   /requests       the atomic, which /incr adds to here and the Go task worker in /goincr

declare(strict_types=1);

require __DIR__ . '/../../../worker/php/autoload.php';

use Drover\Atomic;
use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Table;
use Drover\Task;

$t = new Table('t');
$requests = new Atomic('requests');

Drover\Http\Worker::serve(static function (Request $r) use ($t, $requests) {
    $k = (string) $r->query('k', '');
    switch ($r->path()) {
        case '/set':
            return $t->set($k, ['value' => (string) $r->query('v', '')])
                ? Response::text((string) getmypid())
                : new Response(500, [], 'set failed');
        case '/get':
            $row = $t->get($k);
            return $row === false
                ? new Response(404, [], 'absent')
                : Response::text("{$row['value']} {$row['hits']} " . getmypid());
        case '/incr':
            $requests->add();
            return Response::text((string) $t->incr($k, 'hits'));
        case '/goincr':
            return Response::text(Task::wait("incr $k"));
        case '/goget':
            return Response::text(Task::wait($k));
        case '/requests':
            return Response::text((string) $requests->get());
    }
    return new Response(404, [], 'no such route');
});
