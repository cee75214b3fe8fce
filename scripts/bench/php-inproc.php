<?php
// The PHP SDK's per-request path in one process, with no system call per
// request: a Request frame (the CGI layout, as php-sdk.php sends) handed to
// the loop's dispatch, the answers flushed to a socket pair every 64
// requests and drained. Prints ns per request, the best of 3 runs: for
// comparing changes to the SDK (leave a feature out, run it again) without
// the system calls' noise. TREE is a drover checkout (default: this one).
//   php [-d extension=bin/php-ext/drover.so] [opcache/JIT -d options] scripts/bench/php-inproc.php [TREE] [N=200000]
putenv('DROVER_ROLE=worker'); $_ENV['DROVER_ROLE'] = 'worker';
$tree = $argv[1] ?? dirname(__DIR__, 2);
require $tree . '/worker/php/autoload.php';
use Drover\Http\{Request, Response};
use Drover\Runtime\{Loop, Channel, NativeChannel, Native, HttpHandler, Frame};
$pair = []; socket_create_pair(AF_UNIX, SOCK_STREAM, 0, $pair);
socket_set_nonblock($pair[1]);
$fds = []; foreach (scandir('/proc/self/fd') as $f) if (ctype_digit($f) && str_starts_with((string) @readlink("/proc/self/fd/$f"), 'socket:')) $fds[] = (int) $f;
$loop = Loop::get();
$rl = new ReflectionClass($loop);
$native = class_exists(Native::class) && Native::enabled();
$ch = $native ? new NativeChannel($pair[0], min($fds)) : new Channel($pair[0]);
$rl->getProperty('channel')->setValue($loop, $ch);
$rl->getProperty('serving')->setValue($loop, true);
$h = new HttpHandler(static function (Request $r): Response {
    return match ($r->path()) { '/' => Response::text('Hello, World!'), default => Response::text('no', 404) };
}, true);
$rl->getProperty('handler')->setValue($loop, $h);
$cgi = msgpack_pack(['REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/', 'QUERY_STRING' => '', 'SERVER_PROTOCOL' => 'HTTP/1.1',
    'REMOTE_ADDR' => '127.0.0.1', 'REMOTE_PORT' => 40000, 'REQUEST_SCHEME' => 'http', 'DOCUMENT_URI' => '/',
    'HTTP_HOST' => '127.0.0.1:8082', 'HTTP_USER_AGENT' => 'wrk', 'HTTP_ACCEPT' => '*/*', 'SERVER_NAME' => '127.0.0.1']);
$dispatch = $rl->getMethod('dispatch');
$n = (int) ($argv[2] ?? 200000);
$best = INF;
for ($round = 0; $round < 3; $round++) {
    $t = hrtime(true);
    for ($i = 0; $i < $n; $i++) {
        $dispatch->invoke($loop, [Frame::REQUEST, 0, 7, $cgi]);
        if (($i & 63) === 0) { $ch->flush(); while (@socket_recv($pair[1], $d, 1 << 20, MSG_DONTWAIT) > 0); }
    }
    $best = min($best, (hrtime(true) - $t) / $n);
}
fprintf(STDERR, "%.0f ns per request (%s, \$_SERVER has %d keys)\n", $best, $native ? 'native' : 'php', count($_SERVER));
