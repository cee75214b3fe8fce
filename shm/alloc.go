package shm

import (
	"sync/atomic"
	"unsafe"
)

// The allocator hands out rows: from its free list (rows deleted before),
// else the next never-used row (high). Its words — free, high, count and
// every row's state — change only under its lock, which a bucket's lock
// holder takes last (bucket, then allocator: never the other way round).

// allocRow takes a row for bucket bi: its state becomes bi+1 and count
// grows. ErrFull when count reached size.
func (t *Table) allocRow(bi uint32) (uint32, error) {
	stale, err := acquire(t.alloc, writeWait)
	if err != nil {
		return 0, err
	}
	defer release(t.alloc)
	if stale {
		t.rebuild()
	}
	for attempt := 0; attempt < 2; attempt++ {
		if load32(t.count) >= t.size {
			return 0, ErrFull
		}
		var ri uint32
		if f := load32(t.free); f != 0 && f <= t.size && load32(rowState(t.row(f-1))) == 0 {
			ri = f - 1
			store32(t.free, load32(rowNext(t.row(ri))))
		} else if h := load32(t.high); f == 0 && h < t.size {
			ri = h
			store32(t.high, h+1) // before the state: a rebuild then sees a free row below high
		} else {
			// count below size and no free row, or a bad free list: the
			// words disagree (a corrupt region). Recount and try again.
			t.rebuild()
			continue
		}
		store32(rowState(t.row(ri)), bi+1)
		store32(t.count, load32(t.count)+1)
		return ri, nil
	}
	return 0, ErrFull
}

// freeRow gives row ri of bucket bi back. A row whose state no longer
// names bi was freed already (a repair after a crash may ask twice).
func (t *Table) freeRow(bi, ri uint32) error {
	stale, err := acquire(t.alloc, writeWait)
	if err != nil {
		return err
	}
	defer release(t.alloc)
	if stale {
		t.rebuild()
	}
	row := t.row(ri)
	if load32(rowState(row)) != bi+1 {
		return nil
	}
	store32(rowState(row), 0)
	store32(rowNext(row), load32(t.free))
	store32(t.free, ri+1)
	if c := load32(t.count); c > 0 {
		store32(t.count, c-1)
	}
	return nil
}

// rebuild recomputes the allocator's words from the rows' states: every
// row below high whose state is 0 goes on the free list (lowest first),
// the others are counted. Run under the allocator's lock, after its holder
// died or when its words disagree.
func (t *Table) rebuild() {
	high := min(load32(t.high), t.size)
	store32(t.high, high)
	var head, count uint32
	for i := high; i > 0; i-- {
		row := t.row(i - 1)
		st := load32(rowState(row))
		if st != 0 && st <= t.nb {
			count++
			continue
		}
		if st != 0 {
			store32(rowState(row), 0) // garbage: no bucket of ours
		}
		store32(rowNext(row), head)
		head = i
	}
	store32(t.free, head)
	store32(t.count, count)
}

// repair makes bucket bi consistent again after its lock was taken over
// from a holder that died, guided by the intent it recorded:
//
//   - set, sequence odd: the columns the set was writing may hold part of
//     the new value and part of the old; they are reset to zero (a
//     string to empty), the row's other columns kept, and the set counted
//     as torn.
//   - incr (one aligned word), or any intent with an even sequence: the
//     rows are whole.
//   - alloc: a row may have been taken for the bucket and not linked: every
//     row whose state names the bucket and that its chain lacks is freed.
//   - insert, delete: the row is linked or not; one the chain lacks is
//     freed.
//
// The sequence stays odd while it works, and ends even.
func (t *Table) repair(bi uint32, b *bucket) {
	atomic.AddUint32(t.recovered, 1)
	intent := load32(&b.intent)
	op, idx := intent>>opShift, intent&rowMask
	if idx > t.size {
		idx = 0
	}
	seq := load32(&b.seq)
	if seq&1 == 0 {
		store32(&b.seq, seq+1)
	}
	switch op {
	case opSet:
		if seq&1 != 0 && idx != 0 {
			t.resetColumns(t.row(idx-1), atomic.LoadUint64(&b.cols))
			atomic.AddUint32(t.torn, 1)
		}
	case opInsert, opDelete:
		if idx != 0 {
			if op == opDelete {
				t.unlink(b, idx)
			}
			if !t.linked(b, idx) {
				t.freeRow(bi, idx-1)
			}
		}
	case opAlloc:
		high := min(load32(t.high), t.size)
		for ri := uint32(0); ri < high; ri++ {
			if load32(rowState(t.row(ri))) == bi+1 && !t.linked(b, ri+1) {
				t.freeRow(bi, ri)
			}
		}
	}
	store32(&b.seq, (seq|1)+1)
	store32(&b.intent, opNone)
}

// resetColumns zeroes the columns of row named by the bits of cols.
func (t *Table) resetColumns(row unsafe.Pointer, cols uint64) {
	var zero [1]uint64
	for _, c := range t.cols {
		if cols&(1<<c.idx) == 0 {
			continue
		}
		for w := int64(0); w < c.words(); w++ {
			storeWords(unsafe.Add(row, c.off+8*w), zero[:])
		}
	}
}

// linked reports whether row idx is in b's chain.
func (t *Table) linked(b *bucket, idx uint32) bool {
	cur := load32(&b.head)
	for steps := uint32(0); cur != 0 && cur <= t.size && steps < t.size; steps++ {
		if cur == idx {
			return true
		}
		cur = load32(rowNext(t.row(cur - 1)))
	}
	return false
}

// unlink takes row idx out of b's chain if it is there.
func (t *Table) unlink(b *bucket, idx uint32) bool {
	prev, cur := uint32(0), load32(&b.head)
	for steps := uint32(0); cur != 0 && cur <= t.size && steps < t.size; steps++ {
		if cur == idx {
			t.unlinkAfter(b, idx, prev)
			return true
		}
		prev, cur = cur, load32(rowNext(t.row(cur-1)))
	}
	return false
}

// recoverPID takes over and repairs every lock of t whose holder is pid
// and gone; it returns how many.
func (t *Table) recoverPID(pid uint32) int {
	n := 0
	me := ownerWord()
	for bi := uint32(0); bi < t.nb; bi++ {
		b := t.bucket(bi)
		v := atomic.LoadUint64(&b.lock)
		if v == 0 || uint32(v) != pid || !holderGone(v) || !atomic.CompareAndSwapUint64(&b.lock, v, me) {
			continue
		}
		t.repair(bi, b)
		t.unlock(b)
		n++
	}
	if v := atomic.LoadUint64(t.alloc); v != 0 && uint32(v) == pid && holderGone(v) && atomic.CompareAndSwapUint64(t.alloc, v, me) {
		atomic.AddUint32(t.recovered, 1)
		t.rebuild()
		release(t.alloc)
		n++
	}
	return n
}
