<?php

declare(strict_types=1);

namespace Drover\Tests\Runtime;

use Drover\Runtime\Frame;
use Drover\Runtime\ProtocolError;
use PHPUnit\Framework\TestCase;

final class FrameTest extends TestCase
{
    /** The hello of docs/protocol.md's walkthrough, byte for byte. */
    public function testEncodesTheHeaderOfTheProtocolWalkthrough(): void
    {
        $payload = "\x85\xa7version\x01\xa3pid\xcd\x10\x92\xabconcurrency\x01\xa4role\xa6worker\xa3sdk\xa6python";
        $frame = Frame::encode(Frame::HELLO, 0, $payload);
        self::assertSame('00000035010000000000000000000000', bin2hex(substr($frame, 0, 16)));
        self::assertSame($payload, substr($frame, 16));
        // php-msgpack writes the same map for the same values.
        self::assertSame($payload, msgpack_pack(['version' => 1, 'pid' => 4242, 'concurrency' => 1, 'role' => 'worker', 'sdk' => 'python']));
    }

    public function testHeaderRoundTrip(): void
    {
        $f = Frame::encode(Frame::RESPONSE_BODY, 0x0102030405060708, 'abc', Frame::FLAG_END | Frame::FLAG_ABORT);
        self::assertSame([3, Frame::RESPONSE_BODY, 3, 0x0102030405060708], Frame::decodeHeader($f));
        self::assertSame([3, Frame::RESPONSE_BODY, 3, 0x0102030405060708], Frame::decodeHeader("xx$f", 2));
    }

    /** @return iterable<string, array{string}> */
    public static function badHeaders(): iterable
    {
        yield 'type 0' => [pack('NCCnJ', 0, 0, 0, 0, 1)];
        yield 'reserved bytes set' => [pack('NCCnJ', 0, 4, 0, 1, 1)];
        yield 'payload over 64 MiB' => [pack('NCCnJ', (64 << 20) + 1, 4, 0, 0, 1)];
    }

    /** @dataProvider badHeaders */
    public function testRejectsMalformedHeaders(string $header): void
    {
        $this->expectException(ProtocolError::class);
        Frame::decodeHeader($header);
    }

    public function testNames(): void
    {
        self::assertSame('request', Frame::name(Frame::REQUEST));
        self::assertSame('window_credit', Frame::name(Frame::WINDOW_CREDIT));
        self::assertSame('type(99)', Frame::name(99));
    }
}
