// Package shm is the memory every process of a drover tree shares: tables
// of fixed-size rows (Swoole\Table) and atomic counters (Swoole\Atomic),
// declared in the config (tables:, atomics:) and laid out in one memfd
// that the master creates at start, keeps, hands to a new master on an
// upgrade, and passes to every worker, task worker and user process at
// spawn (its descriptor named by DROVER_SHM_FD). The data outlives any
// worker: a reload, a recycle or a kill -9 of a worker leaves it intact.
//
// The layout is documented byte by byte in docs/tables.md, so that a
// handler in any language can map the memory and take part in the same
// protocol: the PHP SDK (worker/php, Drover\Table) does, over FFI.
//
// Concurrency. A table is a hash of chains: a key's bucket holds a lock
// word, a sequence counter and the head of its chain of rows. Readers
// never take a lock: they read the sequence, walk the chain, copy what
// they need and read the sequence again, retrying if it changed or was
// odd (a seqlock). Writers take the bucket's lock, whose word records
// the owner (pid and process start time), make the sequence odd, change
// rows or the chain, and make it even again. A writer that dies holding
// the lock (kill -9) does not stall the others: whoever waits for it
// finds its owner gone (kill(pid, 0), /proc/pid/stat), takes the lock
// over and repairs what was left half done, guided by the intent the
// writer recorded (docs/tables.md, "Crashes"). Rows come from a per-table
// free list under a lock of its own, rebuilt from the rows' states when
// its holder died.
//
// This package imports nothing of drover's: the master, the SDKs and
// tools use it alike.
package shm
