<?php

// The PHP handler of scripts/bench/tables.sh: GET /item?id=K answers item K
// (1..1000) as "name price", from the shared table items (argument
// "table") or from an array each worker builds for itself ("map").

declare(strict_types=1);

require __DIR__ . '/../../worker/php/autoload.php';

use Drover\Http\Request;
use Drover\Http\Response;

$items = [];
for ($i = 1; $i <= 1000; $i++) {
    $items[(string) $i] = ['name' => "item number $i", 'price' => $i / 10];
}
if (end($argv) === 'table') {
    $t = new Drover\Table('items');
    foreach ($items as $id => $it) {
        $t->set((string) $id, $it);
    }
    $get = static fn (string $id) => $t->get($id);
} else {
    $get = static fn (string $id) => $items[$id] ?? false;
}
Drover\Http\Worker::serve(static function (Request $r) use ($get) {
    $it = $get((string) $r->query('id', ''));
    return $it === false ? new Response(404, [], 'no such item') : Response::text($it['name'] . ' ' . $it['price']);
});
