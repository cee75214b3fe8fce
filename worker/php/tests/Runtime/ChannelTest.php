<?php

declare(strict_types=1);

namespace Drover\Tests\Runtime;

use Drover\Runtime\Channel;
use Drover\Runtime\Frame;
use PHPUnit\Framework\TestCase;

/** The channel's framing over a real socket pair, with the master's end written by hand. */
final class ChannelTest extends TestCase
{
    /** @var array{\Socket, \Socket} */
    private array $pair;

    protected function setUp(): void
    {
        $pair = [];
        self::assertTrue(socket_create_pair(AF_UNIX, SOCK_STREAM, 0, $pair));
        $this->pair = $pair;
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
        $ch = new Channel($this->pair[1]);
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

    public function testHasCancelFindsACancelBufferedBehindOtherFrames(): void
    {
        $ch = new Channel($this->pair[1]);
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

    public function testWritesQueuedFramesInOneFlush(): void
    {
        $ch = new Channel($this->pair[1]);
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
        $ch = new Channel($this->pair[1]);
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
