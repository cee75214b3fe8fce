<?php

// The PHP SDK's payload codec alone (Drover\Runtime\Codec), per request:
// a Request decoded as the master writes it, the hello-world Response
// encoded, each beside php-msgpack doing the same with its own calls (what
// the SDK did before the codec, and its floor). Rounds of 5000 calls, the
// best round reported, which a loaded machine disturbs least.
//   php scripts/bench/php-codec.php [ROUNDS=40]

declare(strict_types=1);

require __DIR__ . '/../../worker/php/autoload.php';

use Drover\Runtime\Codec;

$rounds = max(1, (int) ($argv[1] ?? 40));
$req = Codec::encodeRequest(['method' => 'GET', 'target' => '/', 'proto' => 'HTTP/1.1',
    'headers' => ['Host', '127.0.0.1:8082', 'User-Agent', 'wrk', 'Accept', '*/*'],
    'content_length' => 0, 'remote' => '127.0.0.1:40000', 'listener' => 0]);
$headers = ['Content-Type', 'text/plain; charset=UTF-8', 'Content-Length', '13'];
$body = 'Hello, World!';
$cases = [
    'Codec::decodeRequest' => static function (int $n) use ($req): void {
        for ($i = 0; $i < $n; $i++) {
            $m = Codec::decodeRequest($req);
            if (!isset($m['method'], $m['target']) || !empty($m['body_follows'])) {
                exit("bad decode\n");
            }
        }
    },
    'msgpack_unpack' => static function (int $n) use ($req): void {
        for ($i = 0; $i < $n; $i++) {
            $m = msgpack_unpack($req);
            if (!is_array($m) || !isset($m['method'], $m['target']) || !empty($m['body_follows'])) {
                exit("bad decode\n");
            }
        }
    },
    'Codec::encodeResponse' => static function (int $n) use ($headers, $body): void {
        for ($i = 0; $i < $n; $i++) {
            Codec::encodeResponse(200, $headers, $body);
        }
    },
    'msgpack_pack (body as str)' => static function (int $n) use ($headers, $body): void {
        for ($i = 0; $i < $n; $i++) {
            msgpack_pack(['status' => 200, 'headers' => $headers, 'body' => $body]);
        }
    },
];
$best = [];
for ($r = 0; $r < $rounds; $r++) {
    foreach ($cases as $name => $run) {
        $t = hrtime(true);
        $run(5000);
        $best[$name] = min($best[$name] ?? INF, (hrtime(true) - $t) / 5000);
    }
}
foreach ($best as $name => $ns) {
    printf("%-28s %6.0f ns\n", $name, $ns);
}
