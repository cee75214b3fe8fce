<?php

declare(strict_types=1);

namespace Drover\Tests\Runtime;

use Drover\Runtime\Channel;
use Drover\Runtime\Frame;
use Drover\Runtime\NativeChannel;
use PHPUnit\Framework\TestCase;

/**
 * The channel's framing over a real socket pair, with the master's end
 * written by hand. With drover's PHP extension loaded (make test-php's
 * second run) the same tests run on NativeChannel, its C twin.
 */
final class ChannelTest extends TestCase
{
    /** @var array{\Socket, \Socket} */
    private array $pair;
    /** The descriptor of $pair[1], for NativeChannel. */
    private int $fd;

    protected function setUp(): void
    {
        $before = self::sockets();
        $pair = [];
        self::assertTrue(socket_create_pair(AF_UNIX, SOCK_STREAM, 0, $pair));
        $this->pair = $pair;
        $new = array_values(array_diff(self::sockets(), $before));
        self::assertCount(2, $new);
        $this->fd = max($new); // socketpair(2) numbers its two ends in order
    }

    /** @return list<int> the descriptors of this process that are sockets */
    public static function sockets(): array
    {
        $fds = [];
        foreach (scandir('/proc/self/fd') ?: [] as $f) {
            if (ctype_digit($f) && str_starts_with((string) @readlink("/proc/self/fd/$f"), 'socket:')) {
                $fds[] = (int) $f;
            }
        }
        return $fds;
    }

    /** The channel under test on $pair[1]: NativeChannel when the extension is loaded. */
    private function channel(): Channel
    {
        return extension_loaded('drover') ? new NativeChannel($this->pair[1], $this->fd) : new Channel($this->pair[1]);
    }

    protected function tearDown(): void
    {
        foreach ($this->pair as $s) {
            @socket_close($s);
        }
    }

    private function send(string $bytes): void
    {
        for ($off = 0; $off < strlen($bytes);) {
            $off += socket_write($this->pair[0], substr($bytes, $off));
        }
    }

    public function testReadsFramesSplitAnywhereAndSeveralPerRead(): void
    {
        $ch = $this->channel();
        $frames = Frame::encode(Frame::DATA, 7, 'hello') . Frame::encode(Frame::STOP, 0) . Frame::encode(Frame::DATA, 8, str_repeat('x', 100000));
        // Byte by byte for the first frame's header, then the rest at once.
        for ($i = 0; $i < 10; $i++) {
            $this->send($frames[$i]);
        }
        self::assertNull($ch->read(0.01), 'no frame before its header is whole');
        $this->send(substr($frames, 10, 27)); // the rest of the first frame and all of the second
        self::assertSame([Frame::DATA, 0, 7, 'hello'], $ch->read());
        self::assertSame([Frame::STOP, 0, 0, ''], $ch->read(0.5));
        $this->send(substr($frames, 37));
        [$type, , $id, $payload] = $ch->read();
        self::assertSame([Frame::DATA, 8, 100000], [$type, $id, strlen($payload)]);
    }

    public function testReadsAFrameLargerThanItsBufferAndSmallOnesAfter(): void
    {
        $ch = $this->channel();
        $big = random_bytes(3 << 20);
        $pid = pcntl_fork();
        if ($pid === 0) {
            $this->send(Frame::encode(Frame::DATA, 1, $big) . Frame::encode(Frame::DATA, 2, 'after') . Frame::encode(Frame::DATA, 3, $big) . Frame::encode(Frame::STOP, 0));
            exit(0);
        }
        self::assertSame([Frame::DATA, 0, 1, $big], $ch->read());
        self::assertSame([Frame::DATA, 0, 2, 'after'], $ch->read());
        self::assertSame([Frame::DATA, 0, 3, $big], $ch->read());
        self::assertSame([Frame::STOP, 0, 0, ''], $ch->read());
        pcntl_waitpid($pid, $status);
        self::assertSame(0, pcntl_wexitstatus($status));
    }

    public function testHasCancelFindsACancelBufferedBehindOtherFrames(): void
    {
        $ch = $this->channel();
        $this->send(Frame::encode(Frame::REQUEST, 1, 'a') . Frame::encode(Frame::REQUEST, 2, 'b') . Frame::encode(Frame::REQUEST, 3, 'c')
            . Frame::encode(Frame::CANCEL, 3) . Frame::encode(Frame::CANCEL, 2, '', Frame::FLAG_END));
        self::assertSame([Frame::REQUEST, 0, 1, 'a'], $ch->read());
        self::assertFalse($ch->hasCancel(1));
        self::assertTrue($ch->hasCancel(2), 'a Cancel with FlagEnd two frames on');
        self::assertFalse($ch->hasCancel(3), 'a Cancel without FlagEnd: the client only shut down its sending side');
        self::assertSame([Frame::REQUEST, 0, 2, 'b'], $ch->read());
        self::assertTrue($ch->hasCancel(2), 'asked again, after the frames before it were known to be no Cancel');
        self::assertSame([Frame::REQUEST, 0, 3, 'c'], $ch->read());
        self::assertSame([Frame::CANCEL, 0, 3, ''], $ch->read());
        self::assertSame([Frame::CANCEL, Frame::FLAG_END, 2, ''], $ch->read());
        // Frames that arrive later are looked at too, a partial one not yet.
        $this->send(Frame::encode(Frame::REQUEST, 4, 'd'));
        self::assertSame([Frame::REQUEST, 0, 4, 'd'], $ch->read());
        $cancel = Frame::encode(Frame::CANCEL, 4, '', Frame::FLAG_END);
        $this->send(Frame::encode(Frame::REQUEST, 5, 'e') . substr($cancel, 0, 10));
        self::assertSame([Frame::REQUEST, 0, 5, 'e'], $ch->read());
        self::assertFalse($ch->hasCancel(4));
        $this->send(substr($cancel, 10));
        self::assertSame([Frame::CANCEL, Frame::FLAG_END, 4, ''], $ch->read());
    }

    public function testAMalformedHeaderIsAProtocolError(): void
    {
        $ch = $this->channel();
        $this->send("\0\0\0\1\x10\0\x01\0" . str_repeat("\0", 8) . 'x');
        $this->expectException(\Drover\Runtime\ProtocolError::class);
        $this->expectExceptionMessage('malformed frame header 00000001100001000000000000000000');
        $ch->read();
    }

    public function testAnOversizedFrameIsAProtocolError(): void
    {
        $ch = $this->channel();
        $this->send(pack('NCCnJ', Frame::MAX_PAYLOAD + 1, Frame::REQUEST, 0, 0, 1));
        $this->expectException(\Drover\Runtime\ProtocolError::class);
        $this->expectExceptionMessage(sprintf('frame of %d bytes is over the %d-byte limit', Frame::MAX_PAYLOAD + 1, Frame::MAX_PAYLOAD));
        $ch->read();
    }

    public function testAResponseIsCodecsBytes(): void
    {
        $ch = $this->channel();
        $cases = [];
        foreach ([200, 404, 0, 99, 1000, 70000, -1] as $status) {
            $cases[] = [$status, ['Content-Type', 'text/plain'], 'hi'];
        }
        foreach ([0, 1, 31, 32, 255, 256, 65535, 65536, 70000] as $n) {
            $cases[] = [200, ['X-Long', str_repeat('v', $n)], str_repeat('b', $n)];
            $cases[] = [204, array_fill(0, min($n, 40), 'h'), ''];
        }
        $want = '';
        foreach ($cases as $i => [$status, $headers, $body]) {
            $ch->response($i, $status, $headers, $body);
            $want .= Frame::encode(Frame::RESPONSE, $i, \Drover\Runtime\Codec::encodeResponse($status, $headers, $body), Frame::FLAG_END);
        }
        $ch->response(99, 200, [], '', 0); // a head without FlagEnd: the body follows
        $want .= Frame::encode(Frame::RESPONSE, 99, \Drover\Runtime\Codec::encodeResponse(200, []));
        $this->assertFlushes($ch, $want);
    }

    public function testAnAnswerIsWireHeadersBytes(): void
    {
        $ch = $this->channel();
        $responses = [
            \Drover\Http\Response::text('Hello, World!'),
            \Drover\Http\Response::html('<p>hi</p>', 404),
            \Drover\Http\Response::json(['a' => 1], 201),
            new \Drover\Http\Response(200, ['Content-Type' => 'text/csv'], 'a,b'),
            new \Drover\Http\Response(200, ['content-type' => 'TEXT/HTML', 'X-A' => ['1', '2']], 'x'),
            new \Drover\Http\Response(200, ['Content-Type' => 'text/plain; CHARSET=latin1'], 'x'),
            new \Drover\Http\Response(200, ['Content-Type' => 'text'], 'x'),
            new \Drover\Http\Response(204),
            new \Drover\Http\Response(200, ['Set-Cookie' => ['a=1', 'b=2'], 'Content-Type' => ['text/plain', 'text/html']], str_repeat('z', 300)),
            (new \Drover\Http\Response(302))->setHeader('Location', '/there')->addHeader('Vary', 'Accept')->addHeader('vary', 'Cookie'),
            new \Drover\Http\Response(200, array_fill_keys(array_map(static fn ($i) => "X-$i", range(1, 20)), 'v'), ''),
        ];
        $charset = ini_get('default_charset');
        $want = '';
        try {
            foreach (['UTF-8', '', 'iso-8859-15'] as $i => $cs) {
                ini_set('default_charset', $cs);
                foreach ($responses as $j => $res) {
                    $ch->answer($i * 100 + $j, $res, (string) $res->body);
                    $want .= Frame::encode(Frame::RESPONSE, $i * 100 + $j, \Drover\Runtime\Codec::encodeResponse($res->status, $res->wireHeaders(), (string) $res->body), Frame::FLAG_END);
                }
            }
        } finally {
            ini_set('default_charset', (string) $charset);
        }
        $this->assertFlushes($ch, $want);
    }

    /** Flushes $ch (in a child: the socket pair's buffer may not hold it all) and reads what it wrote. */
    private function assertFlushes(Channel $ch, string $want): void
    {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $ch->flush();
            exit(0);
        }
        $got = '';
        while (strlen($got) < strlen($want) && ($r = socket_recv($this->pair[0], $buf, 1 << 20, 0)) > 0) {
            $got .= $buf;
        }
        pcntl_waitpid($pid, $status);
        self::assertSame(bin2hex($want), bin2hex($got));
    }

    public function testWritesQueuedFramesInOneFlush(): void
    {
        $ch = $this->channel();
        $ch->write(Frame::SEND, 3, 'abc');
        $ch->write(Frame::DONE, 3);
        self::assertTrue($ch->pending());
        $ch->flush();
        self::assertFalse($ch->pending());
        $got = '';
        socket_recv($this->pair[0], $got, 1000, 0);
        self::assertSame(Frame::encode(Frame::SEND, 3, 'abc') . Frame::encode(Frame::DONE, 3), $got);
    }

    public function testFlushesPayloadsLargerThanTheSocketBuffer(): void
    {
        $ch = $this->channel();
        $big = random_bytes(4 << 20);
        $ch->write(Frame::SEND, 1, $big);
        // The reader drains in a child process while the flush loops on short writes.
        $pid = pcntl_fork();
        if ($pid === 0) {
            $n = 0;
            $buf = '';
            while ($n < strlen($big) + 16 && ($r = socket_recv($this->pair[0], $buf, 1 << 16, 0)) > 0) {
                $n += $r;
            }
            exit($n === strlen($big) + 16 ? 0 : 1);
        }
        $ch->flush();
        pcntl_waitpid($pid, $status);
        self::assertSame(0, pcntl_wexitstatus($status));
    }
}
