<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * The shared memory of drover's tables and atomics, mapped into this
 * process over FFI: the memfd drover passes at the descriptor that
 * DROVER_SHM_FD names, laid out as docs/tables.md describes (the Go
 * package shm is the other implementation of the same protocol).
 *
 * Needs PHP's FFI (ffi.enable=preload, the CLI default, is enough),
 * glibc's libc.so.6 and GCC's libatomic.so.1 (Debian: libatomic1): PHP
 * has no atomic instructions of its own, so compare-and-swap and
 * fetch-and-add go through libatomic's __atomic_* functions, which are
 * the hardware's lock-prefixed instructions on x86-64 and interoperate
 * with Go's sync/atomic. Plain loads and stores do the rest; x86-64
 * keeps them in program order (TSO), which the seqlock needs, so the SDK
 * refuses other architectures.
 *
 * @internal Drover\Table and Drover\Atomic use it.
 */
final class Shm
{
    public const MAGIC = 'DROVERSH';
    public const VERSION = 1;
    public const MAX_KEY = 63;

    // Offsets of docs/tables.md.
    public const T_SIZE = 32;
    public const T_BUCKETS = 36;
    public const T_ROWSIZE = 40;
    public const T_COLUMNS = 44;
    public const T_BUCKET_OFF = 48;
    public const T_ROW_OFF = 56;
    public const T_ALLOC = 64;
    public const T_COUNT = 72;
    public const T_FREE = 76;
    public const T_HIGH = 80;
    public const T_RECOVERED = 84;
    public const T_TORN = 88;
    public const T_TIMEOUTS = 92;
    public const T_COLDESC = 128;

    public const B_LOCK = 0;
    public const B_SEQ = 8;
    public const B_HEAD = 12;
    public const B_INTENT = 16;
    public const B_COLS = 24;
    public const BUCKET = 32;

    public const R_STATE = 0;
    public const R_NEXT = 4;
    public const R_KLEN = 8;
    public const R_KEY = 9;
    public const ROW_HEADER = 72;

    public const OP_SET = 1;
    public const OP_INCR = 2;
    public const OP_ALLOC = 3;
    public const OP_INSERT = 4;
    public const OP_DELETE = 5;
    public const OP_SHIFT = 28;
    public const ROW_MASK = (1 << 28) - 1;

    public const TYPE_INT = 1;
    public const TYPE_FLOAT = 2;
    public const TYPE_STRING = 3;

    /** Bounds of the waits for a live holder, in seconds (the Go SDK's). */
    public const WRITE_WAIT = 5.0;
    public const READ_WAIT = 1.0;

    private const SEQ_CST = 5;
    private const SYS_FUTEX = 202; // x86-64
    private const FUTEX_WAIT = 0;
    private const FUTEX_WAKE = 1;

    private static ?self $instance = null;

    public \FFI $libc;
    public \FFI $atomic;
    /** Views of the region: bytes, u32 words, i64 words, doubles. */
    public \FFI\CData $u8;
    public \FFI\CData $u32;
    public \FFI\CData $i64;
    public \FFI\CData $f64;
    public int $size;
    /** This process's lock word: start time << 32 | pid. */
    public int $me;
    public int $pid;
    /** @var array<string, array<string, mixed>> tables by name: offsets and columns */
    public array $tables = [];
    /** @var array<string, int> atomics by name: offset of the slot */
    public array $atomics = [];

    private \FFI\CData $expected;
    private \FFI\CData $expectedAddr;
    private \FFI\CData $timespec;

    /** The region drover passed to this process, mapped on first use. */
    public static function get(): self
    {
        return self::$instance ??= self::inherit();
    }

    private static function inherit(): self
    {
        $fd = getenv('DROVER_SHM_FD');
        if ($fd === false || $fd === '') {
            throw new \RuntimeException('drover: no shared memory in this process: declare tables: or atomics: in drover.yaml, and run the script under drover (DROVER_SHM_FD is not set)');
        }
        if (!ctype_digit($fd) || (int) $fd < 3) {
            throw new \RuntimeException("drover: DROVER_SHM_FD=$fd is not a descriptor");
        }
        return new self((int) $fd);
    }

    public function __construct(int $fd)
    {
        if (!extension_loaded('ffi')) {
            throw new \RuntimeException('drover: Drover\Table and Drover\Atomic need the FFI extension (Debian: part of php-cli; enable ffi.enable=preload or true)');
        }
        if (PHP_INT_SIZE !== 8 || php_uname('m') !== 'x86_64') {
            throw new \RuntimeException('drover: the PHP SDK\'s tables run on x86-64 only (its seqlock relies on x86-64\'s store order); Go handlers use them anywhere');
        }
        try {
            $this->libc = \FFI::cdef('
                typedef long off_t;
                struct timespec { long tv_sec; long tv_nsec; };
                void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
                int munmap(void *addr, size_t length);
                int close(int fd);
                int kill(int pid, int sig);
                int sched_yield(void);
                int *__errno_location(void);
                long syscall(long number, ...);
            ', 'libc.so.6');
        } catch (\FFI\Exception $e) {
            throw new \RuntimeException('drover: cannot load libc.so.6 over FFI (' . $e->getMessage() . '); the tables need glibc', 0, $e);
        }
        try {
            $this->atomic = \FFI::cdef('
                _Bool __atomic_compare_exchange_8(volatile void *ptr, void *expected, int64_t desired, int success, int failure);
                int64_t __atomic_fetch_add_8(volatile void *ptr, int64_t val, int order);
                uint32_t __atomic_fetch_add_4(volatile void *ptr, uint32_t val, int order);
                int64_t __atomic_exchange_8(volatile void *ptr, int64_t val, int order);
            ', 'libatomic.so.1');
        } catch (\FFI\Exception $e) {
            throw new \RuntimeException('drover: cannot load libatomic.so.1 over FFI (' . $e->getMessage() . '): install it (Debian and Ubuntu: apt-get install libatomic1; RHEL: dnf install libatomic)', 0, $e);
        }
        $this->expected = \FFI::new('int64_t');
        $this->expectedAddr = \FFI::addr($this->expected);
        $this->timespec = $this->libc->new('struct timespec');

        // The header says the size: map one page, read it, map the whole.
        $page = $this->libc->mmap(null, 4096, 3 /* PROT_READ|PROT_WRITE */, 1 /* MAP_SHARED */, $fd, 0);
        if ($page === null || \FFI::cast('intptr_t', $page)->cdata === -1) {
            throw new \RuntimeException("drover: cannot map the shared memory at fd $fd");
        }
        $head = \FFI::string($page, 64);
        $this->libc->munmap($page, 4096);
        if (substr($head, 0, 8) !== self::MAGIC || unpack('V', $head, 8)[1] !== self::VERSION) {
            throw new \RuntimeException("drover: fd $fd is not drover's shared memory of layout " . self::VERSION);
        }
        $size = unpack('P', $head, 16)[1];
        if ($size < 4096 || $size > 1 << 40) {
            throw new \RuntimeException("drover: the shared memory says it holds $size bytes");
        }
        $mem = $this->libc->mmap(null, $size, 3, 1, $fd, 0);
        if ($mem === null || \FFI::cast('intptr_t', $mem)->cdata === -1) {
            throw new \RuntimeException("drover: cannot map the $size bytes of shared memory at fd $fd");
        }
        $this->libc->close($fd); // mapped: programs this process starts do not get it
        $this->size = $size;
        $this->u8 = \FFI::cast('uint8_t*', $mem);
        $this->u32 = \FFI::cast('uint32_t*', $mem);
        $this->i64 = \FFI::cast('int64_t*', $mem);
        $this->f64 = \FFI::cast('double*', $mem);
        $this->pid = getmypid();
        $this->me = (self::startTime($this->pid) ?? 0) << 32 | $this->pid;
        $this->parse();
    }

    /** The start time of $pid (field 22 of /proc/pid/stat), low 32 bits; null if unknown. Sets $zombie. */
    public static function startTime(int $pid, bool &$zombie = false): ?int
    {
        $stat = @file_get_contents("/proc/$pid/stat");
        if ($stat === false) {
            return null;
        }
        $f = preg_split('/\s+/', trim(substr($stat, strrpos($stat, ')') + 1)));
        if (count($f) < 20) {
            return null;
        }
        $zombie = $f[0] === 'Z' || $f[0] === 'X';
        return ((int) $f[19]) & 0xFFFFFFFF;
    }

    /** Reads the directory, checking every offset against the size. */
    private function parse(): void
    {
        $bad = fn (string $what) => new \RuntimeException("drover: corrupt shared memory: $what");
        $nt = $this->u32[24 >> 2];
        $na = $this->u32[28 >> 2];
        $dir = $this->i64[40 >> 3];
        if ($dir < 64 || ($nt + $na) * 64 + $dir > $this->size) {
            throw $bad("directory of " . ($nt + $na) . " entries at $dir");
        }
        for ($i = 0; $i < $nt + $na; $i++) {
            $e = $dir + 64 * $i;
            $name = rtrim(\FFI::string($this->u8 + $e, 32), "\0");
            $kind = $this->u32[($e + 32) >> 2];
            $off = $this->i64[($e + 40) >> 3];
            $len = $this->i64[($e + 48) >> 3];
            if ($off < 64 || $len < 0 || $off % 8 !== 0 || $off + $len > $this->size) {
                throw $bad("entry $name at $off ($len bytes)");
            }
            if ($kind === 2) {
                $this->atomics[$name] = $off;
                continue;
            }
            if ($kind !== 1) {
                throw $bad("entry $name of kind $kind");
            }
            $t = [
                'name' => $name, 'off' => $off, 'bytes' => $len,
                'size' => $this->u32[($off + self::T_SIZE) >> 2],
                'nb' => $this->u32[($off + self::T_BUCKETS) >> 2],
                'rowSize' => $this->u32[($off + self::T_ROWSIZE) >> 2],
                'buckets' => $this->i64[($off + self::T_BUCKET_OFF) >> 3],
                'rows' => $this->i64[($off + self::T_ROW_OFF) >> 3],
                'cols' => [],
            ];
            $ncol = $this->u32[($off + self::T_COLUMNS) >> 2];
            $end = $off + $len;
            if ($t['size'] < 1 || $t['nb'] < 1 || ($t['nb'] & ($t['nb'] - 1)) !== 0 || $ncol < 1 || $ncol > 64
                || $t['rowSize'] < self::ROW_HEADER || $t['rowSize'] % 8 !== 0
                || $t['buckets'] < $off + self::T_COLDESC + $ncol * 48 || $t['buckets'] + $t['nb'] * self::BUCKET > $t['rows']
                || $t['rows'] + $t['size'] * $t['rowSize'] > $end) {
                throw $bad("table $name's header");
            }
            $t['mask'] = $t['nb'] - 1;
            for ($c = 0; $c < $ncol; $c++) {
                $d = $off + self::T_COLDESC + 48 * $c;
                $cname = rtrim(\FFI::string($this->u8 + $d, 32), "\0");
                $type = $this->u32[($d + 32) >> 2];
                $csize = $this->u32[($d + 36) >> 2];
                $coff = $this->u32[($d + 40) >> 2];
                $room = $type === self::TYPE_STRING ? 4 + $csize : 8;
                if ($type < 1 || $type > 3 || $coff < self::ROW_HEADER || $coff % 8 !== 0 || $coff + $room > $t['rowSize']) {
                    throw $bad("table $name's column $cname");
                }
                $t['cols'][$cname] = ['idx' => $c, 'type' => $type, 'size' => $csize, 'off' => $coff];
            }
            $this->tables[$name] = $t;
        }
    }

    /** Compare-and-swap of the 8-byte word at $off (sequentially consistent). */
    public function cas64(int $off, int $old, int $new): bool
    {
        $this->expected->cdata = $old;
        return (bool) $this->atomic->__atomic_compare_exchange_8($this->u8 + $off, $this->expectedAddr, $new, self::SEQ_CST, self::SEQ_CST);
    }

    /** Adds $d to the 8-byte word at $off; returns the old value. */
    public function fetchAdd64(int $off, int $d): int
    {
        return $this->atomic->__atomic_fetch_add_8($this->u8 + $off, $d, self::SEQ_CST);
    }

    /** Adds $d (mod 2^32) to the 4-byte word at $off; returns the old value. */
    public function fetchAdd32(int $off, int $d): int
    {
        return $this->atomic->__atomic_fetch_add_4($this->u8 + $off, $d & 0xFFFFFFFF, self::SEQ_CST);
    }

    /** Stores $v into the 8-byte word at $off (sequentially consistent). */
    public function store64(int $off, int $v): void
    {
        $this->atomic->__atomic_exchange_8($this->u8 + $off, $v, self::SEQ_CST);
    }

    /**
     * Whether the holder named by lock word $w has exited: no such
     * process, a zombie, or a process started at another time (its pid
     * reused). This process's own word is a leftover too: PHP runs one
     * thread, which holds no lock while it waits for one.
     */
    public function holderGone(int $w): bool
    {
        if ($w === $this->me) {
            return true;
        }
        $pid = $w & 0xFFFFFFFF;
        $start = ($w >> 32) & 0xFFFFFFFF;
        if ($pid <= 0 || $pid === $this->pid) {
            return true;
        }
        if ($this->libc->kill($pid, 0) !== 0 && $this->libc->__errno_location()[0] === 3 /* ESRCH */) {
            return true;
        }
        $zombie = false;
        $st = self::startTime($pid, $zombie);
        return $st !== null && ($zombie || $st !== $start);
    }

    /**
     * Takes the lock word at $off: 0 taken, 1 taken over from a holder
     * that exited (the caller repairs what it left), -1 a live holder kept
     * it past $bound seconds.
     */
    public function acquire(int $off, float $bound): int
    {
        $this->forked();
        if ($this->cas64($off, 0, $this->me)) {
            return 0;
        }
        $w = new Waiter();
        while (true) {
            $v = $this->i64[$off >> 3];
            if ($v === 0) {
                if ($this->cas64($off, 0, $this->me)) {
                    return 0;
                }
                continue;
            }
            if ($w->pause($this) && $this->holderGone($v) && $this->cas64($off, $v, $this->me)) {
                return 1;
            }
            if ($w->expired($bound)) {
                return -1;
            }
        }
    }

    /**
     * Takes on this process's identity after a pcntl_fork(): a child that
     * kept its parent's lock word would take the parent's locks for its
     * own.
     */
    public function forked(): void
    {
        $pid = getmypid();
        if ($pid !== $this->pid) {
            $this->pid = $pid;
            $this->me = (self::startTime($pid) ?? 0) << 32 | $pid;
        }
    }

    /** Frees a lock word this process holds (a plain store: x86-64 keeps it after the writes before it). */
    public function release(int $off): void
    {
        $this->i64[$off >> 3] = 0;
    }

    /** Sleeps while the u32 at $off is $val, at most $timeout seconds (negative: no bound). */
    public function futexWait(int $off, int $val, float $timeout): void
    {
        $ts = 0;
        if ($timeout >= 0) {
            $this->timespec->tv_sec = (int) $timeout;
            $this->timespec->tv_nsec = (int) (($timeout - (int) $timeout) * 1e9);
            $ts = \FFI::addr($this->timespec);
        }
        $this->libc->syscall(self::SYS_FUTEX, $this->u8 + $off, self::FUTEX_WAIT, $val, $ts, 0, 0);
    }

    /** Wakes up to $n sleepers on the u32 at $off. */
    public function futexWake(int $off, int $n): void
    {
        $this->libc->syscall(self::SYS_FUTEX, $this->u8 + $off, self::FUTEX_WAKE, $n, 0, 0, 0);
    }
}
