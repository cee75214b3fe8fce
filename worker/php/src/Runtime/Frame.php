<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * The frame protocol's constants and its 16-byte header (docs/protocol.md):
 * payload length (uint32), type, flags, two reserved zero bytes, id (uint64),
 * all big-endian.
 *
 * @internal
 */
final class Frame
{
    public const VERSION = 1;
    public const HEADER_SIZE = 16;
    /** The largest payload a worker accepts from the master (ipc.DefaultMaxPayload). */
    public const MAX_PAYLOAD = 64 << 20;
    /** The largest body piece sent in one frame: the master accepts 64 KiB whatever package_max_length is. */
    public const MAX_CHUNK = 64 << 10;
    /** Flow-control window per request and direction, and the batch a credit is sent in. */
    public const WINDOW = 256 << 10;
    public const CREDIT_BATCH = 128 << 10;

    public const HELLO = 1;
    public const STOP = 2;
    public const CONNECT = 3;
    public const DATA = 4;
    public const CLOSE = 5;
    public const SEND = 6;
    public const CLOSE_CONN = 7;
    public const DONE = 8;
    public const TASK = 9;
    public const TASK_RESULT = 10;
    public const MESSAGE = 11;
    public const BIND = 12;
    public const RETIRE = 13;
    public const REQUEST = 16;
    public const REQUEST_BODY = 17;
    public const RESPONSE = 18;
    public const RESPONSE_BODY = 19;
    public const CANCEL = 20;
    public const WINDOW_CREDIT = 21;

    public const FLAG_END = 0x01;
    public const FLAG_ABORT = 0x02;
    /** On a request's first Response, with FLAG_END: handed back unstarted, for another worker. */
    public const FLAG_RETRY = 0x04;

    /** Encodes one frame: header and payload. */
    public static function encode(int $type, int $id, string $payload = '', int $flags = 0): string
    {
        return pack('NCCnJ', strlen($payload), $type, $flags, 0, $id) . $payload;
    }

    /**
     * Decodes the header at $offset of $buf, which holds at least 16 bytes
     * from there: [length, type, flags, id].
     *
     * @return array{int, int, int, int}
     * @throws ProtocolError on a malformed header or an oversized payload
     */
    public static function decodeHeader(string $buf, int $offset = 0): array
    {
        // Type and flags as one 16-bit field: unpack's cost grows with the
        // keys it names, and this runs for every frame.
        $h = unpack('Nl/nt/nr/Ji', $buf, $offset);
        if ($h['t'] < 0x100 || $h['r'] !== 0) {
            throw new ProtocolError(sprintf('malformed frame header %s', bin2hex(substr($buf, $offset, self::HEADER_SIZE))));
        }
        if ($h['l'] > self::MAX_PAYLOAD) {
            throw new ProtocolError(sprintf('frame of %d bytes is over the %d-byte limit', $h['l'], self::MAX_PAYLOAD));
        }
        return [$h['l'], $h['t'] >> 8, $h['t'] & 0xff, $h['i']];
    }

    /** The name of a frame type, for log lines. */
    public static function name(int $type): string
    {
        static $names = null;
        if ($names === null) {
            $names = [];
            foreach ((new \ReflectionClass(self::class))->getConstants() as $name => $value) {
                if (is_int($value) && $value < 128 && !str_starts_with($name, 'FLAG') && !in_array($name, ['VERSION', 'HEADER_SIZE', 'MAX_PAYLOAD', 'MAX_CHUNK', 'WINDOW', 'CREDIT_BATCH'], true)) {
                    $names[$value] = strtolower($name);
                }
            }
        }
        return $names[$type] ?? "type($type)";
    }
}
