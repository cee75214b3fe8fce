<?php

declare(strict_types=1);

namespace Drover\Runtime;

// Imported so that the per-request calls compile to direct calls (strlen,
// is_array: to their opcodes) rather than a namespaced look-up.
use function chr;
use function is_array;
use function msgpack_pack;
use function msgpack_unpack;
use function pack;
use function strlen;

/**
 * The payloads of the frames (docs/protocol.md), both ways: the msgpack maps
 * (Hello, ConnInfo, Request, Response) and the binary ones (Window, Bind).
 * The encoders write what the Go encoders write, byte for byte: keys in the
 * order of the protocol's tables, integers and strings in their shortest
 * encoding, bodies as msgpack bin, optional keys left out when empty
 * (php-msgpack writes a body as str, which is why this is written by hand).
 * The decoders accept any msgpack the protocol allows and return every key
 * with its type, absent ones as Go's zero values, except decodeRequest,
 * which is on every request's path and returns php-msgpack's map as it is
 * (see there). tests/Runtime/VectorTest holds both to
 * ipc/testdata/vectors.json, which the Go tests hold the Go codec to.
 *
 * Per request the SDK decodes one Request and encodes one Response; both
 * leave the work to php-msgpack's C code where its output is the Go
 * encoder's (a map decoded; a list of header strings encoded, with
 * msgpack.use_str8_serialization on, which this file sets) and write by
 * hand only what php-msgpack would write differently (the body as bin).
 *
 * @internal
 */
final class Codec
{
    /**
     * encodeResponse's head for each status seen, with a body (3 keys) and
     * without (2). Owned by head(), which fills them; encodeResponse reads.
     *
     * @var array<int, string>
     */
    private static array $head3 = [];
    /** @var array<int, string> */
    private static array $head2 = [];

    /**
     * @param array{version?: int, pid?: int, concurrency?: int, role?: string, sdk?: string, flow?: bool, prefetch?: int, cgi?: bool} $h
     */
    public static function encodeHello(array $h): string
    {
        $sdk = (string) ($h['sdk'] ?? '');
        $flow = (bool) ($h['flow'] ?? false);
        $prefetch = (int) ($h['prefetch'] ?? 0);
        $cgi = (bool) ($h['cgi'] ?? false);
        $out = chr(0x80 | (4 + (int) ($sdk !== '') + (int) $flow + (int) ($prefetch !== 0) + (int) $cgi))
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
        if ($cgi) {
            $out .= "\xa3cgi\xc3";
        }
        return $out;
    }

    /**
     * @return array{version: int, pid: int, concurrency: int, role: string, sdk: string, flow: bool, prefetch: int, cgi: bool}
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
            'cgi' => (bool) ($m['cgi'] ?? false),
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
     * Go's zero values of a Request's keys: what a reader of decodeRequest's
     * map takes for an absent key (`$m['body'] ?? ''`, or `$m + REQUEST_ZEROS`).
     */
    public const REQUEST_ZEROS = ['method' => '', 'target' => '', 'proto' => '', 'headers' => [], 'content_length' => 0,
        'body' => '', 'body_follows' => false, 'remote' => '', 'listener' => 0];

    /**
     * A Request payload as php-msgpack decodes it, with nothing added or
     * converted: this runs for every request, and filling in the absent
     * keys (the Go encoder leaves out body when empty and body_follows when
     * false) would cost more than the decoding's C code (php-msgpack sizes
     * the array for the keys it read, and two more grow it). A reader takes
     * a key with `?? ` and its zero value from REQUEST_ZEROS; the types are
     * the Go encoder's, which VectorTest holds to the vector (headers may be
     * nil, as Go writes a nil list).
     *
     * @return array{method?: string, target?: string, proto?: string, headers?: list<string>|null, content_length?: int, body?: string, body_follows?: bool, remote?: string, listener?: int}
     * @throws ProtocolError when $payload is not a msgpack map
     */
    public static function decodeRequest(string $payload): array
    {
        $m = msgpack_unpack($payload); // '' is null; garbage false, with a warning (the loop logs it)
        if (!is_array($m)) {
            throw new ProtocolError('undecodable request frame: want a msgpack map');
        }
        return $m;
    }

    /**
     * A Response payload: status, headers (name, value, …) and body, which
     * is left out when empty. The bytes up to the header list depend on the
     * status only and are kept from one response to the next; the header
     * list is php-msgpack's (an array of str, each in its shortest form as
     * Go writes it, given msgpack.use_str8_serialization, which this file
     * sets); the body is a bin header written here and the body itself,
     * copied once, into the payload.
     *
     * @param list<string> $headers a list of strings, as Response::headerList
     *                              gives (php-msgpack would write another array as a map)
     */
    public static function encodeResponse(int $status, array $headers, string $body = ''): string
    {
        $n = strlen($body);
        if ($n === 0) {
            return (self::$head2[$status] ?? self::head(false, $status)) . msgpack_pack($headers);
        }
        return (self::$head3[$status] ?? self::head(true, $status)) . msgpack_pack($headers)
            . ($n <= 0xff ? "\xa4body\xc4" . chr($n) : ($n <= 0xffff ? "\xa4body\xc5" . pack('n', $n) : "\xa4body\xc6" . pack('N', $n)))
            . $body;
    }

    /** A Response payload up to its header list: the map's head, status and the key headers. */
    private static function head(bool $body, int $status): string
    {
        $head = ($body ? "\x83" : "\x82") . "\xa6status" . self::int($status) . "\xa7headers";
        if ($status >= 100 && $status <= 999) { // HTTP's statuses: at most 900 of each
            if ($body) {
                self::$head3[$status] = $head;
            } else {
                self::$head2[$status] = $head;
            }
        }
        return $head;
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

// encodeResponse leaves the header list to php-msgpack, whose strings of
// 32 to 255 bytes are str 8 (as Go writes them) only with this setting on
// (its default; str 16 otherwise, which Go reads but is not the vector's).
ini_set('msgpack.use_str8_serialization', '1');
