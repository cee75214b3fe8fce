<?php

// A hot cache in shared memory: a user process loads hotcache.json into the
// table "items" at start and every HOTCACHE_EVERY seconds; the workers
// answer from the table, never from the file. One script, two roles (see
// hotcache.yaml):
//
//   make build && bin/drover start -c examples/php/hotcache.yaml
//   curl http://127.0.0.1:8084/item?id=2     {"name":"cappuccino","price":3.1,"loaded":1733500000}
//   curl http://127.0.0.1:8084/stats         {"items":3,"loads":1,"size":10000,...}
//
// Edit hotcache.json: the next load (within HOTCACHE_EVERY seconds) serves
// the new content to every worker at once; items gone from the file go from
// the table. A reload or a crashed worker loses nothing: the table is the
// master's (docs/tables.md).

declare(strict_types=1);

require __DIR__ . '/../../worker/php/autoload.php';

use Drover\Atomic;
use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Table;
use Drover\Timer;

$items = new Table('items');
$loads = new Atomic('loads');

if (getenv('DROVER_ROLE') === 'process') {
    $file = getenv('HOTCACHE_FILE') ?: __DIR__ . '/hotcache.json';
    $every = max(1, (int) (getenv('HOTCACHE_EVERY') ?: 5));
    $load = static function () use ($items, $loads, $file): void {
        $json = @file_get_contents($file);
        $data = $json === false ? null : json_decode($json, true);
        if (!is_array($data)) {
            error_log("hotcache: cannot read $file; the table keeps what it has");
            return;
        }
        $now = time();
        foreach ($data as $id => $item) {
            if (!$items->set((string) $id, ['name' => (string) ($item['name'] ?? ''), 'price' => (float) ($item['price'] ?? 0), 'loaded' => $now])) {
                error_log("hotcache: item $id not stored (see the warning above)");
            }
        }
        foreach ($items as $id => $_) {
            if (!array_key_exists($id, $data)) {
                $items->del($id);
            }
        }
        $loads->add();
    };
    $load();
    Timer::tick($every * 1000, $load);
    Drover\Process::serve();
}

Drover\Http\Worker::serve(static function (Request $r) use ($items, $loads) {
    switch ($r->path()) {
        case '/item':
            $item = $items->get((string) $r->query('id', ''));
            return $item === false
                ? new Response(404, ['Content-Type' => 'application/json'], '{"error":"no such item"}')
                : Response::json($item);
        case '/stats':
            return Response::json(['items' => count($items), 'loads' => $loads->get()] + $items->stats());
    }
    return new Response(404, [], "try /item?id=1 or /stats\n");
});
