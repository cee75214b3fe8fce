<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * Serves a stream listener's Connect, Data and Close events with callbacks,
 * answering each with Done after the Sends it caused.
 *
 * @internal Use Drover\Stream\Worker::serve.
 */
final class StreamHandler implements Handler
{
    private string $what = '';

    public function __construct(
        private readonly \Closure $onReceive,
        private readonly ?\Closure $onConnect,
        private readonly ?\Closure $onClose,
    ) {
    }

    public function role(): string
    {
        return 'worker';
    }

    public function current(): string
    {
        return $this->what;
    }

    public function frame(int $type, int $flags, int $id, string $payload): void
    {
        [$what, $call] = match ($type) {
            Frame::CONNECT => ["connect of connection $id", $this->onConnect === null ? null
                : fn () => ($this->onConnect)($id, Codec::decodeConnInfo($payload))],
            Frame::DATA => ["data of connection $id", fn () => ($this->onReceive)($id, $payload)],
            Frame::CLOSE => ["close of connection $id", $this->onClose === null ? null
                : fn () => ($this->onClose)($id, $payload)],
            Frame::REQUEST => ['', null],
            default => [null, null], // a later protocol version's frame: ignored
        };
        if ($what === null) {
            return;
        }
        $loop = Loop::get();
        if ($type === Frame::REQUEST) {
            // An HTTP listener's request: this worker only serves streams.
            Log::line('this PHP worker serves stream listeners (Drover\Stream\Worker) but got an HTTP request; answered 500 (use Drover\Http\Worker for HTTP listeners)');
            $loop->channel()->response($id, 500, [], "no HTTP handler\n");
            return;
        }
        if ($call !== null) {
            $this->what = $what;
            try {
                $loop->callback($what, $call);
            } finally {
                $this->what = '';
            }
        }
        $loop->write(Frame::DONE, $id);
    }

    public function abort(string $why): void
    {
        // The connection's event stays unanswered: the master closes the
        // connections whose events were in flight at a dead worker.
    }

    public static function send(int $conn, string $data): void
    {
        $loop = Loop::get();
        for ($off = 0, $n = strlen($data); $off < $n; $off += Frame::MAX_CHUNK) {
            $loop->write(Frame::SEND, $conn, $off === 0 && $n <= Frame::MAX_CHUNK ? $data : substr($data, $off, Frame::MAX_CHUNK));
        }
    }

    public static function bind(int $conn, int $uid): void
    {
        if ($uid < 0) {
            throw new \InvalidArgumentException("uid $uid: want a number from 0");
        }
        Loop::get()->write(Frame::BIND, $conn, Codec::encodeBind($uid));
    }

    public static function close(int $conn): void
    {
        Loop::get()->write(Frame::CLOSE_CONN, $conn);
    }
}
