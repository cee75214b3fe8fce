<?php

declare(strict_types=1);

namespace Drover;

use Drover\Runtime\Shm;
use Drover\Runtime\Waiter;

/**
 * A table in memory every worker, task worker and user process shares,
 * with Swoole\Table's methods: rows of fixed columns by key, which outlive
 * any worker (a reload, a max_request recycle, a kill -9). The table is
 * declared in drover.yaml, not built in PHP:
 *
 *     tables:
 *       cache: {size: 100000, columns: {value: string(256), hits: int, updated: float}}
 *
 *     $cache = new Drover\Table('cache');          // was: new Swoole\Table(…); column(…); create()
 *     $cache->set('k', ['value' => 'v', 'hits' => 1]);
 *     $cache->incr('k', 'hits');                   // 2, atomic across processes
 *     $row = $cache->get('k');                     // ['hits' => 2, 'updated' => 0.0, 'value' => 'v']
 *     foreach ($cache as $key => $row) { … }
 *
 * Each operation is atomic for its row; reads take no lock; the same
 * rows are read and written by Go handlers (worker.Table). Keys are 1 to
 * 63 bytes. A set of a new key into a full table, a key or a string too
 * long, return false with a warning (Swoole truncates a long string; this
 * refuses it). docs/tables.md has the layout and the guarantees.
 *
 * @implements \Iterator<string, array<string, int|float|string>>
 */
final class Table implements \Iterator, \Countable
{
    public const TYPE_INT = 1;
    public const TYPE_FLOAT = 2;
    public const TYPE_STRING = 3;

    private Shm $shm;
    private string $name;
    private int $off;
    private int $size;
    private int $nb;
    private int $mask;
    private int $rowSize;
    private int $buckets;
    private int $rows;
    /** @var array<string, array{idx: int, type: int, size: int, off: int}> */
    private array $cols;
    /** The region's views, kept here: one property read less per access. */
    private \FFI\CData $u8;
    private \FFI\CData $u32;
    private \FFI\CData $i64;
    private \FFI\CData $f64;
    /** unpack() format of a row's numbers and string lengths, at their offsets. */
    private string $fmt;
    /** @var array<string, array{int, int}> string columns: offset, size */
    private array $strings = [];
    /** Bytes a lookup copies of a row at once: all of it, unless rows are large. */
    private int $readLen;

    // Iteration state.
    private int $itBucket = 0;
    /** @var list<string> keys given already from $itBucket */
    private array $itSeen = [];
    private ?string $itKey = null;
    /** @var array<string, int|float|string> */
    private array $itRow = [];

    /** Opens the table $name of drover.yaml's tables:. */
    public function __construct(string $name)
    {
        $this->shm = Shm::get();
        $t = $this->shm->tables[$name] ?? null;
        if ($t === null) {
            $have = implode(', ', array_keys($this->shm->tables)) ?: 'none';
            throw new \InvalidArgumentException("drover: no table \"$name\" (declared: $have; add it under tables: in drover.yaml)");
        }
        $this->name = $name;
        $this->off = $t['off'];
        $this->size = $t['size'];
        $this->nb = $t['nb'];
        $this->mask = $t['mask'];
        $this->rowSize = $t['rowSize'];
        $this->buckets = $t['buckets'];
        $this->rows = $t['rows'];
        $this->cols = $t['cols'];
        $this->u8 = $this->shm->u8;
        $this->u32 = $this->shm->u32;
        $this->i64 = $this->shm->i64;
        $this->f64 = $this->shm->f64;
        $fmt = [];
        foreach ($this->cols as $name => $c) {
            $fmt[] = '@' . $c['off'] . '/' . match ($c['type']) { self::TYPE_INT => 'q', self::TYPE_FLOAT => 'e', default => 'V' } . $name;
            if ($c['type'] === self::TYPE_STRING) {
                $this->strings[$name] = [$c['off'], $c['size']];
            }
        }
        $this->fmt = implode('/', $fmt);
        $this->readLen = $this->rowSize <= 4096 ? $this->rowSize : Shm::ROW_HEADER;
    }

    /**
     * Swoole's way of declaring a column, kept so that Swoole code runs
     * unchanged: it checks that drover.yaml declares the column so.
     */
    public function column(string $name, int $type, int $size = 0): bool
    {
        $c = $this->cols[$name] ?? null;
        if ($c === null || $c['type'] !== $type || ($type === self::TYPE_STRING && $c['size'] !== $size)) {
            $want = match ($type) { self::TYPE_INT => 'int', self::TYPE_FLOAT => 'float', default => "string($size)" };
            throw new \LogicException("drover: table {$this->name} has no column $name: $want; columns are declared in drover.yaml (tables: {$this->name}: columns: {{$name}: $want})");
        }
        return true;
    }

    /** Swoole's create(): the table exists already (drover.yaml). */
    public function create(): bool
    {
        return true;
    }

    /**
     * Writes the given columns of $key's row, inserting it (other columns
     * zero) when absent. False, with a warning, when the table is full,
     * the key or a string is too long, or the bucket stayed locked.
     *
     * @param array<string, int|float|string|bool|null> $value
     */
    public function set(string $key, array $value): bool
    {
        if (!$this->checkKey($key)) {
            return false;
        }
        $writes = [];
        $mask = 0;
        foreach ($value as $name => $v) {
            $c = $this->col((string) $name);
            if ($c['type'] === self::TYPE_STRING) {
                $v = (string) $v;
                if (strlen($v) > $c['size']) {
                    trigger_error("drover: table {$this->name}, key $key: " . strlen($v) . " bytes for column $name, string({$c['size']})", E_USER_WARNING);
                    return false;
                }
            } elseif ($c['type'] === self::TYPE_INT) {
                $v = (int) $v;
            } else {
                $v = (float) $v;
            }
            $writes[] = [$c['type'], $c['off'], $v];
            $mask |= 1 << $c['idx'];
        }
        $op = count($writes) === 1 && $writes[0][0] !== self::TYPE_STRING ? Shm::OP_INCR : Shm::OP_SET;
        $shm = $this->shm;
        return $this->write($key, $op, $mask, static function (int $r) use ($writes, $shm): void {
            foreach ($writes as [$type, $off, $v]) {
                $at = $r + $off;
                if ($type === self::TYPE_INT) {
                    $shm->i64[$at >> 3] = $v;
                } elseif ($type === self::TYPE_FLOAT) {
                    $shm->f64[$at >> 3] = $v;
                } else {
                    $shm->u32[$at >> 2] = strlen($v);
                    if ($v !== '') {
                        \FFI::memcpy($shm->u8 + ($at + 4), $v, strlen($v));
                    }
                }
            }
        });
    }

    /**
     * $key's row as an array of every column, or one column's value with
     * $field; false when the key is absent.
     *
     * @return array<string, int|float|string>|int|float|string|false
     */
    public function get(string $key, ?string $field = null): array|int|float|string|false
    {
        $c = $field === null ? null : ($this->cols[$field] ?? $this->col($field));
        $len = strlen($key);
        if ($len === 0 || $len > Shm::MAX_KEY) {
            return false;
        }
        $bi = crc32($key) & $this->mask;
        $b = $this->buckets + $bi * Shm::BUCKET;
        $seq = ($b + Shm::B_SEQ) >> 2;
        $u32 = $this->u32;
        $w = null;
        for ($tries = 0; ; $tries++) {
            $s1 = $u32[$seq];
            if ($s1 & 1) {
                if (!$this->awaitWriter($bi, $b, $w ??= new Waiter())) {
                    return false;
                }
                continue;
            }
            // Each row of the chain is copied whole (one FFI call), then
            // read with PHP's string functions.
            $v = false;
            $idx = $u32[$seq + 1]; // the head, next to the sequence
            for ($steps = 0; $idx !== 0 && $idx <= $this->size && $steps < $this->size; $steps++) {
                $r = $this->rows + ($idx - 1) * $this->rowSize;
                $raw = \FFI::string($this->u8 + $r, $this->readLen);
                if (ord($raw[Shm::R_KLEN]) === $len && substr($raw, Shm::R_KEY, $len) === $key) {
                    if ($this->readLen !== $this->rowSize) {
                        $raw = \FFI::string($this->u8 + $r, $this->rowSize);
                    }
                    $v = $c === null ? $this->decode($raw) : $this->decodeColumn($raw, $c);
                    break;
                }
                $idx = unpack('V', $raw, Shm::R_NEXT)[1];
            }
            if ($u32[$seq] === $s1) {
                return $v;
            }
            if ($tries >= 64) {
                return $this->readLocked($bi, $b, $key, $c);
            }
        }
    }

    /** @return array<string, int|float|string> the columns of a row copied whole */
    private function decode(string $raw): array
    {
        $row = unpack($this->fmt, $raw);
        foreach ($this->strings as $name => [$off, $size]) {
            $row[$name] = substr($raw, $off + 4, min($row[$name], $size));
        }
        return $row;
    }

    /** @param array{idx: int, type: int, size: int, off: int} $c */
    private function decodeColumn(string $raw, array $c): int|float|string
    {
        return match ($c['type']) {
            self::TYPE_INT => unpack('q', $raw, $c['off'])[1],
            self::TYPE_FLOAT => unpack('e', $raw, $c['off'])[1],
            default => substr($raw, $c['off'] + 4, min(unpack('V', $raw, $c['off'])[1], $c['size'])),
        };
    }

    /** Whether $key is in the table. */
    public function exist(string $key): bool
    {
        $len = strlen($key);
        if ($len === 0 || $len > Shm::MAX_KEY) {
            return false;
        }
        $bi = crc32($key) & $this->mask;
        $b = $this->buckets + $bi * Shm::BUCKET;
        $seq = ($b + Shm::B_SEQ) >> 2;
        $u32 = $this->u32;
        $w = null;
        for ($tries = 0; ; $tries++) {
            $s1 = $u32[$seq];
            if ($s1 & 1) {
                if (!$this->awaitWriter($bi, $b, $w ??= new Waiter())) {
                    return false;
                }
                continue;
            }
            $idx = $this->find($b, $key);
            if ($u32[$seq] === $s1 || $tries >= 64) {
                return $idx !== 0;
            }
        }
    }

    /** Alias of exist(), as Swoole's. */
    public function exists(string $key): bool
    {
        return $this->exist($key);
    }

    /**
     * Adds $incrby to an int or float column of $key's row (inserted when
     * absent, as Swoole) and returns the new value; false with a warning
     * when the table is full or the bucket stayed locked.
     */
    public function incr(string $key, string $column, int|float $incrby = 1): int|float|false
    {
        $c = $this->col($column);
        if ($c['type'] === self::TYPE_STRING) {
            throw new \InvalidArgumentException("drover: table {$this->name}: incr of string column $column");
        }
        if (!$this->checkKey($key)) {
            return false;
        }
        $shm = $this->shm;
        $result = 0;
        $i = $c['off'];
        $float = $c['type'] === self::TYPE_FLOAT;
        $ok = $this->write($key, Shm::OP_INCR, 0, static function (int $r) use ($shm, $i, $float, $incrby, &$result): void {
            $at = ($r + $i) >> 3;
            if ($float) {
                $result = $shm->f64[$at] + $incrby;
                $shm->f64[$at] = $result;
            } else {
                $result = self::wrapAdd($shm->i64[$at], (int) $incrby);
                $shm->i64[$at] = $result;
            }
        });
        return $ok ? $result : false;
    }

    /** incr() with -$decrby. */
    public function decr(string $key, string $column, int|float $decrby = 1): int|float|false
    {
        return $this->incr($key, $column, -$decrby);
    }

    /** Removes $key's row; false when it was not there (or its bucket stayed locked, with a warning). */
    public function del(string $key): bool
    {
        $len = strlen($key);
        if ($len === 0 || $len > Shm::MAX_KEY) {
            return false;
        }
        $bi = crc32($key) & $this->mask;
        $b = $this->buckets + $bi * Shm::BUCKET;
        if (!$this->lock($bi, $b)) {
            return false;
        }
        $u32 = $this->shm->u32;
        try {
            [$idx, $prev] = $this->findLocked($b, $key);
            if ($idx === 0) {
                return false;
            }
            $u32[($b + Shm::B_INTENT) >> 2] = Shm::OP_DELETE << Shm::OP_SHIFT | $idx;
            $seq = $u32[($b + Shm::B_SEQ) >> 2];
            $u32[($b + Shm::B_SEQ) >> 2] = ($seq + 1) & 0xFFFFFFFF;
            $this->unlinkAfter($b, $idx, $prev);
            $u32[($b + Shm::B_SEQ) >> 2] = ($seq + 2) & 0xFFFFFFFF;
            $this->freeRow($bi, $idx - 1);
            return true;
        } finally {
            $this->unlock($b);
        }
    }

    /** Alias of del(), as Swoole's. */
    public function delete(string $key): bool
    {
        return $this->del($key);
    }

    /** How many rows the table holds. */
    public function count(): int
    {
        return min($this->shm->u32[($this->off + Shm::T_COUNT) >> 2], $this->size);
    }

    /** How many rows it holds at most (drover.yaml's size). */
    public function getSize(): int
    {
        return $this->size;
    }

    /** The table's bytes in the shared memory. */
    public function getMemorySize(): int
    {
        return $this->shm->tables[$this->name]['bytes'];
    }

    /** @return array{num: int, size: int, memory_size: int, recovered_locks: int, torn_writes: int, read_timeouts: int} */
    public function stats(): array
    {
        $u32 = $this->shm->u32;
        return ['num' => $this->count(), 'size' => $this->size, 'memory_size' => $this->getMemorySize(),
            'recovered_locks' => $u32[($this->off + Shm::T_RECOVERED) >> 2], 'torn_writes' => $u32[($this->off + Shm::T_TORN) >> 2],
            'read_timeouts' => $u32[($this->off + Shm::T_TIMEOUTS) >> 2]];
    }

    // Iteration: bucket by bucket, each row copied within a stable window
    // of its bucket's sequence; rows set or deleted meanwhile (by the loop's
    // body too) may be seen or not, a row present throughout is seen once.

    public function rewind(): void
    {
        $this->itBucket = 0;
        $this->itSeen = [];
        $this->advance();
    }

    public function valid(): bool
    {
        return $this->itKey !== null;
    }

    /** @return array<string, int|float|string> */
    public function current(): array
    {
        return $this->itRow;
    }

    public function key(): ?string
    {
        return $this->itKey;
    }

    public function next(): void
    {
        $this->advance();
    }

    private function advance(): void
    {
        $u32 = $this->shm->u32;
        $u8 = $this->shm->u8;
        for (; $this->itBucket < $this->nb; $this->itBucket++, $this->itSeen = []) {
            $bi = $this->itBucket;
            $b = $this->buckets + $bi * Shm::BUCKET;
            if ($u32[($b + Shm::B_HEAD) >> 2] === 0) {
                continue;
            }
            // The first row of the chain not given yet, walking from the
            // head each time: the caller may have set or deleted rows of
            // this chain since the last one.
            $w = null;
            for ($tries = 0; ;) {
                $s1 = $u32[($b + Shm::B_SEQ) >> 2];
                if ($s1 & 1) {
                    if (!$this->awaitWriter($bi, $b, $w ??= new Waiter())) {
                        break;
                    }
                    continue;
                }
                $key = null;
                $idx = $u32[($b + Shm::B_HEAD) >> 2];
                for ($steps = 0; $idx !== 0 && $idx <= $this->size && $steps < $this->size; $steps++) {
                    $r = $this->rowOff($idx);
                    $k = \FFI::string($u8 + ($r + Shm::R_KEY), min($u8[$r + Shm::R_KLEN], Shm::MAX_KEY));
                    if ($k !== '' && !in_array($k, $this->itSeen, true)) {
                        $key = $k;
                        break;
                    }
                    $idx = $u32[($r + Shm::R_NEXT) >> 2];
                }
                $row = $key === null ? [] : $this->readRow($this->rowOff($idx));
                if ($u32[($b + Shm::B_SEQ) >> 2] !== $s1) {
                    if (++$tries > 256) {
                        break;
                    }
                    continue;
                }
                if ($key === null) {
                    break;
                }
                $this->itSeen[] = $key;
                $this->itKey = $key;
                $this->itRow = $row;
                return;
            }
        }
        $this->itKey = null;
        $this->itRow = [];
    }

    // The protocol (docs/tables.md), as the Go package shm implements it.

    /** @return array{idx: int, type: int, size: int, off: int} */
    private function col(string $name): array
    {
        return $this->cols[$name] ?? throw new \InvalidArgumentException(
            "drover: table {$this->name} has no column $name (it has " . implode(', ', array_keys($this->cols)) . '; columns are declared in drover.yaml)');
    }

    private function checkKey(string $key): bool
    {
        $len = strlen($key);
        if ($len === 0 || $len > Shm::MAX_KEY) {
            trigger_error("drover: table {$this->name}: a key is 1 to 63 bytes, got $len", E_USER_WARNING);
            return false;
        }
        return true;
    }

    private function rowOff(int $idx): int
    {
        return $this->rows + ($idx - 1) * $this->rowSize;
    }

    /** Walks the chain of bucket $b for $key without a lock; the caller validates with the sequence. */
    private function find(int $b, string $key): int
    {
        return $this->findLocked($b, $key)[0];
    }

    /** @return array{int, int} the row of $key and the one before it in the chain (0: none) */
    private function findLocked(int $b, string $key): array
    {
        $len = strlen($key);
        $prev = 0;
        $idx = $this->u32[($b + Shm::B_HEAD) >> 2];
        for ($steps = 0; $idx !== 0; $steps++) {
            if ($idx > $this->size || $steps >= $this->size) {
                return [0, 0];
            }
            $head = \FFI::string($this->u8 + ($this->rows + ($idx - 1) * $this->rowSize), Shm::ROW_HEADER);
            if (ord($head[Shm::R_KLEN]) === $len && substr($head, Shm::R_KEY, $len) === $key) {
                return [$idx, $prev];
            }
            $prev = $idx;
            $idx = unpack('V', $head, Shm::R_NEXT)[1];
        }
        return [0, 0];
    }

    /** @return array<string, int|float|string> the columns of the row at offset $r */
    private function readRow(int $r): array
    {
        return $this->decode(\FFI::string($this->u8 + $r, $this->rowSize));
    }

    /** @param array{idx: int, type: int, size: int, off: int}|null $c */
    private function readLocked(int $bi, int $b, string $key, ?array $c): array|int|float|string|false
    {
        if (!$this->lock($bi, $b)) {
            $this->shm->fetchAdd32($this->off + Shm::T_TIMEOUTS, 1);
            return false;
        }
        try {
            [$idx] = $this->findLocked($b, $key);
            if ($idx === 0) {
                return false;
            }
            $raw = \FFI::string($this->u8 + $this->rowOff($idx), $this->rowSize);
            return $c === null ? $this->decode($raw) : $this->decodeColumn($raw, $c);
        } finally {
            $this->unlock($b);
        }
    }

    /** One round of waiting for bucket $b's writer; false once a live one kept it past the read bound. */
    private function awaitWriter(int $bi, int $b, Waiter $w): bool
    {
        $shm = $this->shm;
        if ($w->pause($shm)) {
            $shm->forked();
            $v = $shm->i64[($b + Shm::B_LOCK) >> 3];
            if (($v === 0 || $shm->holderGone($v)) && $shm->cas64($b + Shm::B_LOCK, $v, $shm->me)) {
                if (($shm->u32[($b + Shm::B_SEQ) >> 2] & 1) !== 0 || $v !== 0) {
                    $this->repair($bi, $b);
                }
                $this->unlock($b);
            }
        }
        if ($w->expired(Shm::READ_WAIT)) {
            $shm->fetchAdd32($this->off + Shm::T_TIMEOUTS, 1);
            return false;
        }
        return true;
    }

    /** Takes bucket $b's lock, repairing it when its holder died; false (warned) past the wait bound. */
    private function lock(int $bi, int $b): bool
    {
        $got = $this->shm->acquire($b + Shm::B_LOCK, Shm::WRITE_WAIT);
        if ($got < 0) {
            $pid = $this->shm->i64[($b + Shm::B_LOCK) >> 3] & 0xFFFFFFFF;
            trigger_error(sprintf('drover: table %s: bucket %d locked by pid %d (alive) for %.0fs; is it stopped?', $this->name, $bi, $pid, Shm::WRITE_WAIT), E_USER_WARNING);
            return false;
        }
        if ($got === 1) {
            $this->repair($bi, $b);
        }
        return true;
    }

    private function unlock(int $b): void
    {
        $this->shm->u32[($b + Shm::B_INTENT) >> 2] = 0;
        $this->shm->release($b + Shm::B_LOCK);
    }

    /** Runs $fn(row offset) on $key's row under its bucket's lock in an odd sequence, inserting the row first when absent. */
    private function write(string $key, int $op, int $mask, \Closure $fn): bool
    {
        $bi = crc32($key) & $this->mask;
        $b = $this->buckets + $bi * Shm::BUCKET;
        if (!$this->lock($bi, $b)) {
            return false;
        }
        $shm = $this->shm;
        $u32 = $shm->u32;
        $seqAt = ($b + Shm::B_SEQ) >> 2;
        $intentAt = ($b + Shm::B_INTENT) >> 2;
        try {
            [$idx] = $this->findLocked($b, $key);
            if ($idx !== 0) {
                if ($op === Shm::OP_SET) {
                    $shm->i64[($b + Shm::B_COLS) >> 3] = $mask;
                }
                $u32[$intentAt] = $op << Shm::OP_SHIFT | $idx;
                $seq = $u32[$seqAt];
                $u32[$seqAt] = ($seq + 1) & 0xFFFFFFFF;
                $fn($this->rowOff($idx));
                $u32[$seqAt] = ($seq + 2) & 0xFFFFFFFF;
                return true;
            }
            $u32[$intentAt] = Shm::OP_ALLOC << Shm::OP_SHIFT;
            $ri = $this->allocRow($bi);
            if ($ri < 0) {
                trigger_error("drover: table {$this->name} is full ({$this->size} rows): key $key not added (raise its size in drover.yaml, or delete rows)", E_USER_WARNING);
                return false;
            }
            $u32[$intentAt] = Shm::OP_INSERT << Shm::OP_SHIFT | ($ri + 1);
            $r = $this->rows + $ri * $this->rowSize;
            // Nobody reaches the row before it is linked.
            \FFI::memset($shm->u8 + ($r + Shm::R_KLEN), 0, $this->rowSize - Shm::R_KLEN);
            $shm->u8[$r + Shm::R_KLEN] = strlen($key);
            \FFI::memcpy($shm->u8 + ($r + Shm::R_KEY), $key, strlen($key));
            $u32[($r + Shm::R_NEXT) >> 2] = $u32[($b + Shm::B_HEAD) >> 2];
            $fn($r);
            $seq = $u32[$seqAt];
            $u32[$seqAt] = ($seq + 1) & 0xFFFFFFFF;
            $u32[($b + Shm::B_HEAD) >> 2] = $ri + 1;
            $u32[$seqAt] = ($seq + 2) & 0xFFFFFFFF;
            return true;
        } finally {
            $this->unlock($b);
        }
    }

    private function unlinkAfter(int $b, int $idx, int $prev): void
    {
        $u32 = $this->shm->u32;
        $next = $u32[($this->rowOff($idx) + Shm::R_NEXT) >> 2];
        if ($prev === 0) {
            $u32[($b + Shm::B_HEAD) >> 2] = $next;
        } else {
            $u32[($this->rowOff($prev) + Shm::R_NEXT) >> 2] = $next;
        }
    }

    /** A row for bucket $bi from the allocator (index), -1 when the table is full. */
    private function allocRow(int $bi): int
    {
        $shm = $this->shm;
        $lock = $this->off + Shm::T_ALLOC;
        $got = $shm->acquire($lock, Shm::WRITE_WAIT);
        if ($got < 0) {
            return -1;
        }
        $u32 = $shm->u32;
        $count = ($this->off + Shm::T_COUNT) >> 2;
        $free = ($this->off + Shm::T_FREE) >> 2;
        $high = ($this->off + Shm::T_HIGH) >> 2;
        try {
            if ($got === 1) {
                $this->rebuild();
            }
            for ($attempt = 0; $attempt < 2; $attempt++) {
                if ($u32[$count] >= $this->size) {
                    return -1;
                }
                $f = $u32[$free];
                if ($f !== 0 && $f <= $this->size && $u32[($this->rows + ($f - 1) * $this->rowSize + Shm::R_STATE) >> 2] === 0) {
                    $ri = $f - 1;
                    $u32[$free] = $u32[($this->rows + $ri * $this->rowSize + Shm::R_NEXT) >> 2];
                } elseif ($f === 0 && $u32[$high] < $this->size) {
                    $ri = $u32[$high];
                    $u32[$high] = $ri + 1;
                } else {
                    $this->rebuild();
                    continue;
                }
                $u32[($this->rows + $ri * $this->rowSize + Shm::R_STATE) >> 2] = $bi + 1;
                $u32[$count] = $u32[$count] + 1;
                return $ri;
            }
            return -1;
        } finally {
            $shm->release($lock);
        }
    }

    /** Gives row $ri of bucket $bi back to the allocator (a row no longer of $bi was freed already). */
    private function freeRow(int $bi, int $ri): void
    {
        $shm = $this->shm;
        $lock = $this->off + Shm::T_ALLOC;
        $got = $shm->acquire($lock, Shm::WRITE_WAIT);
        if ($got < 0) {
            return; // left to a repair: the row stays its bucket's orphan
        }
        $u32 = $shm->u32;
        try {
            if ($got === 1) {
                $this->rebuild();
            }
            $r = $this->rows + $ri * $this->rowSize;
            if ($u32[($r + Shm::R_STATE) >> 2] !== $bi + 1) {
                return;
            }
            $u32[($r + Shm::R_STATE) >> 2] = 0;
            $u32[($r + Shm::R_NEXT) >> 2] = $u32[($this->off + Shm::T_FREE) >> 2];
            $u32[($this->off + Shm::T_FREE) >> 2] = $ri + 1;
            $c = $u32[($this->off + Shm::T_COUNT) >> 2];
            if ($c > 0) {
                $u32[($this->off + Shm::T_COUNT) >> 2] = $c - 1;
            }
        } finally {
            $shm->release($lock);
        }
    }

    /** Recomputes the free list and the count from the rows' states (under the allocator's lock). */
    private function rebuild(): void
    {
        $u32 = $this->shm->u32;
        $high = min($u32[($this->off + Shm::T_HIGH) >> 2], $this->size);
        $u32[($this->off + Shm::T_HIGH) >> 2] = $high;
        $head = 0;
        $count = 0;
        for ($i = $high; $i > 0; $i--) {
            $r = $this->rows + ($i - 1) * $this->rowSize;
            $st = $u32[($r + Shm::R_STATE) >> 2];
            if ($st !== 0 && $st <= $this->nb) {
                $count++;
                continue;
            }
            $u32[($r + Shm::R_STATE) >> 2] = 0;
            $u32[($r + Shm::R_NEXT) >> 2] = $head;
            $head = $i;
        }
        $u32[($this->off + Shm::T_FREE) >> 2] = $head;
        $u32[($this->off + Shm::T_COUNT) >> 2] = $count;
    }

    /** Makes bucket $b consistent after its lock was taken over from a dead holder (docs/tables.md, "Crashes"). */
    private function repair(int $bi, int $b): void
    {
        $shm = $this->shm;
        $u32 = $shm->u32;
        $shm->fetchAdd32($this->off + Shm::T_RECOVERED, 1);
        $intent = $u32[($b + Shm::B_INTENT) >> 2];
        $op = $intent >> Shm::OP_SHIFT;
        $idx = $intent & Shm::ROW_MASK;
        if ($idx > $this->size) {
            $idx = 0;
        }
        $seqAt = ($b + Shm::B_SEQ) >> 2;
        $seq = $u32[$seqAt];
        if (($seq & 1) === 0) {
            $u32[$seqAt] = ($seq + 1) & 0xFFFFFFFF;
        }
        if ($op === Shm::OP_SET && ($seq & 1) !== 0 && $idx !== 0) {
            $mask = $shm->i64[($b + Shm::B_COLS) >> 3];
            $r = $this->rowOff($idx);
            foreach ($this->cols as $c) {
                if (($mask >> $c['idx']) & 1) {
                    $n = $c['type'] === self::TYPE_STRING ? 4 + $c['size'] : 8;
                    \FFI::memset($shm->u8 + ($r + $c['off']), 0, (int) (($n + 7) / 8) * 8);
                }
            }
            $shm->fetchAdd32($this->off + Shm::T_TORN, 1);
        } elseif (($op === Shm::OP_INSERT || $op === Shm::OP_DELETE) && $idx !== 0) {
            if ($op === Shm::OP_DELETE) {
                $this->unlink($b, $idx);
            }
            if (!$this->linked($b, $idx)) {
                $this->freeRow($bi, $idx - 1);
            }
        } elseif ($op === Shm::OP_ALLOC) {
            $high = min($u32[($this->off + Shm::T_HIGH) >> 2], $this->size);
            for ($ri = 0; $ri < $high; $ri++) {
                if ($u32[($this->rows + $ri * $this->rowSize + Shm::R_STATE) >> 2] === $bi + 1 && !$this->linked($b, $ri + 1)) {
                    $this->freeRow($bi, $ri);
                }
            }
        }
        $u32[$seqAt] = (($seq | 1) + 1) & 0xFFFFFFFF;
        $u32[($b + Shm::B_INTENT) >> 2] = 0;
    }

    private function linked(int $b, int $idx): bool
    {
        $u32 = $this->shm->u32;
        $cur = $u32[($b + Shm::B_HEAD) >> 2];
        for ($steps = 0; $cur !== 0 && $cur <= $this->size && $steps < $this->size; $steps++) {
            if ($cur === $idx) {
                return true;
            }
            $cur = $u32[($this->rowOff($cur) + Shm::R_NEXT) >> 2];
        }
        return false;
    }

    private function unlink(int $b, int $idx): void
    {
        $u32 = $this->shm->u32;
        $prev = 0;
        $cur = $u32[($b + Shm::B_HEAD) >> 2];
        for ($steps = 0; $cur !== 0 && $cur <= $this->size && $steps < $this->size; $steps++) {
            if ($cur === $idx) {
                $this->unlinkAfter($b, $idx, $prev);
                return;
            }
            $prev = $cur;
            $cur = $u32[($this->rowOff($cur) + Shm::R_NEXT) >> 2];
        }
    }

    /** $a + $b wrapping around as Go's int64 (PHP would turn an overflow into a float). */
    public static function wrapAdd(int $a, int $b): int
    {
        $s = $a + $b;
        if (is_int($s)) {
            return $s;
        }
        return $a > 0 ? ($a - PHP_INT_MAX - 1) + ($b - PHP_INT_MAX - 1) : ($a + PHP_INT_MAX + 1) + ($b + PHP_INT_MAX + 1);
    }
}
