<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * The payloads of the frames (docs/protocol.md), both ways: the msgpack maps
 * (Hello, ConnInfo, Request, Response) and the binary ones (Window, Bind).
 * The encoders write what the Go encoders write, byte for byte: keys in the
 * order of the protocol's tables, integers and strings in their shortest
 * encoding, bodies as msgpack bin, optional keys left out when empty
 * (php-msgpack writes a body as str, which is why this is written by hand).
 * The decoders accept any msgpack the protocol allows and return every key
 * with its type, absent ones as Go's zero values. tests/Runtime/VectorTest
 * holds both to ipc/testdata/vectors.json, which the Go tests hold the Go
 * codec to.
 *
 * @internal
 */
final class Codec
{
    /**
     * @param array{version?: int, pid?: int, concurrency?: int, role?: string, sdk?: string, flow?: bool, prefetch?: int} $h
     */
    public static function encodeHello(array $h): string
    {
        $sdk = (string) ($h['sdk'] ?? '');
        $flow = (bool) ($h['flow'] ?? false);
        $prefetch = (int) ($h['prefetch'] ?? 0);
        $out = chr(0x80 | (4 + (int) ($sdk !== '') + (int) $flow + (int) ($prefetch !== 0)))
            . "\xa7version" . self::int((int) ($h['version'] ?? Frame::VERSION))
            . "\xa3pid" . self::int((int) ($h['pid'] ?? 0))
            . "\xabconcurrency" . self::int((int) ($h['concurrency'] ?? 1))
            . "\xa4role" . self::str((string) ($h['role'] ?? ''));
        if ($sdk !== '') {
            $out .= "\xa3sdk" . self::str($sdk);
        }
        if ($flow) {
            $out .= "\xa4flow\xc3";
        }
        if ($prefetch !== 0) {
            $out .= "\xa8prefetch" . self::int($prefetch);
        }
        return $out;
    }

    /**
     * @return array{version: int, pid: int, concurrency: int, role: string, sdk: string, flow: bool, prefetch: int}
     * @throws ProtocolError when $payload is not a msgpack map
     */
    public static function decodeHello(string $payload): array
    {
        $m = self::map($payload, 'hello');
        return [
            'version' => (int) ($m['version'] ?? 0),
            'pid' => (int) ($m['pid'] ?? 0),
            'concurrency' => (int) ($m['concurrency'] ?? 0),
            'role' => (string) ($m['role'] ?? ''),
            'sdk' => (string) ($m['sdk'] ?? ''),
            'flow' => (bool) ($m['flow'] ?? false),
            'prefetch' => (int) ($m['prefetch'] ?? 0),
        ];
    }

    /** @param array{listener?: int, remote?: string, local?: string} $c */
    public static function encodeConnInfo(array $c): string
    {
        return "\x83\xa8listener" . self::int((int) ($c['listener'] ?? 0))
            . "\xa6remote" . self::str((string) ($c['remote'] ?? ''))
            . "\xa5local" . self::str((string) ($c['local'] ?? ''));
    }

    /**
     * @return array{listener: int, remote: string, local: string}
     * @throws ProtocolError when $payload is not a msgpack map
     */
    public static function decodeConnInfo(string $payload): array
    {
        $m = self::map($payload, 'connect');
        return [
            'listener' => (int) ($m['listener'] ?? 0),
            'remote' => (string) ($m['remote'] ?? ''),
            'local' => (string) ($m['local'] ?? ''),
        ];
    }

    /**
     * A Request payload (the master writes these; here for tests and tools).
     *
     * @param array{method?: string, target?: string, proto?: string, headers?: list<string>|null, content_length?: int, body?: string, body_follows?: bool, remote?: string, listener?: int} $r
     */
    public static function encodeRequest(array $r): string
    {
        $body = (string) ($r['body'] ?? '');
        $follows = (bool) ($r['body_follows'] ?? false);
        $headers = $r['headers'] ?? null;
        return chr(0x80 | (7 + (int) ($body !== '') + (int) $follows))
            . "\xa6method" . self::str((string) ($r['method'] ?? ''))
            . "\xa6target" . self::str((string) ($r['target'] ?? ''))
            . "\xa5proto" . self::str((string) ($r['proto'] ?? ''))
            . "\xa7headers" . ($headers === null ? "\xc0" : self::strings($headers))
            . "\xaecontent_length" . self::int((int) ($r['content_length'] ?? 0))
            . ($body !== '' ? "\xa4body" . self::bin($body) : '')
            . ($follows ? "\xacbody_follows\xc3" : '')
            . "\xa6remote" . self::str((string) ($r['remote'] ?? ''))
            . "\xa8listener" . self::int((int) ($r['listener'] ?? 0));
    }

    /**
     * @return array{method: string, target: string, proto: string, headers: list<string>, content_length: int, body: string, body_follows: bool, remote: string, listener: int}
     * @throws ProtocolError when $payload is not a msgpack map
     */
    public static function decodeRequest(string $payload): array
    {
        $m = self::map($payload, 'request');
        return [
            'method' => (string) ($m['method'] ?? ''),
            'target' => (string) ($m['target'] ?? ''),
            'proto' => (string) ($m['proto'] ?? ''),
            'headers' => self::listOfStrings($m['headers'] ?? null),
            'content_length' => (int) ($m['content_length'] ?? 0),
            'body' => (string) ($m['body'] ?? ''),
            'body_follows' => (bool) ($m['body_follows'] ?? false),
            'remote' => (string) ($m['remote'] ?? ''),
            'listener' => (int) ($m['listener'] ?? 0),
        ];
    }

    /**
     * A Response payload: status, headers (name, value, …) and body, which
     * is left out when empty.
     *
     * @param list<string> $headers
     */
    public static function encodeResponse(int $status, array $headers, string $body = ''): string
    {
        return ($body === '' ? "\x82" : "\x83")
            . "\xa6status" . self::int($status)
            . "\xa7headers" . self::strings($headers)
            . ($body === '' ? '' : "\xa4body" . self::bin($body));
    }

    /**
     * @return array{status: int, headers: list<string>, body: string}
     * @throws ProtocolError when $payload is not a msgpack map
     */
    public static function decodeResponse(string $payload): array
    {
        $m = self::map($payload, 'response');
        return [
            'status' => (int) ($m['status'] ?? 0),
            'headers' => self::listOfStrings($m['headers'] ?? null),
            'body' => (string) ($m['body'] ?? ''),
        ];
    }

    /** A Window payload granting $n bytes (0 to 2^32-1). */
    public static function encodeWindow(int $n): string
    {
        return pack('N', $n);
    }

    /** @throws ProtocolError unless $payload is 4 bytes */
    public static function decodeWindow(string $payload): int
    {
        if (strlen($payload) !== 4) {
            throw new ProtocolError(sprintf('window frame with a %d-byte payload (want 4)', strlen($payload)));
        }
        return unpack('N', $payload)[1];
    }

    /** A Bind payload: $uid as a uint64 (a negative int is its two's complement). */
    public static function encodeBind(int $uid): string
    {
        return pack('J', $uid);
    }

    /** @throws ProtocolError unless $payload is 8 bytes */
    public static function decodeBind(string $payload): int
    {
        if (strlen($payload) !== 8) {
            throw new ProtocolError(sprintf('bind with a %d-byte payload (want an 8-byte uid)', strlen($payload)));
        }
        return unpack('J', $payload)[1];
    }

    /** @return array<mixed> */
    private static function map(string $payload, string $what): array
    {
        $m = $payload === '' ? null : @msgpack_unpack($payload);
        if (!is_array($m)) {
            throw new ProtocolError("undecodable $what frame: want a msgpack map");
        }
        return $m;
    }

    /**
     * A decoded array of str as a list of strings (nil or another type: none).
     *
     * @return list<string>
     */
    private static function listOfStrings(mixed $v): array
    {
        if (!is_array($v)) {
            return [];
        }
        foreach ($v as $s) {
            if (!is_string($s)) {
                return array_map('strval', array_values($v));
            }
        }
        return array_is_list($v) ? $v : array_values($v);
    }

    /** @param list<string> $list */
    private static function strings(array $list): string
    {
        $n = count($list);
        $out = $n <= 15 ? chr(0x90 | $n) : ($n <= 0xffff ? "\xdc" . pack('n', $n) : "\xdd" . pack('N', $n));
        foreach ($list as $s) {
            $s = (string) $s;
            $len = strlen($s);
            $out .= ($len <= 31 ? chr(0xa0 | $len) : self::strHead($len)) . $s; // inline: most headers are short
        }
        return $out;
    }

    private static function str(string $s): string
    {
        $n = strlen($s);
        return ($n <= 31 ? chr(0xa0 | $n) : self::strHead($n)) . $s;
    }

    /** The head of a str of more than 31 bytes. */
    private static function strHead(int $n): string
    {
        if ($n <= 0xff) {
            return "\xd9" . chr($n);
        }
        return $n <= 0xffff ? "\xda" . pack('n', $n) : "\xdb" . pack('N', $n);
    }

    private static function bin(string $b): string
    {
        $n = strlen($b);
        if ($n <= 0xff) {
            return "\xc4" . chr($n) . $b;
        }
        return $n <= 0xffff ? "\xc5" . pack('n', $n) . $b : "\xc6" . pack('N', $n) . $b;
    }

    private static function int(int $v): string
    {
        if ($v >= -32 && $v <= 0x7f) {
            return chr($v & 0xff);
        }
        if ($v >= 0) {
            if ($v <= 0xff) {
                return "\xcc" . chr($v);
            }
            if ($v <= 0xffff) {
                return "\xcd" . pack('n', $v);
            }
            return $v <= 0xffffffff ? "\xce" . pack('N', $v) : "\xcf" . pack('J', $v);
        }
        if ($v >= -0x80) {
            return "\xd0" . chr($v & 0xff);
        }
        if ($v >= -0x8000) {
            return "\xd1" . pack('n', $v & 0xffff);
        }
        return $v >= -0x80000000 ? "\xd2" . pack('N', $v & 0xffffffff) : "\xd3" . pack('J', $v);
    }
}
