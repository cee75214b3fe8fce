<?php

// The PHP SDK's own cost per request, without drover's master: this script
// plays the master on a socket pair, starts a PHP worker script as drover
// would (fd 3, DROVER_ROLE), keeps DEPTH requests queued at it and counts
// answers. DEPTH 1 is a round trip per request (two wake-ups); a larger
// DEPTH leaves only the worker's own work (decode, handler, encode).
//   php scripts/bench/php-sdk.php examples/php/hello.php [N=50000] [DEPTH=8] [php options...]

declare(strict_types=1);

if ($argc < 2) {
    fwrite(STDERR, "usage: php scripts/bench/php-sdk.php WORKER.php [N] [DEPTH] [php options...]\n");
    exit(2);
}
[$script, $n, $depth] = [$argv[1], (int) ($argv[2] ?? 50000), max(1, (int) ($argv[3] ?? 8))];
$pair = [];
socket_create_pair(AF_UNIX, SOCK_STREAM, 0, $pair) || exit("socketpair failed\n");
$theirs = socket_export_stream($pair[1]);
$env = getenv() + ['DROVER_ROLE' => 'worker', 'DROVER_FD' => '3', 'DROVER_WORKER_ID' => '0', 'DROVER_WORKER_NUM' => '1'];
$proc = proc_open(array_merge([PHP_BINARY], array_slice($argv, 4), [$script]), [0 => STDIN, 1 => STDOUT, 2 => STDERR, 3 => $theirs], $pipes, null, $env);
fclose($theirs);
$sock = $pair[0];
$buf = '';

/** @return array{int, int, int, string} type, flags, id, payload */
function readFrame(Socket $sock, string &$buf): array
{
    while (true) {
        if (strlen($buf) >= 16) {
            $h = unpack('Nlen/Ctype/Cflags/nres/Jid', $buf);
            if (strlen($buf) >= 16 + $h['len']) {
                $p = substr($buf, 16, $h['len']);
                $buf = substr($buf, 16 + $h['len']);
                return [$h['type'], $h['flags'], $h['id'], $p];
            }
        }
        $d = '';
        if (!socket_recv($sock, $d, 65536, 0)) {
            exit("the worker closed its channel\n");
        }
        $buf .= $d;
    }
}

[, , , $hello] = readFrame($sock, $buf);
// The request wrk sends, in the layout drover's master would send it to
// this worker: the CGI layout (docs/protocol.md) when its hello asks.
$req = !empty(msgpack_unpack($hello)['cgi'])
    ? msgpack_pack(['REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/', 'QUERY_STRING' => '', 'SERVER_PROTOCOL' => 'HTTP/1.1',
        'REMOTE_ADDR' => '127.0.0.1', 'REMOTE_PORT' => 40000, 'REQUEST_SCHEME' => 'http', 'DOCUMENT_URI' => '/',
        'HTTP_HOST' => '127.0.0.1:8082', 'HTTP_USER_AGENT' => 'wrk', 'HTTP_ACCEPT' => '*/*', 'SERVER_NAME' => '127.0.0.1'])
    : msgpack_pack(['method' => 'GET', 'target' => '/', 'proto' => 'HTTP/1.1',
        'headers' => ['Host', '127.0.0.1:8082', 'User-Agent', 'wrk', 'Accept', '*/*'],
        'content_length' => 0, 'remote' => '127.0.0.1:40000', 'listener' => 0]);
$frame = pack('NCCnJ', strlen($req), 16, 0, 0, 7) . $req;
$start = microtime(true);
for ($sent = 0; $sent < min($depth, $n); $sent++) {
    socket_write($sock, $frame);
}
for ($got = 0; $got < $n;) {
    [, $flags] = readFrame($sock, $buf);
    if ($flags & 1) {
        $got++;
        if ($sent < $n) {
            socket_write($sock, $frame);
            $sent++;
        }
    }
}
$dt = microtime(true) - $start;
printf("%d requests in %.3fs: %.0f req/s, %.1f us per request (depth %d)\n", $n, $dt, $n / $dt, $dt / $n * 1e6, $depth);
socket_write($sock, pack('NCCnJ', 0, 2, 0, 0, 0)); // stop
proc_close($proc);
// The worker's own CPU time (start-up included), which other load on the
// machine moves less than the wall-clock figure above.
$ru = getrusage(1);
printf("worker CPU: %.1f us per request (user %.1f, system %.1f)\n",
    ($ru['ru_utime.tv_sec'] + $ru['ru_stime.tv_sec']) * 1e6 / $n + ($ru['ru_utime.tv_usec'] + $ru['ru_stime.tv_usec']) / $n,
    ($ru['ru_utime.tv_sec'] * 1e6 + $ru['ru_utime.tv_usec']) / $n, ($ru['ru_stime.tv_sec'] * 1e6 + $ru['ru_stime.tv_usec']) / $n);
