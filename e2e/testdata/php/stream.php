<?php

// A PHP stream worker for the e2e tests: echoes packets, greets on connect
// (to the log), and answers "close" by closing the connection.

declare(strict_types=1);

require __DIR__ . '/../../../worker/php/autoload.php';

use Drover\Stream\Worker;

$open = [];
Worker::serve(
    onReceive: static function (int $conn, string $data) use (&$open): void {
        $body = substr($data, 4);
        if ($body === 'close') {
            Worker::close($conn);
            return;
        }
        if (str_starts_with($body, 'bind ')) {
            Worker::bind($conn, (int) substr($body, 5));
            $reply = 'bound';
            Worker::send($conn, pack('N', strlen($reply)) . $reply);
            return;
        }
        if ($body === 'whoami') {
            $reply = (string) Drover\Server::workerId();
            Worker::send($conn, pack('N', strlen($reply)) . $reply);
            return;
        }
        if ($body === 'count') {
            $reply = (string) count($open);
            Worker::send($conn, pack('N', strlen($reply)) . $reply);
            return;
        }
        Worker::send($conn, $data);
    },
    onConnect: static function (int $conn, array $info) use (&$open): void {
        $open[$conn] = $info['remote'];
    },
    onClose: static function (int $conn) use (&$open): void {
        unset($open[$conn]);
    },
);
