package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Body arenas (docs/protocol.md, "Body arenas"): shared memory that
// carries large HTTP bodies between the master and a worker that says
// `arenas` in its hello, in place of the socket pair. The frames then name
// a range of an arena (offset and length) instead of carrying the bytes:
//
//   - The request arena is one memfd of the master's, which it alone can
//     write (sealed F_SEAL_FUTURE_WRITE after the master mapped it): a
//     worker maps it read-only at fd RequestArenaFD. A Request names its
//     body there with `body_at`; the range is the worker's to read until
//     it ends the response (FlagEnd).
//   - The answer arena is one memfd per worker incarnation, which the
//     worker maps read-write at fd AnswerArenaFD and the master read-only.
//     A Response or ResponseBody frame with FlagRef names its body there;
//     the master gives the range back with a Release frame once it has
//     written or copied it.
//
// Both are sealed against shrinking and growing, so that neither side can
// make the other's mapping fault.

// FlagRef on a Response or ResponseBody frame (W→M) says its body is in
// the worker's answer arena: a Response's payload has `body_at` in place
// of `body`, a ResponseBody's payload is a Ref (16 bytes).
const FlagRef uint8 = 0x08

// TypeRelease (M→W, a sequence of Refs) gives ranges of the worker's
// answer arena back: the master has written or copied them.
const TypeRelease Type = 22

// Descriptors and environment of the arenas in a worker (role worker
// only). Each variable names the descriptor and is set only when the
// manager passed that arena.
const (
	RequestArenaFD  = 4
	AnswerArenaFD   = 5
	EnvRequestArena = "DROVER_REQUEST_ARENA_FD"
	EnvAnswerArena  = "DROVER_ANSWER_ARENA_FD"
)

// AnswerArenaSize is the size of a worker's answer arena. Pages are
// allocated as they are first written, so a worker that reuses the same
// ranges holds little of it.
const AnswerArenaSize = 16 << 20

// RefSize is the encoded size of a Ref.
const RefSize = 16

// Ref is a range of an arena.
type Ref struct {
	Off, Len uint64
}

// AppendRef appends r: offset and length, 8 bytes each, big-endian.
func AppendRef(dst []byte, r Ref) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(dst, r.Off), r.Len)
}

// ParseRef decodes a ResponseBody's FlagRef payload: exactly one Ref.
func ParseRef(p []byte) (Ref, error) {
	if len(p) != RefSize {
		return Ref{}, fmt.Errorf("arena reference of %d bytes (want %d)", len(p), RefSize)
	}
	return Ref{binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])}, nil
}

// ParseRelease calls fn for each Ref of a Release payload.
func ParseRelease(p []byte, fn func(Ref)) error {
	if len(p)%RefSize != 0 {
		return fmt.Errorf("release frame of %d bytes (want a multiple of %d)", len(p), RefSize)
	}
	for ; len(p) > 0; p = p[RefSize:] {
		fn(Ref{binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])})
	}
	return nil
}

// In reports whether r lies within an arena of size bytes.
func (r Ref) In(size int) bool {
	return r.Off <= uint64(size) && r.Len <= uint64(size)-r.Off
}

// seals are those of every arena: neither side can shrink (make the
// other's mapping fault) nor grow it, nor change its seals.
const seals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// ErrArenaSeals: a descriptor passed as an arena lacks the seals that make
// mapping it safe.
var ErrArenaSeals = errors.New("arena is not sealed against shrinking")

// NewArena creates an arena: a memfd of size bytes, sealed. The master's
// request arena is created with a mapping (writable: the returned slice),
// then sealed with F_SEAL_FUTURE_WRITE, so that no later mapping (a
// worker's) can write it; otherwise mem is nil and whoever maps it may
// write. The caller owns the file (and unmaps mem with Unmap).
func NewArena(name string, size int, writable bool) (f *os.File, mem []byte, err error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	f = os.NewFile(uintptr(fd), name)
	defer func() {
		if err != nil {
			if mem != nil {
				unix.Munmap(mem)
				mem = nil
			}
			f.Close()
			f = nil
		}
	}()
	if err = unix.Ftruncate(fd, int64(size)); err != nil {
		return f, nil, fmt.Errorf("%s: ftruncate %d: %w", name, size, err)
	}
	s := seals
	if writable {
		if mem, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
			return f, nil, fmt.Errorf("%s: mmap: %w", name, err)
		}
		s |= unix.F_SEAL_FUTURE_WRITE
	}
	if _, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, s); err != nil {
		return f, mem, fmt.Errorf("%s: seal: %w", name, err)
	}
	return f, mem, nil
}

// MapArena maps the whole arena f: read-only, or read-write (writable).
// It refuses an arena that can shrink: reading a mapping of a file cut
// short under it would fault.
func MapArena(f *os.File, writable bool) ([]byte, error) {
	fd := int(f.Fd())
	s, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("arena: %w", err)
	}
	if s&unix.F_SEAL_SHRINK == 0 {
		return nil, ErrArenaSeals
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("arena: %w", err)
	}
	if st.Size <= 0 || st.Size > 1<<40 {
		return nil, fmt.Errorf("arena of %d bytes", st.Size)
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("arena: mmap: %w", err)
	}
	return mem, nil
}

// Unmap unmaps an arena mapped by NewArena or MapArena.
func Unmap(mem []byte) error {
	if mem == nil {
		return nil
	}
	return unix.Munmap(mem)
}
