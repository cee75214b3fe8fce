<?php

declare(strict_types=1);

namespace Drover\Tests\Runtime;

use Drover\Http\Request;
use Drover\Runtime\Codec;
use Drover\Runtime\Frame;
use PHPUnit\Framework\TestCase;

/**
 * Holds the PHP SDK's Frame and Codec to ipc/testdata/vectors.json, the
 * frames the Go encoders write (ipc/vector_test.go holds the Go side to the
 * same file): every case decodes to the header fields and payload given and
 * encodes back to the same bytes.
 */
final class VectorTest extends TestCase
{
    private const FILE = __DIR__ . '/../../../../ipc/testdata/vectors.json';

    /** @return iterable<string, array{array<string, mixed>}> */
    public static function cases(): iterable
    {
        $doc = json_decode((string) file_get_contents(self::FILE), true, 512, JSON_THROW_ON_ERROR);
        foreach ($doc['cases'] as $c) {
            yield $c['name'] => [$c];
        }
    }

    /**
     * @dataProvider cases
     * @param array<string, mixed> $c
     */
    public function testDecodes(array $c): void
    {
        $frame = hex2bin($c['frame']);
        [$len, $type, $flags, $id] = Frame::decodeHeader($frame);
        self::assertSame([strlen($frame) - Frame::HEADER_SIZE, $c['type'], $c['flags'], $c['id']], [$len, $type, $flags, sprintf('%u', $id)], 'header fields');
        $payload = substr($frame, Frame::HEADER_SIZE);
        self::assertSame($c['payload'], self::decode($c['kind'], $payload), 'payload');
    }

    /**
     * The cases whose payload a worker writes, or could (request_cgi is
     * the master's alone: the SDK only reads it).
     *
     * @return iterable<string, array{array<string, mixed>}>
     */
    public static function encodableCases(): iterable
    {
        foreach (self::cases() as $name => [$c]) {
            if ($c['kind'] !== 'request_cgi') {
                yield $name => [$c];
            }
        }
    }

    /**
     * @dataProvider encodableCases
     * @param array<string, mixed> $c
     */
    public function testEncodes(array $c): void
    {
        $frame = Frame::encode($c['type'], self::u64($c['id']), self::encode($c['kind'], $c['payload']), $c['flags']);
        $want = hex2bin($c['frame']);
        if ($frame !== $want) {
            for ($i = 0; $i < min(strlen($frame), strlen($want)) && $frame[$i] === $want[$i]; $i++);
            self::fail(sprintf("the encoded frame (%d bytes) differs from the vector's (%d bytes) at byte %d:\n got …%s\nwant …%s",
                strlen($frame), strlen($want), $i, bin2hex(substr($frame, max(0, $i - 8), 24)), bin2hex(substr($want, max(0, $i - 8), 24))));
        }
        self::assertSame(bin2hex($want), bin2hex($frame));
    }

    /** @return iterable<string, array{array<string, mixed>}> */
    public static function cgiCases(): iterable
    {
        foreach (self::cases() as $name => [$c]) {
            if ($c['kind'] === 'request_cgi') {
                yield $name => [$c];
            }
        }
    }

    /**
     * A request in the CGI layout is the same Request to a handler as the
     * same request in the default layout: $_SERVER, headers, query,
     * cookies, body, remote address.
     *
     * @dataProvider cgiCases
     * @param array<string, mixed> $c
     */
    public function testTheCGILayoutGivesTheSameRequest(array $c): void
    {
        $m = Codec::decodeRequest(substr(hex2bin($c['frame']), Frame::HEADER_SIZE));
        $cgi = Request::fromServer($m, (string) ($m['body'] ?? ''));
        $v = $c['payload'];
        $v['body'] = hex2bin($v['body_hex']);
        unset($v['body_hex']);
        $plain = Request::fromFrame(Codec::decodeRequest(Codec::encodeRequest($v)) + Codec::REQUEST_ZEROS, $v['body']);
        $strip = static fn (array $s) => array_diff_key($s, ['REQUEST_TIME' => 1, 'REQUEST_TIME_FLOAT' => 1]);
        $want = $strip($plain->serverParams());
        $got = $strip($cgi->serverParams());
        ksort($want);
        ksort($got);
        self::assertSame($want, $got, '$_SERVER');
        foreach (['method', 'target', 'protocol', 'body', 'remoteAddr', 'remotePort', 'listener'] as $prop) {
            self::assertSame($plain->$prop, $cgi->$prop, $prop);
        }
        self::assertSame($plain->headers(), array_change_key_case($cgi->headers()), 'headers()');
        foreach (['host', 'Content-Type', 'content-length', 'cookie', 'x-none'] as $h) {
            self::assertSame($plain->header($h), $cgi->header($h), "header('$h')");
        }
        self::assertSame($plain->query(), $cgi->query(), 'query()');
        self::assertSame($plain->cookies(), $cgi->cookies(), 'cookies()');
        self::assertSame($plain->path(), $cgi->path(), 'path()');
    }

    /** Every frame type a worker reads or writes has a case. */
    public function testCoversEveryWorkerFrameType(): void
    {
        $seen = array_map(static fn (array $args) => $args[0]['type'], iterator_to_array(self::cases(), false));
        foreach ([Frame::HELLO, Frame::STOP, Frame::CONNECT, Frame::DATA, Frame::CLOSE, Frame::SEND, Frame::CLOSE_CONN,
            Frame::DONE, Frame::TASK, Frame::TASK_RESULT, Frame::MESSAGE, Frame::BIND, Frame::RETIRE, Frame::REQUEST,
            Frame::REQUEST_BODY, Frame::RESPONSE, Frame::RESPONSE_BODY, Frame::CANCEL, Frame::WINDOW_CREDIT] as $t) {
            self::assertContains($t, $seen, Frame::name($t) . ' has no case');
        }
    }

    private static function decode(string $kind, string $p): mixed
    {
        switch ($kind) {
            case 'none':
                self::assertSame('', $p, 'a payload where none belongs');
                return null;
            case 'raw':
                return bin2hex($p);
            case 'text':
                return $p;
            case 'hello':
                return Codec::decodeHello($p);
            case 'connect':
                return Codec::decodeConnInfo($p);
            case 'request':
                $r = Codec::decodeRequest($p) + Codec::REQUEST_ZEROS; // as the SDK reads it: absent keys are zero
                $r['headers'] ??= []; // a nil list
                return ['method' => $r['method'], 'target' => $r['target'], 'proto' => $r['proto'], 'headers' => $r['headers'],
                    'content_length' => $r['content_length'], 'body_hex' => bin2hex($r['body']), 'body_follows' => $r['body_follows'],
                    'remote' => $r['remote'], 'listener' => $r['listener']];
            case 'request_cgi':
                // As the SDK reads it (HttpHandler): the map, then the Request.
                $m = Codec::decodeRequest($p);
                $follows = (bool) ($m['body_follows'] ?? false);
                $r = \Drover\Http\Request::fromServer($m, (string) ($m['body'] ?? ''));
                $s = $r->serverParams();
                $port = $r->remotePort;
                return ['method' => $r->method, 'target' => $r->target, 'proto' => $r->protocol, 'headers' => $r->headerList(),
                    'content_length' => isset($s['CONTENT_LENGTH']) ? (int) $s['CONTENT_LENGTH'] : (stripos((string) ($s['HTTP_TRANSFER_ENCODING'] ?? ''), 'chunked') !== false ? -1 : 0),
                    'body_hex' => bin2hex($r->body), 'body_follows' => $follows,
                    'remote' => $port === 0 ? $r->remoteAddr : (str_contains($r->remoteAddr, ':') ? "[{$r->remoteAddr}]:$port" : "{$r->remoteAddr}:$port"),
                    'listener' => $r->listener];
            case 'response':
                $r = Codec::decodeResponse($p);
                return ['status' => $r['status'], 'headers' => $r['headers'], 'body_hex' => bin2hex($r['body'])];
            case 'window':
                return Codec::decodeWindow($p);
            case 'bind':
                return sprintf('%u', Codec::decodeBind($p));
        }
        self::fail("unknown kind $kind");
    }

    private static function encode(string $kind, mixed $v): string
    {
        switch ($kind) {
            case 'none':
                return '';
            case 'raw':
                return hex2bin($v);
            case 'text':
                return $v;
            case 'hello':
                return Codec::encodeHello($v);
            case 'connect':
                return Codec::encodeConnInfo($v);
            case 'request':
                $v['body'] = hex2bin($v['body_hex']);
                unset($v['body_hex']);
                return Codec::encodeRequest($v);
            case 'response':
                return Codec::encodeResponse($v['status'], $v['headers'], hex2bin($v['body_hex']));
            case 'window':
                return Codec::encodeWindow($v);
            case 'bind':
                return Codec::encodeBind(self::u64($v));
        }
        self::fail("unknown kind $kind");
    }

    /** A decimal uint64 as PHP's int of the same 64 bits. */
    private static function u64(string $dec): int
    {
        $hi = $lo = 0;
        foreach (str_split($dec) as $d) { // (hi, lo) = (hi, lo) * 10 + d, in 32-bit halves
            $lo = $lo * 10 + (int) $d;
            $hi = ($hi * 10 + ($lo >> 32)) & 0xffffffff;
            $lo &= 0xffffffff;
        }
        return unpack('J', pack('NN', $hi, $lo))[1];
    }
}
