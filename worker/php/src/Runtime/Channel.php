<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * The worker's end of its socket pair with the master (fd 3): buffered frame
 * reads, and writes gathered until flush() so that a response and its end
 * leave in one system call. With drover's PHP extension loaded, Channel::open
 * gives a NativeChannel, which does the same in C.
 *
 * @internal
 */
class Channel
{
    private string $in = '';
    private int $off = 0;
    /**
     * Where hasCancel() resumes: every whole frame buffered before this
     * offset of $in is known not to be a Cancel (a request sent ahead is
     * checked once per frame, not once per request that follows it).
     */
    private int $noCancelBefore = 0;
    private string $out = '';

    public function __construct(private readonly \Socket $socket)
    {
    }

    /**
     * Opens the channel drover gave this process, or explains how to start
     * it and exits 1 when it was started by hand.
     */
    public static function open(): self
    {
        $hint = 'this program is a drover worker: start it with `drover start -c drover.yaml` (worker.cmd), not by hand';
        if ((string) getenv('DROVER_ROLE') === '') {
            self::quit("$hint (DROVER_ROLE is not set)");
        }
        $fd = (int) (getenv('DROVER_FD') ?: 3);
        $stream = @fopen("php://fd/$fd", 'r+');
        $socket = $stream === false ? false : @socket_import_stream($stream);
        if ($socket === false || $socket === null) {
            self::quit("$hint (fd $fd is not an open socket)");
        }
        if (socket_get_option($socket, SOL_SOCKET, SO_TYPE) !== SOCK_STREAM) {
            self::quit("$hint (fd $fd is not a stream socket)");
        }
        socket_set_block($socket);
        self::tidyDescriptors($fd);
        return Native::enabled() ? new NativeChannel($socket, $fd) : new self($socket);
    }

    protected static function quit(string $why): never
    {
        fwrite(STDERR, $why . "\n");
        Boot::exit(1);
    }

    /**
     * Marks every descriptor of the channel (fd 3 and PHP's duplicate of it)
     * close-on-exec, so that a program the handler starts (exec, proc_open)
     * does not hold the channel open after this worker died, and closes the
     * body arenas' descriptors (fds 4 and 5, docs/protocol.md), which the
     * PHP SDK does not map, as the protocol asks of a worker that does not
     * use them. Needs FFI (enabled for the CLI by default); without it they
     * stay open and inheritable, which only matters for handlers that
     * start long-lived programs.
     */
    private static function tidyDescriptors(int $fd): void
    {
        if (!extension_loaded('ffi')) {
            return;
        }
        $target = @readlink("/proc/self/fd/$fd");
        $fds = @scandir('/proc/self/fd');
        if ($target === false || $fds === false) {
            return;
        }
        try {
            $libc = \FFI::cdef('int fcntl(int fd, int cmd, int arg); int close(int fd);', 'libc.so.6');
        } catch (\Throwable) {
            return;
        }
        foreach (['DROVER_REQUEST_ARENA_FD', 'DROVER_ANSWER_ARENA_FD'] as $var) {
            $n = (string) getenv($var);
            if (ctype_digit($n) && (int) $n > 3 && (int) $n !== $fd
                && str_starts_with((string) @readlink("/proc/self/fd/$n"), '/memfd:drover-')) {
                $libc->close((int) $n);
                putenv($var); // gone: nothing this worker starts is told of it
                unset($_ENV[$var], $_SERVER[$var]);
            }
        }
        foreach ($fds as $name) {
            if (ctype_digit($name) && @readlink("/proc/self/fd/$name") === $target) {
                $libc->fcntl((int) $name, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */);
            }
        }
    }

    /**
     * Reads the next frame: [type, flags, id, payload]. With a timeout in
     * seconds it returns null when none arrived in time; without, it waits.
     * When the master is gone (end of file, reset) the worker exits 1 at
     * once, as the protocol asks: nobody is left to read its answers.
     *
     * @return array{int, int, int, string}|null
     */
    public function read(?float $timeout = null): ?array
    {
        while (true) {
            $avail = strlen($this->in) - $this->off;
            if ($avail >= Frame::HEADER_SIZE) {
                // Frame::decodeHeader's work, inline (once per frame): it
                // is called only to say what is wrong with a bad header.
                $h = unpack('Nl/nt/nr/Ji', $this->in, $this->off);
                if ($h['t'] < 0x100 || $h['r'] !== 0 || $h['l'] > Frame::MAX_PAYLOAD) {
                    Frame::decodeHeader($this->in, $this->off); // throws
                }
                $len = $h['l'];
                if ($avail >= Frame::HEADER_SIZE + $len) {
                    $payload = $len === 0 ? '' : substr($this->in, $this->off + Frame::HEADER_SIZE, $len);
                    $this->off += Frame::HEADER_SIZE + $len;
                    if ($this->off === strlen($this->in)) {
                        $this->in = '';
                        $this->off = $this->noCancelBefore = 0;
                    }
                    return [$h['t'] >> 8, $h['t'] & 0xff, $h['i'], $payload];
                }
            }
            if ($timeout !== null && !$this->waitReadable($timeout)) {
                return null;
            }
            $this->fill();
        }
    }

    /**
     * Whether a Cancel with FlagEnd for $id is already buffered (read from
     * the socket, not yet taken), without taking it.
     */
    public function hasCancel(int $id): bool
    {
        $packedId = null;
        $clean = true;
        $in = $this->in;
        for ($off = max($this->off, $this->noCancelBefore), $end = strlen($in); $end - $off >= Frame::HEADER_SIZE;) {
            $next = $off + Frame::HEADER_SIZE + unpack('N', $in, $off)[1];
            if (ord($in[$off + 4]) === Frame::CANCEL) {
                if ((ord($in[$off + 5]) & Frame::FLAG_END) !== 0 && substr($in, $off + 8, 8) === ($packedId ??= pack('J', $id))) {
                    return true;
                }
                $clean = false; // another request's: kept for its own check
            }
            if ($clean && $next <= $end) {
                $this->noCancelBefore = $next;
            }
            $off = $next;
        }
        return false;
    }

    private function waitReadable(float $timeout): bool
    {
        $timeout = max(0.0, $timeout);
        $sec = (int) $timeout;
        $usec = (int) (($timeout - $sec) * 1e6);
        $r = [$this->socket];
        $w = $e = null;
        $n = @socket_select($r, $w, $e, $sec, $usec);
        if ($n === false) {
            $err = socket_last_error($this->socket);
            socket_clear_error($this->socket);
            if ($err === SOCKET_EINTR) {
                return false;
            }
            throw new \RuntimeException('select on the drover channel: ' . socket_strerror($err));
        }
        return $n > 0;
    }

    private function fill(): void
    {
        if ($this->off > 0) {
            $this->in = substr($this->in, $this->off);
            $this->noCancelBefore = max(0, $this->noCancelBefore - $this->off);
            $this->off = 0;
        }
        while (true) {
            $data = '';
            $n = @socket_recv($this->socket, $data, 256 << 10, 0);
            if ($n === false) {
                $err = socket_last_error($this->socket);
                socket_clear_error($this->socket);
                if ($err === SOCKET_EINTR || $err === SOCKET_EAGAIN) {
                    continue;
                }
                if ($err === SOCKET_ECONNRESET) {
                    $this->masterGone('the channel was reset');
                }
                throw new \RuntimeException('read from the drover channel: ' . socket_strerror($err));
            }
            if ($n === 0) {
                $this->masterGone('end of file on the channel');
            }
            $this->in .= $data;
            return;
        }
    }

    /**
     * Queues a Response frame for request $id: Codec::encodeResponse's
     * payload, with FlagEnd unless $flags says otherwise.
     *
     * @param list<string> $headers
     */
    public function response(int $id, int $status, array $headers, string $body = '', int $flags = Frame::FLAG_END): void
    {
        $this->write(Frame::RESPONSE, $id, Codec::encodeResponse($status, $headers, $body), $flags);
    }

    /**
     * Queues the whole answer to request $id: $res's status and headers
     * (Response::wireHeaders) and $body, one Response frame with FlagEnd.
     */
    public function answer(int $id, \Drover\Http\Response $res, string $body): void
    {
        $this->write(Frame::RESPONSE, $id, Codec::encodeResponse($res->status, $res->wireHeaders(), $body), Frame::FLAG_END);
    }

    /** Queues one frame; flush() writes everything queued. */
    public function write(int $type, int $id, string $payload = '', int $flags = 0): void
    {
        $this->out .= pack('NCCnJ', strlen($payload), $type, $flags, 0, $id) . $payload;
    }

    public function pending(): bool
    {
        return $this->out !== '';
    }

    /** Writes every queued frame, looping on short writes. */
    public function flush(): void
    {
        while ($this->out !== '') {
            $n = @socket_write($this->socket, $this->out);
            if ($n === false) {
                $err = socket_last_error($this->socket);
                socket_clear_error($this->socket);
                if ($err === SOCKET_EINTR || $err === SOCKET_EAGAIN) {
                    continue;
                }
                if ($err === SOCKET_EPIPE || $err === SOCKET_ECONNRESET) {
                    $this->masterGone('the channel is closed (' . socket_strerror($err) . ')');
                }
                throw new \RuntimeException('write to the drover channel: ' . socket_strerror($err));
            }
            $this->out = $n === strlen($this->out) ? '' : substr($this->out, $n);
        }
    }

    /** Exits as masterGone() does, with the reason the channel has (NativeChannel: the extension's). */
    public function gone(): never
    {
        $this->masterGone('the channel is closed');
    }

    protected function masterGone(string $why): never
    {
        $this->out = '';
        Log::line("the drover master is gone ($why); exiting");
        Loop::exitNow(1);
    }
}
