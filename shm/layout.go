package shm

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The layout, version 1 (docs/tables.md is the reference; every offset
// below is in bytes, every integer little-endian, every structure aligned
// to 64 bytes from the start of the region).
const (
	// Magic starts the region.
	Magic = "DROVERSH"
	// Version is the layout version; a reader refuses another.
	Version = 1

	headerSize = 64 // region header
	dirEntry   = 64 // a directory entry: one per table, then one per atomic
	atomicSize = 64 // an atomic's slot: one cache line

	tableHeader = 128 // a table's header, its column descriptors follow
	columnDesc  = 48  // a column descriptor
	bucketSize  = 32  // lock u64, seq u32, head u32, intent u32, reserved u32, columns u64
	rowHeader   = 72  // state u32, next u32, key length u8, key [63]

	// MaxKey is the longest key, in bytes (Swoole's 63).
	MaxKey = 63
	// MaxColumns bounds a table's columns.
	MaxColumns = 64
	// MaxRows bounds a table's size.
	MaxRows = 100_000_000
	// MaxString bounds a string column's size, in bytes.
	MaxString = 1 << 20
	// MaxName bounds the name of a table, a column or an atomic, in bytes.
	MaxName = 31
	// MaxRegion bounds the whole region: far beyond what a machine has, it
	// only keeps the arithmetic in range.
	MaxRegion = 1 << 40
)

// Region header fields.
const (
	offMagic   = 0  // [8]byte
	offVersion = 8  // u32
	offHdrSize = 12 // u32: headerSize
	offSize    = 16 // u64: the region's size in bytes
	offTables  = 24 // u32: number of tables
	offAtomics = 28 // u32: number of atomics
	offSchema  = 32 // u64: FNV-1a 64 of the schema text (Spec.Schema)
	offDir     = 40 // u64: offset of the directory
)

// Directory entry fields.
const (
	dirName = 0  // [32]byte, NUL-padded
	dirKind = 32 // u32: kindTable or kindAtomic
	dirOff  = 40 // u64: offset of the table's header or the atomic's slot
	dirLen  = 48 // u64: bytes of the table (header to last row) or of the slot
)

const (
	kindTable  = 1
	kindAtomic = 2
)

// Table header fields (from the table's offset).
const (
	tName      = 0   // [32]byte
	tSize      = 32  // u32: rows at most
	tBuckets   = 36  // u32: buckets, a power of two
	tRowSize   = 40  // u32: bytes per row
	tColumns   = 44  // u32: number of column descriptors
	tBucketOff = 48  // u64: offset of the buckets (from the region's start)
	tRowOff    = 56  // u64: offset of the rows
	tAlloc     = 64  // u64: the allocator's lock word
	tCount     = 72  // u32: rows in use (changed under the allocator's lock)
	tFree      = 76  // u32: head of the free list, row index + 1; 0: empty
	tHigh      = 80  // u32: rows handed out at least once; [high, size) were never used
	tRecovered = 84  // u32: locks taken over from dead holders
	tTorn      = 88  // u32: sets cut short by their writer's death (their columns reset)
	tTimeouts  = 92  // u32: reads that gave up on a stalled writer
	tColDescs  = 128 // column descriptors start here
)

// Column descriptor fields.
const (
	cName = 0  // [32]byte
	cType = 32 // u32: Int, Float or String
	cSize = 36 // u32: value bytes: 8, or a string's capacity
	cOff  = 40 // u32: offset of the column in a row
)

// Bucket fields.
const (
	bLock   = 0  // u64 lock word
	bSeq    = 8  // u32 sequence: odd while a writer changes the chain or its rows
	bHead   = 12 // u32 first row of the chain, index + 1; 0: empty
	bIntent = 16 // u32 what the lock's holder is doing (op<<28 | row+1)
	bCols   = 24 // u64 with opSet: the columns being written (bit i: column i)
)

// Row fields.
const (
	rState = 0 // u32: 0 free, else the index + 1 of the bucket whose chain holds it
	rNext  = 4 // u32: next row of the chain or of the free list, index + 1
	rKLen  = 8 // u8: key length
	rKey   = 9 // [63]byte
)

// Intents a bucket's lock holder records before it changes anything, for
// whoever takes the lock over should it die (repair).
const (
	opNone   = 0
	opSet    = 1 // rewriting the columns bCols names of row: torn if the sequence is odd
	opIncr   = 2 // one aligned 8-byte store into row: never torn
	opAlloc  = 3 // taking a row from the allocator: which one is not known yet
	opInsert = 4 // linking row, written in full beforehand
	opDelete = 5 // unlinking row, then freeing it
	opShift  = 28
	rowMask  = 1<<opShift - 1
)

// ColumnType is a column's type, numbered as Swoole\Table's TYPE_ constants.
type ColumnType uint32

const (
	// Int is a signed 64-bit integer.
	Int ColumnType = 1
	// Float is an IEEE 754 double.
	Float ColumnType = 2
	// String holds up to its column's Size bytes.
	String ColumnType = 3
)

// String names t as the config does: int, float, string.
func (t ColumnType) String() string {
	switch t {
	case Int:
		return "int"
	case Float:
		return "float"
	case String:
		return "string"
	}
	return "type" + strconv.Itoa(int(t))
}

// Spec declares what a region holds.
type Spec struct {
	Tables  []TableSpec
	Atomics []string
}

// TableSpec declares a table: its name, how many rows it holds at most,
// and its columns.
type TableSpec struct {
	Name    string
	Size    int
	Columns []ColumnSpec
}

// ColumnSpec declares a column. Size is a String column's capacity in
// bytes, and ignored for Int and Float (8 bytes each).
type ColumnSpec struct {
	Name string
	Type ColumnType
	Size int
}

// ParseType reads a column type as the config writes it: int, float or
// string(N) with N from 1 to MaxString.
func ParseType(s string) (ColumnType, int, error) {
	switch s {
	case "int":
		return Int, 8, nil
	case "float":
		return Float, 8, nil
	}
	if n, ok := strings.CutPrefix(s, "string("); ok {
		if n, ok := strings.CutSuffix(n, ")"); ok {
			size, err := strconv.Atoi(n)
			if err != nil || size < 1 || size > MaxString {
				return 0, 0, fmt.Errorf("%q: the size of a string column is from 1 to %d bytes", s, MaxString)
			}
			return String, size, nil
		}
	}
	if s == "string" {
		return 0, 0, fmt.Errorf(`"string" needs its size in bytes, e.g. string(256)`)
	}
	return 0, 0, fmt.Errorf("unknown column type %q (want int, float or string(N), e.g. string(256))", s)
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckName reports what is wrong with a table, column or atomic name.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > MaxName:
		return fmt.Errorf("%q is %d bytes long (at most %d)", name, len(name), MaxName)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%q: a name is letters, digits and _, not starting with a digit", name)
	}
	return nil
}

// canonical returns s sorted (tables and atomics by name, columns by name):
// the order of the layout, whatever order the config lists them in.
func (s Spec) canonical() Spec {
	c := Spec{Atomics: slices.Clone(s.Atomics)}
	slices.Sort(c.Atomics)
	for _, t := range s.Tables {
		t.Columns = slices.Clone(t.Columns)
		for i := range t.Columns {
			if t.Columns[i].Type != String {
				t.Columns[i].Size = 8
			}
		}
		slices.SortFunc(t.Columns, func(a, b ColumnSpec) int { return strings.Compare(a.Name, b.Name) })
		c.Tables = append(c.Tables, t)
	}
	slices.SortFunc(c.Tables, func(a, b TableSpec) int { return strings.Compare(a.Name, b.Name) })
	return c
}

// Check reports every problem of s (names, sizes, duplicates), one per
// line; the config reports them with file and line first.
func (s Spec) Check() error {
	var errs []error
	seen := map[string]bool{}
	for _, t := range s.Tables {
		if err := CheckName(t.Name); err != nil {
			errs = append(errs, fmt.Errorf("table %w", err))
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("table %q declared twice", t.Name))
		}
		seen[t.Name] = true
		if t.Size < 1 || t.Size > MaxRows {
			errs = append(errs, fmt.Errorf("table %q: size %d out of range (1 to %d rows)", t.Name, t.Size, MaxRows))
		}
		if len(t.Columns) == 0 || len(t.Columns) > MaxColumns {
			errs = append(errs, fmt.Errorf("table %q: %d columns (want 1 to %d)", t.Name, len(t.Columns), MaxColumns))
		}
		cols := map[string]bool{}
		for _, c := range t.Columns {
			if err := CheckName(c.Name); err != nil {
				errs = append(errs, fmt.Errorf("table %q: column %w", t.Name, err))
			}
			if cols[c.Name] {
				errs = append(errs, fmt.Errorf("table %q: column %q declared twice", t.Name, c.Name))
			}
			cols[c.Name] = true
			switch {
			case c.Type == String && (c.Size < 1 || c.Size > MaxString):
				errs = append(errs, fmt.Errorf("table %q: column %q: string size %d out of range (1 to %d)", t.Name, c.Name, c.Size, MaxString))
			case c.Type != Int && c.Type != Float && c.Type != String:
				errs = append(errs, fmt.Errorf("table %q: column %q: unknown type %d", t.Name, c.Name, c.Type))
			}
		}
	}
	atoms := map[string]bool{}
	for _, a := range s.Atomics {
		if err := CheckName(a); err != nil {
			errs = append(errs, fmt.Errorf("atomic %w", err))
		}
		if atoms[a] {
			errs = append(errs, fmt.Errorf("atomic %q declared twice", a))
		}
		atoms[a] = true
	}
	if len(errs) == 0 {
		if n, _ := s.layout(); n > MaxRegion {
			errs = append(errs, fmt.Errorf("the tables need %d bytes, more than drover maps (%d)", n, int64(MaxRegion)))
		}
	}
	return errors.Join(errs...)
}

// Schema is the canonical text of s: what a layout is compared by (its
// FNV-1a 64 is in the header). Two specs with one schema have one layout.
func (s Spec) Schema() string {
	c := s.canonical()
	var b strings.Builder
	b.WriteString("drover-shm v" + strconv.Itoa(Version) + "\n")
	for _, t := range c.Tables {
		fmt.Fprintf(&b, "table %s %d\n", t.Name, t.Size)
		for _, col := range t.Columns {
			fmt.Fprintf(&b, "  %s %s %d\n", col.Name, col.Type, col.Size)
		}
	}
	for _, a := range c.Atomics {
		fmt.Fprintf(&b, "atomic %s\n", a)
	}
	return b.String()
}

// SchemaHash is the FNV-1a 64 of Schema, as the region's header holds it.
func (s Spec) SchemaHash() uint64 { return schemaHash(s.Schema()) }

func schemaHash(schema string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(schema))
	return h.Sum64()
}

// tablePlan is where a table lives in the region and how its rows look.
type tablePlan struct {
	spec     TableSpec // canonical: columns sorted, Size 8 for numbers
	off      int64     // table header
	buckets  int64     // number of buckets
	rowSize  int64
	colOff   []int64 // each column's offset in a row
	bucketAt int64
	rowAt    int64
	end      int64
}

func align(n, a int64) int64 { return (n + a - 1) / a * a }

// columnBytes is the room a column takes in a row: 8 for numbers, a u32
// length and the bytes for a string, rounded up to 8.
func columnBytes(c ColumnSpec) int64 {
	if c.Type == String {
		return align(4+int64(c.Size), 8)
	}
	return 8
}

// RowSize is the size of one row of t, in bytes.
func RowSize(t TableSpec) int64 {
	n := int64(rowHeader)
	for _, c := range t.Columns {
		n += columnBytes(c)
	}
	return align(n, 8)
}

// bucketsFor is the number of buckets of a table of size rows: the power
// of two at or above it, so that chains average one row or less.
func bucketsFor(size int) int64 {
	n := int64(1)
	for n < int64(size) {
		n <<= 1
	}
	return n
}

// layout places the atomics and tables of s (canonical order) and
// returns the region's size.
func (s Spec) layout() (int64, []tablePlan) {
	c := s.canonical()
	off := int64(headerSize)
	off += int64(len(c.Tables)+len(c.Atomics)) * dirEntry
	off = align(off, 64)
	off += int64(len(c.Atomics)) * atomicSize
	var plans []tablePlan
	for _, t := range c.Tables {
		p := tablePlan{spec: t, off: off, buckets: bucketsFor(t.Size), rowSize: RowSize(t)}
		col := int64(rowHeader)
		for _, cs := range t.Columns {
			p.colOff = append(p.colOff, col)
			col += columnBytes(cs)
		}
		p.bucketAt = align(off+tableHeader+int64(len(t.Columns))*columnDesc, 64)
		p.rowAt = align(p.bucketAt+p.buckets*bucketSize, 64)
		p.end = align(p.rowAt+int64(t.Size)*p.rowSize, 64)
		off = p.end
		plans = append(plans, p)
	}
	return max(off, 4096), plans
}

// Bytes is the size of the region s needs: what drover allocates at
// start for these tables and atomics.
func (s Spec) Bytes() int64 {
	n, _ := s.layout()
	return n
}

// TableBytes is the memory one table takes in the region: its header and
// column descriptors, its buckets (32 bytes each, as many as the power of
// two at or above its size) and its rows (RowSize each).
func TableBytes(t TableSpec) int64 {
	_, plans := Spec{Tables: []TableSpec{t}}.layout()
	return plans[0].end - plans[0].off
}
