<?php
// $_SERVER for a request, set and reset: array_replace of the process's
// $_SERVER and the request's keys (the pure-PHP SDK) against drover's PHP
// extension's server_enter/server_leave (in place), for the environment
// this runs in; then checks that both give the same arrays.
//   php -d extension=bin/php-ext/drover.so scripts/bench/php-server-env.php
//   env $(for i in $(seq 200); do echo V$i=value$i; done) php -d extension=bin/php-ext/drover.so scripts/bench/php-server-env.php
$s = msgpack_unpack(msgpack_pack(['REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/', 'QUERY_STRING' => '', 'SERVER_PROTOCOL' => 'HTTP/1.1',
    'REMOTE_ADDR' => '127.0.0.1', 'REMOTE_PORT' => 40000, 'REQUEST_SCHEME' => 'http', 'DOCUMENT_URI' => '/',
    'HTTP_HOST' => '127.0.0.1:8082', 'HTTP_USER_AGENT' => 'wrk', 'HTTP_ACCEPT' => '*/*', 'SERVER_NAME' => '127.0.0.1', 'REQUEST_TIME' => 1, 'REQUEST_TIME_FLOAT' => 1.5]));
$n = 1000000; $base = $_SERVER;
function f() { return $_SERVER['HTTP_HOST']; }
for ($r = 0; $r < 2; $r++) {
$t = hrtime(true); for ($i = 0; $i < $n; $i++) { $_SERVER = array_replace($base, $s); f(); $_SERVER = $base; } fprintf(STDERR, "array_replace+reset %.0f ns\n", (hrtime(true)-$t)/$n);
$t = hrtime(true); for ($i = 0; $i < $n; $i++) { Drover\Native\server_enter($s); f(); Drover\Native\server_leave(); } fprintf(STDERR, "native enter/leave %.0f ns\n", (hrtime(true)-$t)/$n);
}
fprintf(STDERR, "\$_SERVER has %d keys\n", count($base));
var_dump($_SERVER === $base, array_keys($_SERVER) === array_keys($base));
Drover\Native\server_enter($s); var_dump($_SERVER === array_replace($base, $s), array_keys($_SERVER) === array_keys(array_replace($base, $s))); $_SERVER['X'] = 1; Drover\Native\server_leave(); var_dump($_SERVER === $base);
$keep = null; Drover\Native\server_enter($s); $keep = $_SERVER; Drover\Native\server_leave(); var_dump($_SERVER === $base, $keep === array_replace($base, $s));
