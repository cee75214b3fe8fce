<?php

// A stream echo worker (length-prefixed packets), as Swoole's onReceive:
// bin/drover start -c worker/php/examples/drover.yaml, then send
// "\x00\x00\x00\x05hello" to 127.0.0.1:9505.

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Drover\Stream\Worker;

Worker::serve(
    onReceive: static fn (int $conn, string $packet) => Worker::send($conn, $packet),
    onConnect: static fn (int $conn, array $info) => error_log("connection $conn from {$info['remote']}"),
);
