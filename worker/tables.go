package worker

import "github.com/drover-dev/drover/shm"

// Table returns the shared table name, declared under tables: in
// drover.yaml: every worker, task worker and user process sees the same
// rows, which outlive any of them (a reload, a recycle, a kill -9). Reads
// take no lock and allocate nothing for Int and Float columns; get the
// columns once:
//
//	cache, err := worker.Table("cache")
//	hits, err := cache.Column("hits")
//	n, err := cache.Incr(key, hits, 1)
//
// It maps the memory on the first call. See docs/tables.md.
func Table(name string) (*shm.Table, error) { return shm.InheritedTable(name) }

// Atomic returns the shared counter name, declared under atomics: in
// drover.yaml (Swoole\Atomic): Add, Sub, CompareAndSwap, Wait, Wakeup.
func Atomic(name string) (*shm.Atomic, error) { return shm.InheritedAtomic(name) }
