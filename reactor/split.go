package reactor

// Protocol splitters: how a stream listener cuts a connection's bytes into
// the packets that are dispatched to workers. They mirror Swoole's
// open_length_check (package_length_type, package_length_offset,
// package_body_offset), open_eof_split (package_eof) and the raw mode where
// every read is a packet; package_max_length bounds every packet in all three.
//
// The calling convention (see Splitter) lets a connection keep one receive
// buffer: append what read(2) returned, call Split until it returns n == 0,
// drop the consumed prefix. Split never allocates on the success path and
// never retains buf.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrPacketTooLarge reports a packet that exceeds the listener's
// package_max_length. Splitters return it wrapped with the sizes involved
// (for example "packet of 3000000 bytes exceeds package_max_length 2097152");
// test with errors.Is. The connection must be closed.
var ErrPacketTooLarge = errors.New("packet exceeds package_max_length")

// ErrBadLength reports a length field that cannot describe a packet: negative
// for a signed type, or declaring a packet smaller than the header the field
// sits in. Splitters return it wrapped with the value read; test with
// errors.Is. The connection must be closed.
var ErrBadLength = errors.New("invalid length field")

// splitDefaultMax is Swoole's default package_max_length (2 MiB); it applies
// when a constructor is given a max of 0 or less, so no listener ever buffers
// without a bound.
const splitDefaultMax = 2 << 20

// Splitter cuts one connection's byte stream into packets.
//
// A Splitter may keep per-connection state (how far it has scanned), so each
// connection must get its own from its listener's factory; one Splitter must
// not be used by two connections or two goroutines at once unless its
// constructor says it is stateless.
type Splitter interface {
	// Split looks at buf, the bytes received and not yet consumed; buf always
	// starts at a packet boundary. It returns
	//
	//   - n > 0 when buf[:n] is the next complete packet (n <= len(buf));
	//   - n == 0 when more bytes are needed, with want = the total size of
	//     that packet when it is already known (want > len(buf), so the caller
	//     can size its buffer) or 0 when it is not;
	//   - err != nil, wrapping ErrPacketTooLarge or ErrBadLength, when the
	//     stream is invalid: the connection must be closed and the Splitter
	//     not used again.
	//
	// After consuming n bytes the caller calls Split again on the rest, until
	// it returns n == 0. Between calls, the caller passes a buffer that starts
	// where the previously returned packet ended (or, if none was returned,
	// where the previous buffer started) and holds the same bytes as before,
	// extended by newly received bytes only. Split does not modify or retain
	// buf and does not allocate unless it returns an error.
	Split(buf []byte) (n, want int, err error)
}

// LengthSpec configures a length-prefixed protocol with Swoole's semantics
// (open_length_check): the packet size is BodyOffset plus the value of the
// length field found at Offset.
type LengthSpec struct {
	// Type is the package_length_type as a PHP pack code: 'c' int8, 'C'
	// uint8, 's' int16 host order, 'S' uint16 host order, 'n' uint16
	// big-endian, 'v' uint16 little-endian, 'l' int32 host order, 'L' uint32
	// host order, 'N' uint32 big-endian, 'V' uint32 little-endian. Host order
	// is binary.NativeEndian (little-endian on amd64 and arm64).
	Type byte
	// Offset is the package_length_offset: where the length field starts.
	Offset int
	// BodyOffset is the package_body_offset: packet size = BodyOffset + the
	// length field. With BodyOffset 0 the field counts the whole packet,
	// header included ("length includes header").
	BodyOffset int
	// Max is the package_max_length: the largest whole packet, header
	// included. 0 or less selects Swoole's default of 2 MiB.
	Max int
}

// LengthSize returns the width in bytes of the length field for pack code t:
// 1, 2 or 4, or 0 if t is not one of the codes LengthSpec.Type accepts.
// Configuration validation uses it to reject an unknown type.
func LengthSize(t byte) int {
	switch t {
	case 'c', 'C':
		return 1
	case 's', 'S', 'n', 'v':
		return 2
	case 'l', 'L', 'N', 'V':
		return 4
	}
	return 0
}

// NewLengthSplitter returns the Splitter for a length-prefixed protocol.
//
// A packet is buf[:s.BodyOffset+field] where field is the length field at
// s.Offset. As soon as the header (s.Offset+LengthSize(s.Type) bytes) is
// readable, the declared size is checked: a negative field (signed types) or
// a size smaller than the header is ErrBadLength, a size above Max is
// ErrPacketTooLarge, so an oversized packet is refused before its body
// arrives; otherwise Split returns want = the declared size until the whole
// packet is there. Before the header is complete it returns (0, 0, nil).
//
// The Splitter is stateless and safe for concurrent use, so one value can
// serve every connection of a listener. NewLengthSplitter panics if s.Type is
// unknown (LengthSize(s.Type) == 0) or an offset is negative: configuration
// must reject those before listeners are built.
func NewLengthSplitter(s LengthSpec) Splitter {
	size := LengthSize(s.Type)
	if size == 0 {
		panic(fmt.Sprintf("reactor: NewLengthSplitter: unknown package_length_type %q", s.Type))
	}
	if s.Offset < 0 || s.BodyOffset < 0 {
		panic(fmt.Sprintf("reactor: NewLengthSplitter: negative offset (package_length_offset %d, package_body_offset %d)", s.Offset, s.BodyOffset))
	}
	if s.Max <= 0 {
		s.Max = splitDefaultMax
	}
	return &lengthSplitter{spec: s, header: s.Offset + size}
}

type lengthSplitter struct {
	spec   LengthSpec
	header int // Offset + LengthSize(Type): bytes needed to read the field
}

func (l *lengthSplitter) Split(buf []byte) (n, want int, err error) {
	if len(buf) < l.header {
		return 0, 0, nil
	}
	f := buf[l.spec.Offset:l.header]
	var v int64
	switch l.spec.Type {
	case 'c':
		v = int64(int8(f[0]))
	case 'C':
		v = int64(f[0])
	case 's':
		v = int64(int16(binary.NativeEndian.Uint16(f)))
	case 'S':
		v = int64(binary.NativeEndian.Uint16(f))
	case 'n':
		v = int64(binary.BigEndian.Uint16(f))
	case 'v':
		v = int64(binary.LittleEndian.Uint16(f))
	case 'l':
		v = int64(int32(binary.NativeEndian.Uint32(f)))
	case 'L':
		v = int64(binary.NativeEndian.Uint32(f))
	case 'N':
		v = int64(binary.BigEndian.Uint32(f))
	case 'V':
		v = int64(binary.LittleEndian.Uint32(f))
	}
	// Compare v against bounds minus BodyOffset rather than computing
	// BodyOffset+v, which could overflow for an absurd BodyOffset.
	body := int64(l.spec.BodyOffset)
	switch {
	case v < 0:
		return 0, 0, &splitError{
			msg: fmt.Sprintf("negative length field %d (package_length_type %q)", v, l.spec.Type),
			is:  ErrBadLength,
		}
	case v < int64(l.header)-body:
		return 0, 0, &splitError{
			msg: fmt.Sprintf("length field %d declares a packet of %d bytes, smaller than its %d-byte header", v, body+v, l.header),
			is:  ErrBadLength,
		}
	case v > int64(l.spec.Max)-body:
		return 0, 0, &splitError{
			msg: fmt.Sprintf("packet of %d bytes exceeds package_max_length %d", body+v, l.spec.Max),
			is:  ErrPacketTooLarge,
		}
	}
	size := l.spec.BodyOffset + int(v) // <= Max, so it fits an int
	if len(buf) < size {
		return 0, size, nil
	}
	return size, 0, nil
}

// NewEOFSplitter returns the Splitter for an EOF-delimited protocol
// (Swoole's open_eof_split with package_eof = eof).
//
// Every occurrence of eof ends a packet, and the packet includes the eof
// bytes; a packet may be just eof. The end of a packet is the leftmost match
// of eof scanning from the packet's first byte, so with an overlapping eof
// such as "aa" the stream "aaa" yields the packet "aa" followed by the start
// of the next one, "a". A packet, eof included, may be at most max bytes (0
// or less selects 2 MiB): once the buffer holds max bytes and no eof ends
// within them, Split returns ErrPacketTooLarge. Split never returns a want.
//
// The Splitter remembers how far it has scanned the current packet, so a
// packet arriving in many reads is scanned once (O(n) in total, not O(n²)).
// That is why it relies on the calling convention of Splitter strictly: while
// Split returns (0, 0, nil) the next buffer must start at the same byte and
// extend the previous one by new bytes only; after it returns a packet the
// next buffer must start right after that packet; the remembered position is
// then forgotten. A shorter buffer than the scanned part also restarts the
// scan. Each connection needs its own Splitter. NewEOFSplitter copies eof and
// panics if it is empty.
func NewEOFSplitter(eof []byte, max int) Splitter {
	if len(eof) == 0 {
		panic("reactor: NewEOFSplitter: empty package_eof")
	}
	if max <= 0 {
		max = splitDefaultMax
	}
	return &eofSplitter{eof: bytes.Clone(eof), max: max}
}

type eofSplitter struct {
	eof []byte
	max int
	// from is where the next search starts: every eof that begins before it
	// would have ended inside a buffer already scanned without a match.
	from int
}

func (e *eofSplitter) Split(buf []byte) (n, want int, err error) {
	// A packet longer than max is an error wherever its eof is, so never
	// scan past max: the work per packet is bounded by max.
	limit := min(len(buf), e.max)
	from := e.from
	if from > limit {
		from = 0
	}
	if i := bytes.Index(buf[from:limit], e.eof); i >= 0 {
		e.from = 0
		return from + i + len(e.eof), 0, nil
	}
	if len(buf) >= e.max {
		e.from = 0
		return 0, 0, &splitError{
			msg: fmt.Sprintf("no package_eof %q within package_max_length %d bytes", e.eof, e.max),
			is:  ErrPacketTooLarge,
		}
	}
	// An eof may begin in the last len(eof)-1 bytes and end in bytes yet to
	// come; everything before those is settled.
	e.from = max(0, limit-len(e.eof)+1)
	return 0, 0, nil
}

// NewRawSplitter returns the Splitter for raw streams: whatever has been
// received is one packet, cut at max bytes (0 or less selects 2 MiB). Split
// returns n = min(len(buf), max) when buf is not empty and (0, 0, nil)
// otherwise; it never fails. The Splitter is stateless and safe for
// concurrent use.
func NewRawSplitter(max int) Splitter {
	if max <= 0 {
		max = splitDefaultMax
	}
	return rawSplitter{max: max}
}

type rawSplitter struct{ max int }

func (r rawSplitter) Split(buf []byte) (n, want int, err error) {
	return min(len(buf), r.max), 0, nil
}

// splitError is a splitter's error: a message with the sizes involved that
// matches its sentinel under errors.Is without repeating the sentinel's text.
type splitError struct {
	msg string
	is  error
}

func (e *splitError) Error() string { return e.msg }
func (e *splitError) Unwrap() error { return e.is }
