<?php

declare(strict_types=1);

namespace Drover\Tests\Runtime;

use Drover\Runtime\Channel;
use Drover\Runtime\Frame;
use Drover\Runtime\Native;
use Drover\Runtime\NativeChannel;
use Drover\Runtime\ProtocolError;
use PHPUnit\Framework\TestCase;

/**
 * drover's PHP extension (worker/php/ext) against the pure-PHP SDK it
 * stands in for: the Request maps it decodes are msgpack_unpack's, on the
 * test vectors, on random maps and on random corruptions of them (a
 * differential fuzz: the C decoder either gives msgpack_unpack's result or
 * returns null, and NativeChannel leaves the payload to msgpack_unpack). The channel's framing is ChannelTest's, which
 * runs on NativeChannel when the extension is loaded. make test-php runs
 * PHPUnit a second time with the extension (DROVER_TEST_NATIVE=1), where
 * these tests must not be skipped.
 */
final class NativeTest extends TestCase
{
    protected function setUp(): void
    {
        if (!extension_loaded('drover')) {
            if (getenv('DROVER_TEST_NATIVE') === '1') {
                self::fail("DROVER_TEST_NATIVE=1 but drover's PHP extension is not loaded (make php-ext; PHP_INI_SCAN_DIR)");
            }
            self::markTestSkipped("drover's PHP extension is not loaded: make test-php runs these in its second pass");
        }
    }

    public function testTheExtensionIsTheSdksAndInUse(): void
    {
        self::assertSame(Native::API, \Drover\Native\API, 'the extension was built from another checkout: make php-ext');
        self::assertTrue(Native::enabled());
    }

    public function testDecodesTheVectorsAsMsgpack(): void
    {
        $vectors = json_decode((string) file_get_contents(__DIR__ . '/../../../../ipc/testdata/vectors.json'), true, 512, JSON_THROW_ON_ERROR);
        $n = 0;
        foreach ($vectors['cases'] as $v) {
            if (!in_array($v['kind'], ['request', 'request_cgi', 'response', 'hello', 'connect'], true)) {
                continue;
            }
            $p = substr((string) hex2bin($v['frame']), 16);
            self::assertSame(msgpack_unpack($p), \Drover\Native\decode($p), $v['name']);
            $n++;
        }
        self::assertGreaterThan(5, $n, 'the vectors were found');
    }

    public function testDecodesRandomMapsAsMsgpack(): void
    {
        mt_srand(20261207);
        for ($i = 0, $n = intdiv(self::fuzzN(20000), 7); $i < $n; $i++) {
            $m = self::randomMap(0);
            $p = msgpack_pack($m);
            self::assertSame(msgpack_unpack($p), \Drover\Native\decode($p), bin2hex($p));
        }
    }

    /** Iterations of the differential fuzz tests: DROVER_FUZZ_N (scripts/fuzz.sh raises it). */
    private static function fuzzN(int $default): int
    {
        return max(1, (int) (getenv('DROVER_FUZZ_N') ?: $default));
    }

    public function testReadsWhatChannelReadsFromTheSameBytes(): void
    {
        // The same random stream (frames, some with a bad header or an
        // oversized length, cut into random pieces) through Channel on one
        // socket pair and NativeChannel on another: the same frames, the
        // same error, in the same place.
        mt_srand(11);
        for ($round = 0, $n = max(1, intdiv(self::fuzzN(20000), 100)); $round < $n; $round++) {
            $stream = '';
            for ($i = 0, $frames = mt_rand(1, 30); $i < $frames; $i++) {
                $len = [0, 1, 2, 15, 16, 17, 300, 70000][mt_rand(0, 7)];
                $header = pack('NCCnJ', $len, mt_rand(1, 22), mt_rand(0, 255), 0, mt_rand(0, 3) === 0 ? -mt_rand(1, 100) : mt_rand(0, 1 << 40));
                $roll = mt_rand(0, 60);
                if ($roll === 0) {
                    $header[4] = "\0"; // type 0
                } elseif ($roll === 1) {
                    $header[6] = "\x01"; // reserved bytes set
                } elseif ($roll === 2) {
                    $header = pack('N', Frame::MAX_PAYLOAD + mt_rand(1, 1000)) . substr($header, 4);
                }
                $stream .= $header . ($len > 0 ? random_bytes($len) : '');
            }
            $stream = substr($stream, 0, strlen($stream) - (mt_rand(0, 4) === 0 ? mt_rand(1, 20) : 0)); // a torn last frame
            self::assertSame(self::readAll(false, $stream), self::readAll(true, $stream), "round $round");
        }
    }

    /** @return list<mixed> what a channel reads from $stream: each frame, then the error or 'torn' */
    private static function readAll(bool $native, string $stream): array
    {
        $before = ChannelTest::sockets();
        $pair = [];
        socket_create_pair(AF_UNIX, SOCK_STREAM, 0, $pair);
        $fd = max(array_diff(ChannelTest::sockets(), $before));
        $ch = $native ? new NativeChannel($pair[1], $fd) : new Channel($pair[1]);
        $out = [];
        try {
            for ($off = 0; $off < strlen($stream);) {
                $piece = substr($stream, $off, mt_rand(1, 9000));
                $off += strlen($piece);
                for ($w = 0; $w < strlen($piece);) {
                    $w += socket_write($pair[0], substr($piece, $w));
                }
                while (($f = $ch->read(0.0)) !== null) {
                    $out[] = $f;
                }
            }
            $out[] = 'torn';
        } catch (ProtocolError $e) {
            $out[] = $e->getMessage();
        } finally {
            socket_close($pair[0]);
            socket_close($pair[1]);
        }
        return $out;
    }

    public function testCorruptedMapsGiveMsgpacksResult(): void
    {
        mt_srand(7);
        $native = 0;
        for ($i = 0, $n = self::fuzzN(20000); $i < $n; $i++) {
            $p = msgpack_pack(self::randomMap(0));
            $p = match (mt_rand(0, 3)) {
                0 => substr($p, 0, mt_rand(0, strlen($p))),                          // truncated
                1 => substr_replace($p, chr(mt_rand(0, 255)), mt_rand(0, strlen($p) - 1), 1), // a byte changed
                2 => $p . chr(mt_rand(0, 255)),                                      // trailing bytes
                default => substr_replace($p, random_bytes(mt_rand(1, 4)), mt_rand(0, strlen($p)), 0),
            };
            // Only what the C decoder accepted goes to php-msgpack: its
            // 2.2.0 (Debian 12) corrupts PHP's heap on some of the others,
            // and this process segfaults a few thousand payloads later.
            // The master writes only well-formed maps, so no client reaches
            // that; the C decoder just must not take what it cannot read.
            $d = \Drover\Native\decode($p);
            if ($d !== null) {
                $native++;
                self::assertSame(@msgpack_unpack($p), $d, bin2hex($p));
            }
        }
        self::assertGreaterThan($n / 20, $native, 'some corrupted maps are still maps, and the C decoder read them');
    }

    public function testUnusualKeysAndValuesAreMsgpacks(): void
    {
        $cases = [
            "\x81\xa11\x01",                 // a numeric string key: an int key in PHP
            "\x81\xa2-0\x01",                // not numeric to PHP
            "\x82\xa1a\x01\xa1a\x02",        // a repeated key
            "\x81\x05\xa1x",                 // a positive fixint key
            "\x81\xcc\xc8\xa1x",             // a uint8 key
            "\x81\xfb\xa1x",                 // a negative fixint key
            "\x81\xd3\x80\0\0\0\0\0\0\0\xa1x", // an int64 key
            "\x81\xa1a\x80",               // an empty map inside (a stdClass to msgpack)
            "\x81\xc0\x01",                  // a nil key (left to msgpack)
            "\x81\xa1f\xca\x3f\xc0\x00\x00", // float32
            "\x81\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff", // a uint64 over PHP_INT_MAX (left to msgpack)
            "\x81\xa1e\xd4\x01\x02",         // an ext type (left to msgpack)
            "\x80",
            "\xde\x00\x00",
            "\xdf\xff\xff\xff\xff",          // a count the payload cannot hold
            "\x91\x01",                      // not a map
            '',
        ];
        foreach ($cases as $p) {
            $d = \Drover\Native\decode($p);
            if ($d !== null) {
                self::assertSame(msgpack_unpack($p), $d, bin2hex($p));
            }
            self::assertSame(serialize(@msgpack_unpack($p)), serialize(@self::nativeDecode($p)), bin2hex($p));
        }
        $deep = str_repeat("\x81\xa1k", 40) . "\x01";
        self::assertNull(\Drover\Native\decode($deep), 'nesting past 32 levels is left to msgpack');
    }

    public function testServerEnterAndLeaveAreArrayReplaceAndBack(): void
    {
        $base = $_SERVER;
        try {
            $req = ['REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/a', 'PATH' => '/request/path', 7 => 'int key', 'HTTP_HOST' => 'h'];
            for ($i = 0; $i < 3; $i++) { // in place from the second request on
                self::assertTrue(\Drover\Native\server_enter($req));
                self::assertSame(array_replace($base, $req), $_SERVER, 'the same keys, values and order as array_replace');
                \Drover\Native\server_leave();
                self::assertSame($base, $_SERVER, 'the process\'s $_SERVER again, PATH too');
            }

            // A handler that writes to $_SERVER: its writes end with the request.
            \Drover\Native\server_enter($req);
            $_SERVER['HTTPS'] = 'on';
            $_SERVER['REQUEST_URI'] = '/changed';
            unset($_SERVER['HTTP_HOST']);
            \Drover\Native\server_leave();
            self::assertSame($base, $_SERVER);

            // A copy kept past its request keeps the request's keys; $_SERVER does not.
            \Drover\Native\server_enter($req);
            $kept = $_SERVER;
            \Drover\Native\server_leave();
            self::assertSame(array_replace($base, $req), $kept);
            self::assertSame($base, $_SERVER);
            \Drover\Native\server_enter(['REQUEST_URI' => '/b']);
            self::assertSame(array_replace($base, $req), $kept, 'the next request does not write into the kept copy');
            self::assertSame(array_replace($base, ['REQUEST_URI' => '/b']), $_SERVER);
            \Drover\Native\server_leave();

            // A request that never left (its reset failed) is left by the next.
            \Drover\Native\server_enter($req);
            \Drover\Native\server_enter(['REQUEST_URI' => '/c']);
            self::assertSame(array_replace($base, ['REQUEST_URI' => '/c']), $_SERVER);
            \Drover\Native\server_leave();
            \Drover\Native\server_leave(); // a second leave does nothing
            self::assertSame($base, $_SERVER);

            // $_SERVER replaced by the handler: the process's again after.
            \Drover\Native\server_enter($req);
            $_SERVER = ['replaced' => true];
            \Drover\Native\server_leave();
            self::assertSame($base, $_SERVER);
        } finally {
            $_SERVER = $base;
        }
    }

    public function testResetEmptiesTheRequestsGlobals(): void
    {
        [$get, $post, $cookie, $files, $request] = [$_GET, $_POST, $_COOKIE, $_FILES, $_REQUEST];
        try {
            $_GET = ['a' => '1'];
            $ref = &$_POST;
            $ref = ['b' => '2'];
            $_COOKIE = ['c' => '3'];
            $_FILES = ['f' => []];
            $_REQUEST = ['a' => '1', 'b' => '2'];
            $_SESSION = ['user' => 'alice'];
            \Drover\Native\reset(true);
            self::assertSame([[], [], [], [], []], [$_GET, $_POST, $_COOKIE, $_FILES, $_REQUEST]);
            self::assertSame([], $ref, 'through a reference too');
            self::assertFalse(isset($_SESSION));

            $_GET = ['a' => '1'];
            $_SESSION = ['user' => 'bob'];
            \Drover\Native\reset(false); // globals: false leaves them to the app
            self::assertSame(['a' => '1'], $_GET);
            self::assertFalse(isset($_SESSION), 'the session goes whatever globals says');
        } finally {
            [$_GET, $_POST, $_COOKIE, $_FILES, $_REQUEST] = [$get, $post, $cookie, $files, $request];
        }
    }

    private static function nativeDecode(string $p): mixed
    {
        return \Drover\Native\decode($p) ?? msgpack_unpack($p);
    }

    /** @return array<mixed> */
    private static function randomMap(int $depth): array
    {
        $m = $depth === 0 ? ['REQUEST_METHOD' => 'GET'] : []; // a map, as a Request's payload is, not a list
        for ($i = 0, $n = $depth === 0 ? mt_rand(1, 20) : mt_rand(0, 4); $i < $n; $i++) {
            $key = match (mt_rand(0, 4)) {
                0 => mt_rand(0, 200),
                1 => (string) mt_rand(-5, 5),
                default => strtoupper(self::randomString(mt_rand(0, 40))),
            };
            $m[$key] = self::randomValue($depth);
        }
        return $m;
    }

    private static function randomValue(int $depth): mixed
    {
        return match (mt_rand(0, 9)) {
            0 => null,
            1 => (bool) mt_rand(0, 1),
            2 => mt_rand(-40, 300),
            3 => [PHP_INT_MIN, PHP_INT_MAX, -129, -32769, 65536, 1 << 40, -(1 << 40)][mt_rand(0, 6)],
            4 => mt_rand() / 7,
            5 => $depth < 3 ? self::randomMap($depth + 1) : 'leaf',
            6 => $depth < 3 ? array_map(static fn () => self::randomValue($depth + 1), range(0, mt_rand(0, 20))) : [],
            7 => ($n = mt_rand(0, 300)) > 0 ? random_bytes($n) : '',
            8 => str_repeat('x', [31, 32, 255, 256, 65535, 65536][mt_rand(0, 5)]),
            default => self::randomString(mt_rand(0, 60)),
        };
    }

    private static function randomString(int $n): string
    {
        $s = '';
        for ($i = 0; $i < $n; $i++) {
            $s .= chr(mt_rand(0x20, 0x7e));
        }
        return $s;
    }
}
