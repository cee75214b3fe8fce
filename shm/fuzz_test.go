package shm

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"
	"unsafe"
)

// FuzzRegion: a region is written by every worker, so any of its bytes
// may be garbage (a hostile or broken handler). Mapping it checks the
// header; operating on it must neither panic nor hang, whatever the
// buckets, rows and counters hold. Each input patches a valid region:
// (offset, value) pairs of 4 + 8 bytes.
func FuzzRegion(f *testing.F) {
	spec := Spec{Tables: []TableSpec{{Name: "t", Size: 8, Columns: []ColumnSpec{
		{Name: "n", Type: Int}, {Name: "s", Type: String, Size: 12}}}}, Atomics: []string{"a"}}
	size, plans := spec.layout()
	p := plans[0]
	patch := func(off int64, v uint64) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(off))
		return binary.LittleEndian.AppendUint64(b, v)
	}
	f.Add([]byte{})
	f.Add(patch(offVersion, 2))
	f.Add(patch(offTables, 1000))
	f.Add(patch(p.off+tBuckets, 3))
	f.Add(patch(p.off+tRowOff, uint64(size)))
	f.Add(patch(p.bucketAt+bHead, 9))                                            // a head past the table
	f.Add(patch(p.bucketAt+bSeq, 1))                                             // odd, nobody holding the lock
	f.Add(patch(p.bucketAt+bLock, 1))                                            // held by pid 1, alive: reads time out
	f.Add(patch(p.bucketAt+bIntent, opAlloc<<opShift))                           // a dead holder's intent
	f.Add(append(patch(p.off+tFree, 3), patch(p.rowAt+2*p.rowSize+rNext, 3)...)) // a free list that loops
	f.Add(append(patch(p.bucketAt+bHead, 1), patch(p.rowAt+rNext, 1)...))        // a chain that loops
	f.Add(patch(p.rowAt+rKLen, 200))
	f.Add(patch(p.off+tCount, 1<<31))
	writeWait, readWait = 20*time.Millisecond, 20*time.Millisecond
	f.Fuzz(func(t *testing.T, patches []byte) {
		mem := make([]uint64, size/8)
		buf := unsafe.Slice((*byte)(unsafe.Pointer(&mem[0])), size)
		r := &Region{mem: buf, base: unsafe.Pointer(&mem[0]), size: size}
		r.format(spec, plans)
		if err := r.parse(); err != nil {
			t.Fatal(err)
		}
		tb := r.tables[0]
		n, _ := tb.Column("n")
		tb.SetInt("x", n, 1) // some content before the damage
		for ; len(patches) >= 12; patches = patches[12:] {
			off := int64(binary.LittleEndian.Uint32(patches)) % (size - 7) &^ 7
			binary.LittleEndian.PutUint64(buf[off:], binary.LittleEndian.Uint64(patches[4:]))
		}
		if r.parse() != nil {
			return // refused: fine
		}
		for _, tb := range r.tables {
			cols := tb.Columns()
			row := tb.NewRow()
			buf := []byte(nil)
			for i := range 20 {
				k := "k" + strconv.Itoa(i%10)
				c := cols[i%len(cols)]
				switch c.Type() {
				case String:
					tb.SetString(k, c, "v")
					buf, _ = tb.GetString(k, c, buf)
				default:
					tb.Incr(k, c, 1)
					tb.GetInt(k, c)
				}
				tb.Get(k, row)
				if i%4 == 0 {
					tb.Del(k)
				}
			}
			tb.Range(row, func(string, *Row) bool { return true })
			tb.Count()
			tb.Stats()
		}
		for _, a := range r.atomics {
			a.Add(1)
			a.Wait(0)
		}
		r.Recover(1)
	})
}
