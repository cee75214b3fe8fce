package shm

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"unsafe"
)

// Errors of table operations; the returned errors wrap them with the
// table's name and what was wrong.
var (
	// ErrFull: the table holds its size in rows; a set of a new key
	// fails, it never grows.
	ErrFull = errors.New("shm: table full")
	// ErrKey: an empty key, or one longer than MaxKey bytes.
	ErrKey = errors.New("shm: bad key")
	// ErrTooLong: a string longer than its column's size.
	ErrTooLong = errors.New("shm: string longer than its column")
	// ErrType: incr of a string column.
	ErrType = errors.New("shm: wrong column type")
)

// Column is a handle on one column of a table, for typed access without
// a lookup by name. Get it once (Table.Column), use it for every row.
type Column struct {
	t    *Table
	idx  int64
	name string
	typ  ColumnType
	size int64 // value bytes: 8 for numbers, the capacity of a string
	off  int64 // offset in a row
}

// Name is the column's name.
func (c Column) Name() string { return c.name }

// Type is the column's type.
func (c Column) Type() ColumnType { return c.typ }

// Size is the bytes a value of the column holds at most (8 for numbers).
func (c Column) Size() int { return int(c.size) }

func (c Column) word() int64 { return (c.off - rowHeader) / 8 }

// words is how many 8-byte words the column takes in a row.
func (c Column) words() int64 {
	if c.typ == String {
		return (4 + c.size + 7) / 8
	}
	return 1
}

// Row is a row's values outside the table: what Get copies a row into and
// what Set writes from. Reuse one Row for many operations: Get into it
// allocates nothing. A Row belongs to one table and one goroutine.
type Row struct {
	t    *Table
	data []uint64 // the columns' words, as in the table's rows
	set  uint64   // columns given a value since the last Reset or Get
}

// NewRow returns an empty row for t: every column zero, none set.
func (t *Table) NewRow() *Row {
	return &Row{t: t, data: make([]uint64, (t.rowSize-rowHeader)/8)}
}

// Reset zeroes every column and forgets which were set.
func (r *Row) Reset() {
	clear(r.data)
	r.set = 0
}

func (r *Row) check(c Column) {
	if c.t != r.t {
		if c.t == nil {
			panic("shm: the zero Column (get columns with Table.Column)")
		}
		panic(fmt.Sprintf("shm: column %q of table %q used with a row of table %q", c.name, c.t.name, r.t.name))
	}
}

// Int is the value of an Int column (a Float column's value truncated).
func (r *Row) Int(c Column) int64 {
	r.check(c)
	w := r.data[c.word()]
	if c.typ == Float {
		return int64(math.Float64frombits(w))
	}
	return int64(w)
}

// Float is the value of a Float column (an Int column's value converted).
func (r *Row) Float(c Column) float64 {
	r.check(c)
	w := r.data[c.word()]
	if c.typ == Int {
		return float64(int64(w))
	}
	return math.Float64frombits(w)
}

// Bytes is the value of a String column, a view into r valid until r
// changes.
func (r *Row) Bytes(c Column) []byte {
	r.check(c)
	if c.typ != String {
		return nil
	}
	b := r.bytes(c)
	n := min(int64(uint32(r.data[c.word()])), c.size)
	return b[4 : 4+n]
}

// String is the value of a String column, copied.
func (r *Row) String(c Column) string { return string(r.Bytes(c)) }

func (r *Row) bytes(c Column) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&r.data[c.word()])), c.words()*8)
}

// SetInt gives an Int column (or a Float column, converted) a value.
func (r *Row) SetInt(c Column, v int64) {
	r.check(c)
	switch c.typ {
	case Int:
		r.data[c.word()] = uint64(v)
	case Float:
		r.data[c.word()] = math.Float64bits(float64(v))
	default:
		panic(fmt.Sprintf("shm: SetInt of string column %q", c.name))
	}
	r.set |= 1 << c.idx
}

// SetFloat gives a Float column (or an Int column, truncated) a value.
func (r *Row) SetFloat(c Column, v float64) {
	r.check(c)
	switch c.typ {
	case Float:
		r.data[c.word()] = math.Float64bits(v)
	case Int:
		r.data[c.word()] = uint64(int64(v))
	default:
		panic(fmt.Sprintf("shm: SetFloat of string column %q", c.name))
	}
	r.set |= 1 << c.idx
}

// SetString gives a String column a value; ErrTooLong (the row is left
// unchanged) when v does not fit.
func (r *Row) SetString(c Column, v string) error {
	return r.SetBytes(c, unsafe.Slice(unsafe.StringData(v), len(v)))
}

// SetBytes is SetString with bytes (copied).
func (r *Row) SetBytes(c Column, v []byte) error {
	r.check(c)
	if c.typ != String {
		panic(fmt.Sprintf("shm: SetString of %s column %q", c.typ, c.name))
	}
	if int64(len(v)) > c.size {
		return fmt.Errorf("%w: %d bytes for column %q of table %q, string(%d)", ErrTooLong, len(v), c.name, c.t.name, c.size)
	}
	b := r.bytes(c)
	r.data[c.word()] = r.data[c.word()]&^0xffffffff | uint64(len(v))
	n := copy(b[4:], v)
	clear(b[4+n:])
	r.set |= 1 << c.idx
	return nil
}

// Has reports whether c was given a value since the last Reset or Get.
func (r *Row) Has(c Column) bool { r.check(c); return r.set&(1<<c.idx) != 0 }

// setCount is how many columns were set.
func (r *Row) setCount() int { return bits.OnesCount64(r.set) }
