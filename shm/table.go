package shm

import (
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sync/atomic"
	"unsafe"
)

// Table is a table of the region: up to Size rows of fixed columns, each
// row named by a key of 1 to MaxKey bytes. Every operation is atomic for
// its row: a get sees a row as one set left it, never half of two.
// Reads take no lock. Safe for concurrent use by goroutines and by every
// process that maps the region.
type Table struct {
	r       *Region
	name    string
	off     int64
	bytes   int64  // the table's share of the region (its directory entry)
	size    uint32 // rows at most
	nb      uint32 // buckets
	mask    uint32
	rowSize int64
	buckets unsafe.Pointer
	rows    unsafe.Pointer
	cols    []Column

	// The allocator's words and the table's counters, in the header.
	alloc                     *uint64
	count, free, high         *uint32
	recovered, torn, timeouts *uint32
}

type bucket struct {
	lock   uint64
	seq    uint32
	head   uint32
	intent uint32
	_      uint32
	cols   uint64
}

func (t *Table) bucket(i uint32) *bucket {
	return (*bucket)(unsafe.Add(t.buckets, int64(i)*bucketSize))
}

func (t *Table) row(i uint32) unsafe.Pointer { return unsafe.Add(t.rows, int64(i)*t.rowSize) }

func rowState(row unsafe.Pointer) *uint32 { return (*uint32)(unsafe.Add(row, rState)) }
func rowNext(row unsafe.Pointer) *uint32  { return (*uint32)(unsafe.Add(row, rNext)) }

// Name is the table's name.
func (t *Table) Name() string { return t.name }

// Size is how many rows the table holds at most.
func (t *Table) Size() int { return int(t.size) }

// Count is how many rows it holds now.
func (t *Table) Count() int { return int(min(load32(t.count), t.size)) }

// Memory is the table's share of the region, in bytes (TableBytes of
// its declaration).
func (t *Table) Memory() int64 { return t.bytes }

// Columns lists the table's columns, by name.
func (t *Table) Columns() []Column { return append([]Column(nil), t.cols...) }

// Column returns the column name.
func (t *Table) Column(name string) (Column, error) {
	for _, c := range t.cols {
		if c.name == name {
			return c, nil
		}
	}
	names := ""
	for i, c := range t.cols {
		if i > 0 {
			names += ", "
		}
		names += c.name
	}
	return Column{}, fmt.Errorf("shm: table %q has no column %q (it has %s)", t.name, name, names)
}

// TableStats are a table's figures for drover status.
type TableStats struct {
	Name   string `json:"name"`
	Rows   int    `json:"rows"`   // in use
	Size   int    `json:"size"`   // at most
	Memory int64  `json:"memory"` // bytes
	// Recovered counts locks taken over from processes that died holding
	// them; Torn the sets cut short by their writer's death (the columns
	// they were writing were reset to zero); Timeouts the reads that gave
	// up on a live writer stalled past readWait.
	Recovered uint32 `json:"recovered_locks,omitempty"`
	Torn      uint32 `json:"torn_writes,omitempty"`
	Timeouts  uint32 `json:"read_timeouts,omitempty"`
}

// Stats returns the table's figures.
func (t *Table) Stats() TableStats {
	return TableStats{Name: t.name, Rows: t.Count(), Size: int(t.size), Memory: t.Memory(),
		Recovered: load32(t.recovered), Torn: load32(t.torn), Timeouts: load32(t.timeouts)}
}

func (t *Table) err(err error, key string) error {
	return fmt.Errorf("table %q, key %q: %w", t.name, key, err)
}

func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrKey)
	case len(key) > MaxKey:
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrKey, len(key), MaxKey)
	}
	return nil
}

// bucketOf is the bucket of key: the CRC-32 (IEEE, as PHP's crc32() and
// zlib compute it) of its bytes, masked.
func (t *Table) bucketOf(key string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(key), len(key))) & t.mask
}

func keyIs(row unsafe.Pointer, key string) bool {
	n := *(*uint8)(unsafe.Add(row, rKLen))
	return int(n) == len(key) && unsafe.String((*byte)(unsafe.Add(row, rKey)), len(key)) == key
}

// find walks b's chain for key without a lock: the caller validates what
// it found with the bucket's sequence. A chain that leads out of the table
// or loops (a corrupt one) ends the walk.
func (t *Table) find(b *bucket, key string) uint32 {
	idx := load32(&b.head)
	for steps := uint32(0); idx != 0; steps++ {
		if idx > t.size || steps >= t.size {
			return 0
		}
		row := t.row(idx - 1)
		if keyIs(row, key) {
			return idx
		}
		idx = load32(rowNext(row))
	}
	return 0
}

// findLocked is find under the bucket's lock, with the row before it in
// the chain (0: key's row is the head).
func (t *Table) findLocked(b *bucket, key string) (idx, prev uint32) {
	idx = load32(&b.head)
	for steps := uint32(0); idx != 0; steps++ {
		if idx > t.size || steps >= t.size {
			return 0, 0
		}
		row := t.row(idx - 1)
		if keyIs(row, key) {
			return idx, prev
		}
		prev, idx = idx, load32(rowNext(row))
	}
	return 0, 0
}

// starveTries is how many times a read retries when writers keep
// changing its bucket before it reads under the bucket's lock instead.
const starveTries = 64

// read finds key and runs cp on its row inside a stable window of the
// bucket's sequence, as many times as it takes. cp must only copy: a copy
// from a torn row is discarded. found reports whether the key was there.
func (t *Table) read(key string, cp func(row unsafe.Pointer)) (found bool) {
	if len(key) == 0 || len(key) > MaxKey {
		return false
	}
	bi := t.bucketOf(key)
	b := t.bucket(bi)
	var w waiter
	for tries := 0; ; tries++ {
		s1 := load32(&b.seq)
		if s1&1 != 0 {
			if !t.awaitWriter(bi, b, &w) {
				return false
			}
			continue
		}
		idx := t.find(b, key)
		if idx != 0 {
			cp(t.row(idx - 1))
		}
		if load32(&b.seq) == s1 {
			return idx != 0
		}
		if tries >= starveTries {
			return t.readLocked(bi, b, key, cp)
		}
	}
}

// readLocked reads under the bucket's lock: for a reader that writers
// starved.
func (t *Table) readLocked(bi uint32, b *bucket, key string, cp func(row unsafe.Pointer)) bool {
	if err := t.lock(bi, b); err != nil {
		atomic.AddUint32(t.timeouts, 1)
		return false
	}
	defer t.unlock(b)
	idx, _ := t.findLocked(b, key)
	if idx != 0 {
		cp(t.row(idx - 1))
	}
	return idx != 0
}

// awaitWriter waits one round for the writer of bucket b (its sequence is
// odd). A writer that is gone is taken over and its work repaired; false
// when a live one kept the bucket past readWait (counted in timeouts).
func (t *Table) awaitWriter(bi uint32, b *bucket, w *waiter) bool {
	if w.pause() {
		v := atomic.LoadUint64(&b.lock)
		if v == 0 || holderGone(v) {
			// Gone, or an odd sequence with nobody holding the lock
			// (a corrupt bucket): take it and make it consistent.
			if atomic.CompareAndSwapUint64(&b.lock, v, ownerWord()) {
				if load32(&b.seq)&1 != 0 || v != 0 {
					t.repair(bi, b)
				}
				t.unlock(b)
			}
		}
	}
	if w.expired(readWait) {
		atomic.AddUint32(t.timeouts, 1)
		return false
	}
	return true
}

// lock takes bucket bi's lock, repairing it first when its holder died.
func (t *Table) lock(bi uint32, b *bucket) error {
	stale, err := acquire(&b.lock, writeWait)
	if err != nil {
		return fmt.Errorf("table %q: bucket %d: %w", t.name, bi, err)
	}
	if stale {
		t.repair(bi, b)
	}
	return nil
}

func (t *Table) unlock(b *bucket) {
	store32(&b.intent, opNone)
	release(&b.lock)
}

// Exists reports whether key is in the table.
func (t *Table) Exists(key string) bool {
	return t.read(key, func(unsafe.Pointer) {})
}

// Get copies key's row into row (every column; none marked set) and
// reports whether the key was there.
func (t *Table) Get(key string, row *Row) bool {
	if row.t != t {
		panic(fmt.Sprintf("shm: Get from table %q into a row of table %q", t.name, row.t.name))
	}
	found := t.read(key, func(p unsafe.Pointer) { loadWords(row.data, unsafe.Add(p, rowHeader)) })
	row.set = 0
	return found
}

func (t *Table) col(c Column) {
	if c.t != t {
		if c.t == nil {
			panic("shm: the zero Column (get columns with Table.Column)")
		}
		panic(fmt.Sprintf("shm: column %q of table %q used with table %q", c.name, c.t.name, t.name))
	}
}

// GetInt is the value of an Int column of key's row (a Float truncated).
func (t *Table) GetInt(key string, c Column) (int64, bool) {
	t.col(c)
	var w uint64
	ok := t.read(key, func(p unsafe.Pointer) { w = atomic.LoadUint64((*uint64)(unsafe.Add(p, c.off))) })
	if c.typ == Float {
		return int64(math.Float64frombits(w)), ok
	}
	return int64(w), ok
}

// GetFloat is the value of a Float column of key's row (an Int converted).
func (t *Table) GetFloat(key string, c Column) (float64, bool) {
	t.col(c)
	var w uint64
	ok := t.read(key, func(p unsafe.Pointer) { w = atomic.LoadUint64((*uint64)(unsafe.Add(p, c.off))) })
	if c.typ == Int {
		return float64(int64(w)), ok
	}
	return math.Float64frombits(w), ok
}

// GetString appends the value of a String column of key's row to buf[:0]
// (allocating only when buf is too small) and returns it.
func (t *Table) GetString(key string, c Column, buf []byte) ([]byte, bool) {
	t.col(c)
	if c.typ != String {
		return buf[:0], false
	}
	ok := t.read(key, func(p unsafe.Pointer) {
		col := unsafe.Add(p, c.off)
		n := int(min(int64(load32((*uint32)(col))), c.size))
		if cap(buf) < n {
			buf = make([]byte, n, max(n, 2*cap(buf)))
		}
		buf = buf[:n]
		copyOut(buf, unsafe.Add(col, 4), n)
	})
	if !ok {
		return buf[:0], false
	}
	return buf, true
}

// write runs fn on key's row under its bucket's lock, inside an odd
// sequence; when the key is absent it first takes a row from the
// allocator, zeroes it and writes the key (fresh), and links it once fn
// wrote it. op is the intent recorded for fn's change (opSet, with the
// columns it writes in cols, or opIncr).
func (t *Table) write(key string, op uint32, cols uint64, fn func(row unsafe.Pointer, fresh bool)) error {
	if err := checkKey(key); err != nil {
		return t.err(err, key)
	}
	bi := t.bucketOf(key)
	b := t.bucket(bi)
	if err := t.lock(bi, b); err != nil {
		return err
	}
	defer t.unlock(b)
	if idx, _ := t.findLocked(b, key); idx != 0 {
		if op == opSet {
			atomic.StoreUint64(&b.cols, cols)
		}
		store32(&b.intent, op<<opShift|idx)
		seq := load32(&b.seq)
		store32(&b.seq, seq+1)
		fn(t.row(idx-1), false)
		store32(&b.seq, seq+2)
		return nil
	}
	store32(&b.intent, opAlloc<<opShift)
	ri, err := t.allocRow(bi)
	if err != nil {
		return t.err(err, key)
	}
	store32(&b.intent, opInsert<<opShift|(ri+1))
	row := t.row(ri)
	// Nobody reaches the row until it is linked: plain stores.
	clear(unsafe.Slice((*byte)(unsafe.Add(row, rKLen)), t.rowSize-rKLen))
	*(*uint8)(unsafe.Add(row, rKLen)) = uint8(len(key))
	copy(unsafe.Slice((*byte)(unsafe.Add(row, rKey)), MaxKey), key)
	store32(rowNext(row), load32(&b.head))
	fn(row, true)
	seq := load32(&b.seq)
	store32(&b.seq, seq+1)
	store32(&b.head, ri+1)
	store32(&b.seq, seq+2)
	return nil
}

// Set writes the columns of row that were set (Row.SetInt and others)
// into key's row, inserting it when absent (its other columns zero), as
// Swoole\Table::set. ErrFull when the key is new and the table is full.
func (t *Table) Set(key string, row *Row) error {
	if row.t != t {
		panic(fmt.Sprintf("shm: Set into table %q of a row of table %q", t.name, row.t.name))
	}
	op := uint32(opSet)
	if row.setCount() == 1 {
		for _, c := range t.cols {
			if row.set&(1<<c.idx) != 0 && c.typ != String {
				op = opIncr // one aligned word: never torn
			}
		}
	}
	return t.write(key, op, row.set, func(p unsafe.Pointer, _ bool) {
		for _, c := range t.cols {
			if row.set&(1<<c.idx) != 0 {
				w := c.word()
				storeWords(unsafe.Add(p, c.off), row.data[w:w+c.words()])
			}
		}
	})
}

// setWord writes one numeric column.
func (t *Table) setWord(key string, c Column, w uint64) error {
	return t.write(key, opIncr, 0, func(p unsafe.Pointer, _ bool) {
		atomic.StoreUint64((*uint64)(unsafe.Add(p, c.off)), w)
	})
}

// SetInt sets one Int column (or Float, converted) of key's row.
func (t *Table) SetInt(key string, c Column, v int64) error {
	t.col(c)
	switch c.typ {
	case Int:
		return t.setWord(key, c, uint64(v))
	case Float:
		return t.setWord(key, c, math.Float64bits(float64(v)))
	}
	return t.err(fmt.Errorf("%w: SetInt of string column %q", ErrType, c.name), key)
}

// SetFloat sets one Float column (or Int, truncated) of key's row.
func (t *Table) SetFloat(key string, c Column, v float64) error {
	t.col(c)
	switch c.typ {
	case Float:
		return t.setWord(key, c, math.Float64bits(v))
	case Int:
		return t.setWord(key, c, uint64(int64(v)))
	}
	return t.err(fmt.Errorf("%w: SetFloat of string column %q", ErrType, c.name), key)
}

// SetString sets one String column of key's row.
func (t *Table) SetString(key string, c Column, v string) error {
	t.col(c)
	if c.typ != String {
		return t.err(fmt.Errorf("%w: SetString of %s column %q", ErrType, c.typ, c.name), key)
	}
	if int64(len(v)) > c.size {
		return t.err(fmt.Errorf("%w: %d bytes for column %q, string(%d)", ErrTooLong, len(v), c.name, c.size), key)
	}
	return t.write(key, opSet, 1<<c.idx, func(p unsafe.Pointer, _ bool) {
		storeString(unsafe.Add(p, c.off), v)
	})
}

// Incr adds by to an Int column of key's row (a Float column too) and
// returns the new value; a missing row is inserted first, its columns
// zero, as Swoole\Table::incr. Decrement with a negative by.
func (t *Table) Incr(key string, c Column, by int64) (int64, error) {
	t.col(c)
	var v int64
	var err error
	switch c.typ {
	case Int:
		err = t.write(key, opIncr, 0, func(p unsafe.Pointer, _ bool) {
			w := (*uint64)(unsafe.Add(p, c.off))
			v = int64(atomic.LoadUint64(w)) + by
			atomic.StoreUint64(w, uint64(v))
		})
	case Float:
		var f float64
		f, err = t.IncrFloat(key, c, float64(by))
		v = int64(f)
	default:
		err = t.err(fmt.Errorf("%w: incr of string column %q", ErrType, c.name), key)
	}
	return v, err
}

// IncrFloat adds by to a Float column (an Int column gets by truncated)
// and returns the new value.
func (t *Table) IncrFloat(key string, c Column, by float64) (float64, error) {
	t.col(c)
	if c.typ == Int {
		v, err := t.Incr(key, c, int64(by))
		return float64(v), err
	}
	if c.typ != Float {
		return 0, t.err(fmt.Errorf("%w: incr of string column %q", ErrType, c.name), key)
	}
	var v float64
	err := t.write(key, opIncr, 0, func(p unsafe.Pointer, _ bool) {
		w := (*uint64)(unsafe.Add(p, c.off))
		v = math.Float64frombits(atomic.LoadUint64(w)) + by
		atomic.StoreUint64(w, math.Float64bits(v))
	})
	return v, err
}

// Del removes key's row; false when it was not there.
func (t *Table) Del(key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, t.err(err, key)
	}
	bi := t.bucketOf(key)
	b := t.bucket(bi)
	if err := t.lock(bi, b); err != nil {
		return false, err
	}
	defer t.unlock(b)
	idx, prev := t.findLocked(b, key)
	if idx == 0 {
		return false, nil
	}
	store32(&b.intent, opDelete<<opShift|idx)
	seq := load32(&b.seq)
	store32(&b.seq, seq+1)
	t.unlinkAfter(b, idx, prev)
	store32(&b.seq, seq+2)
	if err := t.freeRow(bi, idx-1); err != nil {
		return true, t.err(err, key)
	}
	return true, nil
}

// unlinkAfter takes row idx out of b's chain, prev being the row before
// it (0: idx is the head).
func (t *Table) unlinkAfter(b *bucket, idx, prev uint32) {
	next := load32(rowNext(t.row(idx - 1)))
	if prev == 0 {
		store32(&b.head, next)
	} else {
		store32(rowNext(t.row(prev-1)), next)
	}
}

// Range calls fn with each row of the table, copied into row, until fn
// returns false. Rows set or deleted meanwhile (by fn too) may be seen or
// not; a row present throughout is seen once, as one set left it. fn runs
// without any lock held and may use the table.
func (t *Table) Range(row *Row, fn func(key string, row *Row) bool) {
	if row.t != t {
		panic(fmt.Sprintf("shm: Range over table %q with a row of table %q", t.name, row.t.name))
	}
	var keyBuf [MaxKey]byte
	var seen []string
	for bi := uint32(0); bi < t.nb; bi++ {
		b := t.bucket(bi)
		if load32(&b.head) == 0 {
			continue
		}
		seen = seen[:0]
		var w waiter
		for tries := 0; ; {
			s1 := load32(&b.seq)
			if s1&1 != 0 {
				if !t.awaitWriter(bi, b, &w) {
					break
				}
				continue
			}
			// The first row of the chain not given yet, walking from the
			// head each time: fn may have set or deleted rows of this chain
			// since the last one.
			klen, found := 0, false
			idx := load32(&b.head)
			for steps := uint32(0); idx != 0 && idx <= t.size && steps < t.size; steps++ {
				p := t.row(idx - 1)
				klen = int(min(*(*uint8)(unsafe.Add(p, rKLen)), MaxKey))
				copy(keyBuf[:klen], unsafe.Slice((*byte)(unsafe.Add(p, rKey)), klen))
				if klen > 0 && !slices.Contains(seen, string(keyBuf[:klen])) {
					loadWords(row.data, unsafe.Add(p, rowHeader))
					found = true
					break
				}
				idx = load32(rowNext(p))
			}
			if load32(&b.seq) != s1 {
				if tries++; tries > starveTries*4 {
					break
				}
				continue
			}
			if !found {
				break
			}
			key := string(keyBuf[:klen])
			seen = append(seen, key)
			row.set = 0
			if !fn(key, row) {
				return
			}
		}
	}
}
