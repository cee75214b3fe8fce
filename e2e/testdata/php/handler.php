<?php

// The PHP worker of the e2e tests: one route per behaviour under test.

declare(strict_types=1);

require __DIR__ . '/../../../worker/php/autoload.php';

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Message;
use Drover\Server;
use Drover\Task;
use Drover\TaskError;
use Drover\Timer;

if (getenv('DROVER_ROLE') === 'task_worker') {
    Message::onMessage(static function (int $from, string $data): void {
        Message::send($from, "task worker " . Server::workerId() . " got: $data");
    });
    Drover\Task\Worker::serve(static function (string $task): string {
        return match (true) {
            $task === 'fail' => throw new RuntimeException('the task failed on purpose'),
            $task === 'fatal' => (ini_set('memory_limit', '64M') !== false ? str_repeat('x', 256 << 20) : ''),
            str_starts_with($task, 'square ') => (string) ((int) explode(' ', $task)[1] ** 2),
            default => 'php:' . strrev($task),
        };
    });
}

$leak = [];
$ticks = 0;
$messages = [];
Timer::tick(20, static function () use (&$ticks): void {
    $ticks++;
});
Message::onMessage(static function (int $from, string $data) use (&$messages): void {
    $messages[] = "$from: $data";
});

Drover\Http\Worker::serve(static function (Request $r) use (&$leak, &$ticks, &$messages) {
    switch ($r->path()) {
        case '/':
            return Response::text('Hello, World!');
        case '/pid':
            return Response::text((string) getmypid());
        case '/status-code':
            // The status PHP's http_response_code() holds: set with ?set=,
            // which a handler under php-fpm would use; reset between requests.
            if ($r->query('set') !== null) {
                http_response_code((int) $r->query('set'));
                $_SESSION = ['left' => 'behind'];
                $_GET['extra'] = 'x';
            }
            return Response::text(json_encode([http_response_code(), isset($_SESSION), $_GET, $_SERVER['REQUEST_URI'] ?? null]));
        case '/native':
            // Which path the SDK runs: drover's PHP extension or plain PHP.
            return Response::text(Drover\Runtime\Native::enabled() ? 'native' : 'php');
        case '/env':
            return Response::text((string) getenv((string) $r->query('name')));
        case '/server':
            return Response::text((string) ($_SERVER[(string) $r->query('name')] ?? ''));
        case '/echo':
            return new Response(200, ['Content-Type' => 'application/octet-stream'], $r->body);
        case '/big':
            $n = (int) $r->query('n', 1 << 20);
            return new Response(200, ['Content-Type' => 'application/octet-stream'], (static function () use ($n) {
                for ($sent = 0; $sent < $n; $sent += 65536) {
                    yield str_repeat(chr(65 + ($sent >> 16) % 26), min(65536, $n - $sent));
                }
            })());
        case '/forever':
            // An endless stream, as server-sent events: it must stop when the client goes.
            return new Response(200, ['Content-Type' => 'text/event-stream'], (static function () {
                for ($i = 0; ; $i++) {
                    yield "data: $i\n\n";
                    usleep(10000);
                }
            })());
        case '/sleep':
            usleep((int) $r->query('ms', 1000) * 1000);
            return Response::text('slept');
        case '/throw':
            throw new RuntimeException('boom from the handler');
        case '/fatal':
            ini_set('memory_limit', '64M');
            $s = str_repeat('x', 128 << 20);
            return Response::text((string) strlen($s));
        case '/fatal-when':
            // Dies of a fatal error once the test creates the file.
            while (!file_exists((string) $r->query('file'))) {
                usleep(5000);
            }
            trigger_error('dying on cue', E_USER_ERROR);
            return Response::text('not reached');
        case '/hold':
            // Answers once the test creates the file.
            while (!file_exists((string) $r->query('file'))) {
                usleep(5000);
            }
            return Response::text('held');
        case '/mark':
            touch((string) $r->query('file'));
            return Response::text('marked');
        case '/user-error':
            trigger_error('a user error', E_USER_ERROR);
            return Response::text('not reached');
        case '/exit':
            exit(0);
        case '/print':
            echo "printed by the handler\n";
            print_r(['k' => 'v']);
            return Response::text('answer');
        case '/leave-buffer':
            ob_start();
            echo 'left in a buffer';
            return Response::text('buffer left open');
        case '/flush':
            // Flushes the SDK's own buffer: PHP would write it to stdout.
            echo "flushed by the handler\n";
            ob_flush();
            flush();
            return Response::text('flushed');
        case '/warn':
            $a = [];
            $x = $a['missing'];
            return Response::text('warned');
        case '/state':
            $before = ['get' => $_GET, 'post' => $_POST, 'cookie' => $_COOKIE, 'files' => array_keys($_FILES),
                'server_uri' => $_SERVER['REQUEST_URI'] ?? null, 'session' => isset($_SESSION), 'ob_level' => ob_get_level()];
            $_SESSION = ['user' => 'leaked?'];
            $GLOBALS['_GET']['injected'] = 'x';
            return Response::json($before);
        case '/session':
            session_save_path((string) $r->query('dir', sys_get_temp_dir()));
            session_start();
            $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
            return Response::text(session_id() . ' ' . $_SESSION['n']);
        case '/form':
            return Response::json(['post' => $r->parsedBody(), 'globals_post' => $_POST,
                'files' => array_map(static fn ($f) => $f instanceof Drover\Http\UploadedFile ? [$f->getClientFilename(), $f->getSize(), sha1($f->getContents())] : null, $r->files())]);
        case '/leak':
            $leak[] = str_repeat('L', 1 << 20);
            return Response::text(sprintf("%d %d %d", getmypid(), Drover\Runtime\Loop::rss(), count($leak)));
        case '/fanout':
            $n = (int) $r->query('n', 10);
            $tasks = [];
            for ($i = 1; $i <= $n; $i++) {
                $tasks[] = "square $i 0s";
            }
            $sum = 0;
            foreach (Task::waitMulti($tasks, 20.0) as $res) {
                if ($res instanceof TaskError) {
                    return Response::text('task failed: ' . $res->getMessage(), 502);
                }
                $sum += (int) $res;
            }
            return Response::text((string) $sum);
        case '/task':
            try {
                return Response::text(Task::wait((string) $r->query('t', 'abc'), 10.0));
            } catch (TaskError $e) {
                return Response::text('task error: ' . $e->getMessage(), 502);
            }
        case '/ticks':
            return Response::text((string) $ticks);
        case '/message':
            Message::send((int) $r->query('to'), (string) $r->query('text', 'hi'));
            return Response::text('sent');
        case '/messages':
            return Response::json($messages);
        case '/lie':
            // Declares fewer bytes than it sends; what follows looks like a response.
            return new Response(200, ['Content-Length' => '5'], (static function () {
                yield 'hello';
                yield "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected";
            })());
        case '/short':
            // Declares more bytes than it sends.
            return new Response(200, ['Content-Length' => '100'], (static function () {
                yield 'only ten!!';
            })());
        case '/nocontent':
            // A body after 204 (and 304).
            return new Response((int) $r->query('status', 204), [], (static function () {
                yield "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected";
            })());
        case '/informational':
            // A 1xx status as the final answer.
            return Response::text('not final', (int) $r->query('status', 103));
        case '/whoami':
            return Response::json(['id' => Server::workerId(), 'workers' => Server::workerNum(), 'tasks' => Server::taskWorkerNum(), 'pid' => getmypid()]);
        case '/after':
            // Answers at once; then, after the response, waits for the
            // test's file and logs, throws or dies (?then=).
            $file = (string) $r->query('file');
            $then = (string) $r->query('then', 'log');
            Drover\Http\Worker::afterResponse(static function () use ($file, $then, $r): void {
                for ($i = 0; $i < 2000 && !file_exists($file); $i++) {
                    usleep(5000);
                }
                match ($then) {
                    'throw' => throw new RuntimeException('thrown after the response'),
                    'fatal' => trigger_error('dying after the response', E_USER_ERROR),
                    default => error_log("after the response of {$r->method} {$r->path()}"),
                };
            });
            return Response::text('answered');
        case '/writer':
            // A body written piece by piece by a Closure.
            $n = (int) $r->query('n', 3);
            return new Response(200, ['Content-Type' => 'text/plain'], static function (Closure $write) use ($n): void {
                for ($i = 1; $i <= $n; $i++) {
                    $write("piece $i\n");
                }
            });
        case '/bind':
            // Binds the connection to a uid (dispatch_mode 5).
            Drover\Http\Worker::bind((int) $r->query('uid', 0));
            return Response::text('bound');
    }
    return Response::text('no route ' . $r->path(), 404);
});
