package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EnvFD names the descriptor of the region in the environment of every
// worker, task worker and user process (and of the manager, which passes
// it on). Unset when the config declares no tables and no atomics.
const EnvFD = "DROVER_SHM_FD"

// Region is the shared memory of a drover tree, mapped into this process.
// Its methods are safe for concurrent use; the Tables and Atomics it
// returns too.
type Region struct {
	mem     []byte
	base    unsafe.Pointer
	file    *os.File // nil once closed by Map's caller, or for Inherited
	size    int64
	schema  uint64
	tables  []*Table
	atomics []*Atomic
}

// ErrNoRegion: this process was not given a region (no DROVER_SHM_FD).
var ErrNoRegion = errors.New("shm: no shared memory in this process (declare tables: or atomics: in drover.yaml; the process must be started by drover)")

func hostLittleEndian() error {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return errors.New("shm: the layout is little-endian and this host is not")
	}
	return nil
}

// Create makes a region for spec: a sealed memfd (it can be neither grown
// nor shrunk, so no process can make a mapping fault), its whole size
// allocated at once (fallocate: the memory is there, or Create fails
// now), laid out and mapped. The master calls it at start.
func Create(spec Spec) (*Region, error) {
	if err := hostLittleEndian(); err != nil {
		return nil, err
	}
	if err := spec.Check(); err != nil {
		return nil, err
	}
	size, plans := spec.layout()
	fd, err := unix.MemfdCreate("drover-tables", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("shm: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "drover-tables")
	fail := func(what string, err error) (*Region, error) {
		f.Close()
		return nil, fmt.Errorf("shm: %s (%d bytes for the tables and atomics): %w", what, size, err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		return fail("size the memory", err)
	}
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		return fail("allocate the memory", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		return fail("seal the memory", err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("map the memory", err)
	}
	r := &Region{mem: mem, base: unsafe.Pointer(&mem[0]), file: f, size: size}
	r.format(spec, plans)
	if err := r.parse(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// format writes the header, the directory and the tables' headers of a
// fresh (zeroed) region. Everything else starts as zero: free rows, empty
// buckets, atomics at 0.
func (r *Region) format(spec Spec, plans []tablePlan) {
	c := spec.canonical()
	copy(r.mem[offMagic:], Magic)
	r.put32(offVersion, Version)
	r.put32(offHdrSize, headerSize)
	r.put64(offSize, uint64(r.size))
	r.put32(offTables, uint32(len(c.Tables)))
	r.put32(offAtomics, uint32(len(c.Atomics)))
	r.put64(offSchema, schemaHash(spec.Schema()))
	r.put64(offDir, headerSize)
	dir := int64(headerSize)
	for _, p := range plans {
		copy(r.mem[dir+dirName:dir+dirName+MaxName], p.spec.Name)
		r.put32(dir+dirKind, kindTable)
		r.put64(dir+dirOff, uint64(p.off))
		r.put64(dir+dirLen, uint64(p.end-p.off))
		t := p.off
		copy(r.mem[t+tName:t+tName+MaxName], p.spec.Name)
		r.put32(t+tSize, uint32(p.spec.Size))
		r.put32(t+tBuckets, uint32(p.buckets))
		r.put32(t+tRowSize, uint32(p.rowSize))
		r.put32(t+tColumns, uint32(len(p.spec.Columns)))
		r.put64(t+tBucketOff, uint64(p.bucketAt))
		r.put64(t+tRowOff, uint64(p.rowAt))
		for i, col := range p.spec.Columns {
			d := t + tColDescs + int64(i)*columnDesc
			copy(r.mem[d+cName:d+cName+MaxName], col.Name)
			r.put32(d+cType, uint32(col.Type))
			r.put32(d+cSize, uint32(col.Size))
			r.put32(d+cOff, uint32(p.colOff[i]))
		}
		dir += dirEntry
	}
	at := align(headerSize+int64(len(c.Tables)+len(c.Atomics))*dirEntry, 64)
	for _, a := range c.Atomics {
		copy(r.mem[dir+dirName:dir+dirName+MaxName], a)
		r.put32(dir+dirKind, kindAtomic)
		r.put64(dir+dirOff, uint64(at))
		r.put64(dir+dirLen, atomicSize)
		dir += dirEntry
		at += atomicSize
	}
}

func (r *Region) put32(off int64, v uint32) { *(*uint32)(unsafe.Add(r.base, off)) = v }
func (r *Region) put64(off int64, v uint64) { *(*uint64)(unsafe.Add(r.base, off)) = v }
func (r *Region) get32(off int64) uint32    { return *(*uint32)(unsafe.Add(r.base, off)) }
func (r *Region) get64(off int64) uint64    { return *(*uint64)(unsafe.Add(r.base, off)) }
func (r *Region) p32(off int64) *uint32     { return (*uint32)(unsafe.Add(r.base, off)) }
func (r *Region) p64(off int64) *uint64     { return (*uint64)(unsafe.Add(r.base, off)) }

// Map maps the region in f (a memfd passed by drover) and checks its
// header and directory: anything that would make an access fall outside
// the mapping is refused, so that a corrupt header cannot crash the
// process that maps it. f may be closed afterwards; the mapping stays.
func Map(f *os.File) (*Region, error) {
	if err := hostLittleEndian(); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("shm: fd %d: %w", f.Fd(), err)
	}
	if st.Size < headerSize || st.Size > MaxRegion {
		return nil, fmt.Errorf("shm: fd %d holds %d bytes: not a drover region", f.Fd(), st.Size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: map fd %d: %w", f.Fd(), err)
	}
	r := &Region{mem: mem, base: unsafe.Pointer(&mem[0]), file: f, size: st.Size}
	if err := r.parse(); err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return r, nil
}

var (
	inheritOnce sync.Once
	inherited   *Region
	inheritErr  error
)

// Inherited is the region drover passed to this process (EnvFD), mapped
// on the first call; every call returns the same Region. The descriptor
// is closed once mapped, so that programs this process starts do not
// inherit it.
func Inherited() (*Region, error) {
	inheritOnce.Do(func() {
		s := os.Getenv(EnvFD)
		if s == "" {
			inheritErr = ErrNoRegion
			return
		}
		fd, err := strconv.Atoi(s)
		if err != nil || fd < 3 {
			inheritErr = fmt.Errorf("shm: %s=%q is not a descriptor", EnvFD, s)
			return
		}
		f := os.NewFile(uintptr(fd), "drover-tables")
		r, err := Map(f)
		f.Close()
		if err != nil {
			inheritErr = err
			return
		}
		r.file = nil
		inherited = r
	})
	return inherited, inheritErr
}

// parse reads the header and the directory, checking every offset
// against the mapping's size.
func (r *Region) parse() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("shm: not a drover region of layout %d: "+format, append([]any{Version}, args...)...)
	}
	if string(r.mem[:8]) != Magic {
		return bad("magic %q", r.mem[:8])
	}
	if v := r.get32(offVersion); v != Version {
		return bad("version %d", v)
	}
	if n := r.get64(offSize); int64(n) != r.size {
		return bad("header says %d bytes, the memory holds %d", n, r.size)
	}
	r.schema = r.get64(offSchema)
	nt, na := int64(r.get32(offTables)), int64(r.get32(offAtomics))
	dir := int64(r.get64(offDir))
	if dir < headerSize || nt+na > r.size/dirEntry || dir+(nt+na)*dirEntry > r.size {
		return bad("directory of %d entries at %d", nt+na, dir)
	}
	r.tables, r.atomics = nil, nil
	for i := int64(0); i < nt+na; i++ {
		e := dir + i*dirEntry
		name := cstring(r.mem[e+dirName : e+dirName+32])
		off, n := int64(r.get64(e+dirOff)), int64(r.get64(e+dirLen))
		if off < headerSize || n < 0 || off > r.size || n > r.size-off || off%8 != 0 {
			return bad("entry %q at %d (%d bytes)", name, off, n)
		}
		switch r.get32(e + dirKind) {
		case kindTable:
			t, err := r.parseTable(name, off, n)
			if err != nil {
				return bad("table %q: %v", name, err)
			}
			r.tables = append(r.tables, t)
		case kindAtomic:
			if n < 16 {
				return bad("atomic %q of %d bytes", name, n)
			}
			r.atomics = append(r.atomics, &Atomic{name: name, value: r.p64(off), wake: r.p32(off + 8), waiters: r.p32(off + 12)})
		default:
			return bad("entry %q of kind %d", name, r.get32(e+dirKind))
		}
	}
	return nil
}

func cstring(b []byte) string {
	if i := slices.Index(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseTable reads a table's header at off (n bytes long) and checks that
// its buckets and rows lie within those n bytes.
func (r *Region) parseTable(name string, off, n int64) (*Table, error) {
	if n < tableHeader {
		return nil, fmt.Errorf("%d bytes", n)
	}
	t := &Table{r: r, name: name, off: off, bytes: n,
		size: r.get32(off + tSize), nb: r.get32(off + tBuckets), rowSize: int64(r.get32(off + tRowSize))}
	ncol := int64(r.get32(off + tColumns))
	bAt, rAt := int64(r.get64(off+tBucketOff)), int64(r.get64(off+tRowOff))
	end := off + n
	switch {
	case t.size == 0 || t.size > MaxRows:
		return nil, fmt.Errorf("size %d", t.size)
	case t.nb == 0 || t.nb&(t.nb-1) != 0 || t.nb > 1<<28:
		return nil, fmt.Errorf("%d buckets", t.nb)
	case ncol < 1 || ncol > MaxColumns || off+tColDescs+ncol*columnDesc > end:
		return nil, fmt.Errorf("%d columns", ncol)
	case t.rowSize < rowHeader || t.rowSize%8 != 0 || t.rowSize > rowHeader+MaxColumns*(MaxString+8):
		return nil, fmt.Errorf("rows of %d bytes", t.rowSize)
	case bAt < off+tColDescs || bAt%8 != 0 || bAt+int64(t.nb)*bucketSize > end:
		return nil, fmt.Errorf("buckets at %d", bAt)
	case rAt < bAt+int64(t.nb)*bucketSize || rAt%8 != 0 || rAt+int64(t.size)*t.rowSize > end:
		return nil, fmt.Errorf("rows at %d", rAt)
	}
	t.mask = t.nb - 1
	t.buckets, t.rows = unsafe.Add(r.base, bAt), unsafe.Add(r.base, rAt)
	t.alloc, t.count, t.free, t.high = r.p64(off+tAlloc), r.p32(off+tCount), r.p32(off+tFree), r.p32(off+tHigh)
	t.recovered, t.torn, t.timeouts = r.p32(off+tRecovered), r.p32(off+tTorn), r.p32(off+tTimeouts)
	for i := int64(0); i < ncol; i++ {
		d := off + tColDescs + i*columnDesc
		c := Column{t: t, idx: i, name: cstring(r.mem[d+cName : d+cName+32]),
			typ: ColumnType(r.get32(d + cType)), size: int64(r.get32(d + cSize)), off: int64(r.get32(d + cOff))}
		room := int64(8)
		if c.typ == String {
			room = 4 + c.size
		}
		if (c.typ != Int && c.typ != Float && c.typ != String) || c.off < rowHeader || c.off%8 != 0 || c.off+room > t.rowSize ||
			(c.typ != String && c.size != 8) {
			return nil, fmt.Errorf("column %q: type %d, %d bytes at %d", c.name, c.typ, c.size, c.off)
		}
		t.cols = append(t.cols, c)
	}
	return t, nil
}

// File is the memfd of a region made by Create or mapped by Map (nil for
// Inherited): the master passes it to its children and to a new master.
func (r *Region) File() *os.File { return r.file }

// Size is the region's size in bytes.
func (r *Region) Size() int64 { return r.size }

// SchemaHash identifies the layout (Spec.Schema's FNV-1a 64): two regions
// with one hash have the same tables, columns and atomics.
func (r *Region) SchemaHash() uint64 { return r.schema }

// Matches reports whether r is laid out as spec declares.
func (r *Region) Matches(spec Spec) bool { return r.schema == schemaHash(spec.Schema()) }

// Close unmaps the region and closes its file. Tables and Atomics of r
// must not be used afterwards.
func (r *Region) Close() error {
	var err error
	if r.file != nil {
		err = r.file.Close()
		r.file = nil
	}
	if r.mem != nil {
		if e := unix.Munmap(r.mem); e != nil && err == nil {
			err = e
		}
		r.mem = nil
	}
	return err
}

// Table returns the table name.
func (r *Region) Table(name string) (*Table, error) {
	for _, t := range r.tables {
		if t.name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("shm: no table %q (declared: %s; add it under tables: in drover.yaml)", name, r.names(true))
}

// Atomic returns the atomic name.
func (r *Region) Atomic(name string) (*Atomic, error) {
	for _, a := range r.atomics {
		if a.name == name {
			return a, nil
		}
	}
	return nil, fmt.Errorf("shm: no atomic %q (declared: %s; add it under atomics: in drover.yaml)", name, r.names(false))
}

func (r *Region) names(tables bool) string {
	var ns []string
	if tables {
		for _, t := range r.tables {
			ns = append(ns, t.name)
		}
	} else {
		for _, a := range r.atomics {
			ns = append(ns, a.name)
		}
	}
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}

// Tables lists the region's tables, by name.
func (r *Region) Tables() []*Table { return slices.Clone(r.tables) }

// Atomics lists the region's atomics, by name.
func (r *Region) Atomics() []*Atomic { return slices.Clone(r.atomics) }

// Recover releases every lock that pid (a process that has exited) holds
// in r, repairing what it left half done, and returns how many it took
// over. The master calls it when the manager reports a child's exit, so
// that a lock nobody happens to wait for is not left to a later process
// that reuses the pid. A lock whose holder is alive is left alone.
func (r *Region) Recover(pid int) int {
	n := 0
	for _, t := range r.tables {
		n += t.recoverPID(uint32(pid))
	}
	return n
}

// load32 and friends are the atomic accessors of shared words.
func load32(p *uint32) uint32     { return atomic.LoadUint32(p) }
func store32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

// InheritedTable is Inherited's table name: what the SDKs' Table returns.
func InheritedTable(name string) (*Table, error) {
	r, err := Inherited()
	if err != nil {
		return nil, err
	}
	return r.Table(name)
}

// InheritedAtomic is Inherited's counter name: what the SDKs' Atomic returns.
func InheritedAtomic(name string) (*Atomic, error) {
	r, err := Inherited()
	if err != nil {
		return nil, err
	}
	return r.Atomic(name)
}
