<?php

declare(strict_types=1);

namespace Drover\Tests\Runtime;

use Drover\Runtime\Codec;
use Drover\Runtime\ProtocolError;
use PHPUnit\Framework\TestCase;

/**
 * What VectorTest's cases do not reach: decodeRequest's refusals and
 * encodeResponse's head cache across statuses and body/no body.
 */
final class CodecTest extends TestCase
{
    public function testDecodeRequestRefusesWhatIsNotAMap(): void
    {
        foreach (['' => 'empty', "\xc1" => 'never used', "\x81" => 'cut map', "\xa3GET" => 'a str'] as $payload => $what) {
            try {
                @Codec::decodeRequest((string) $payload);
                self::fail("a $what payload was decoded");
            } catch (ProtocolError $e) {
                self::assertStringContainsString('want a msgpack map', $e->getMessage(), $what);
            }
        }
    }

    public function testDecodeRequestLeavesAbsentKeysOut(): void
    {
        $m = Codec::decodeRequest(Codec::encodeRequest(['method' => 'GET', 'target' => '/', 'headers' => ['Host', 'h']]));
        self::assertArrayNotHasKey('body', $m);
        self::assertArrayNotHasKey('body_follows', $m);
        self::assertSame(['Host', 'h'], $m['headers']);
        self::assertSame(Codec::REQUEST_ZEROS['body'], $m['body'] ?? Codec::REQUEST_ZEROS['body']);
    }

    /** The head kept for a status with a body is not used without one, nor for another status; odd statuses are not kept but still encoded. */
    public function testEncodeResponseHeads(): void
    {
        foreach ([[200, 'x'], [200, ''], [404, ''], [404, 'gone'], [200, 'y'], [0, 'a'], [1000, ''], [-1, 'b'], [65536, ''], [200, str_repeat('z', 300)], [200, str_repeat('w', 70000)]] as [$status, $body]) {
            $headers = ['Content-Type', 'text/plain', 'X-Long', str_repeat('v', 40)];
            for ($i = 0; $i < 2; $i++) {
                $p = Codec::encodeResponse($status, $headers, $body);
                self::assertSame(['status' => $status, 'headers' => $headers, 'body' => $body], Codec::decodeResponse($p), "status $status, body of " . strlen($body));
                self::assertSame($body === '' ? "\x82" : "\x83", $p[0], 'map size');
            }
        }
    }
}
