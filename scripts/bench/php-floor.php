<?php

// The least a PHP worker can do per request, for scripts/bench/php-sdk.php
// to measure beside the SDK: read a frame, decode the Request (the CGI
// layout), make $_SERVER of it and the process's own, call a handler,
// encode the Response, write it. No SDK, no Request or Response objects,
// no output capture, no sessions, no cancel, flow control or errors: what
// is left when every feature is gone. It shows how much of the SDK's cost
// is the protocol's and PHP's own (system calls, msgpack, the $_SERVER
// union) and how much is the SDK's.
//   php scripts/bench/php-sdk.php scripts/bench/php-floor.php 100000 8
$s = socket_import_stream(fopen('php://fd/3', 'r+'));
socket_set_block($s);
$hello = msgpack_pack(['version' => 1, 'pid' => getmypid(), 'concurrency' => 1, 'role' => 'worker', 'sdk' => 'php', 'flow' => true, 'prefetch' => 1, 'cgi' => true]);
socket_write($s, pack('NCCnJ', strlen($hello), 1, 0, 0, 0) . $hello);
$in = ''; $off = 0; $base = $_SERVER;
$handler = static fn (string $path) => 'Hello, World!';
while (true) {
    if (strlen($in) - $off < 16 || strlen($in) - $off < 16 + unpack('N', $in, $off)[1]) {
        if ($off) { $in = substr($in, $off); $off = 0; }
        $d = ''; if (!socket_recv($s, $d, 262144, 0)) exit(0);
        $in .= $d; continue;
    }
    $h = unpack('Nl/nt/nr/Ji', $in, $off);
    $p = substr($in, $off + 16, $h['l']); $off += 16 + $h['l'];
    if ($off === strlen($in)) { $in = ''; $off = 0; }
    if ($h['t'] >> 8 !== 16) { if ($h['t'] >> 8 === 2) exit(0); continue; }
    $m = msgpack_unpack($p);
    $m['REQUEST_TIME_FLOAT'] = microtime(true);
    $_SERVER = $m + $base;
    $body = $handler($m['DOCUMENT_URI']);
    $resp = "\x83\xa6status\xcc\xc8\xa7headers" . msgpack_pack(['Content-Type', 'text/plain; charset=utf-8']) . "\xa4body\xc4" . chr(strlen($body)) . $body;
    socket_write($s, pack('NCCnJ', strlen($resp), 18, 1, 0, $h['i']) . $resp);
    $_SERVER = $base;
}
