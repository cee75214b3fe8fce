package ipc

import (
	"encoding/binary"
	"errors"
	"math"
)

// Hand-written msgpack for the request path: the HTTP frames' payloads
// (Request, Response) are coded without reflection by both the master and
// the worker SDK. MsgReader accepts what docs/protocol.md asks a reader to
// accept (any integer and string encoding, unknown keys skipped, keys in
// any order); the Append helpers write the most compact encodings.

// ErrMsgpack is returned by MsgReader for malformed or unexpected input.
var ErrMsgpack = errors.New("malformed msgpack")

// MsgReader reads msgpack values from a byte slice. Byte strings it returns
// alias that slice.
type MsgReader struct {
	b   []byte
	off int
}

// NewMsgReader returns a reader of b.
func NewMsgReader(b []byte) MsgReader { return MsgReader{b: b} }

// Offset is how many bytes have been read.
func (d *MsgReader) Offset() int { return d.off }

func (d *MsgReader) next(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, ErrMsgpack
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *MsgReader) code() (byte, error) {
	if d.off >= len(d.b) {
		return 0, ErrMsgpack
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// uintN reads a big-endian unsigned integer of size 1, 2, 4 or 8 bytes.
func (d *MsgReader) uintN(size int) (uint64, error) {
	p, err := d.next(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// length reads the length that follows a code: size bytes of it.
func (d *MsgReader) length(size int) (int, error) {
	n, err := d.uintN(size)
	if err != nil || n > math.MaxInt32 {
		return 0, ErrMsgpack
	}
	return int(n), nil
}

// MapLen reads a map header: the number of key-value pairs; nil is -1.
func (d *MsgReader) MapLen() (int, error) {
	c, err := d.code()
	switch {
	case err != nil:
		return 0, err
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), nil
	case c == 0xc0:
		return -1, nil
	case c == 0xde:
		return d.length(2)
	case c == 0xdf:
		return d.length(4)
	}
	return 0, ErrMsgpack
}

// ArrayLen reads an array header: the number of elements; nil is -1.
func (d *MsgReader) ArrayLen() (int, error) {
	c, err := d.code()
	switch {
	case err != nil:
		return 0, err
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), nil
	case c == 0xc0:
		return -1, nil
	case c == 0xdc:
		return d.length(2)
	case c == 0xdd:
		return d.length(4)
	}
	return 0, ErrMsgpack
}

// Bytes reads a str or bin (msgpack decodes both into Go strings and
// []byte); the result aliases the input. Nil yields nil and isNil.
func (d *MsgReader) Bytes() (b []byte, isNil bool, err error) {
	c, err := d.code()
	if err != nil {
		return nil, false, err
	}
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xc0:
		return nil, true, nil
	case c == 0xd9 || c == 0xc4:
		n, err = d.length(1)
	case c == 0xda || c == 0xc5:
		n, err = d.length(2)
	case c == 0xdb || c == 0xc6:
		n, err = d.length(4)
	default:
		return nil, false, ErrMsgpack
	}
	if err != nil {
		return nil, false, err
	}
	b, err = d.next(n)
	return b, false, err
}

// Int reads any integer encoding (uint64 wraps, as msgpack does); nil is 0.
func (d *MsgReader) Int() (int64, error) {
	c, err := d.code()
	switch {
	case err != nil:
		return 0, err
	case c <= 0x7f || c >= 0xe0:
		return int64(int8(c)), nil
	case c == 0xc0:
		return 0, nil
	}
	var v uint64
	switch c {
	case 0xcc, 0xd0:
		v, err = d.uintN(1)
		if c == 0xd0 {
			v = uint64(int8(v))
		}
	case 0xcd, 0xd1:
		v, err = d.uintN(2)
		if c == 0xd1 {
			v = uint64(int16(v))
		}
	case 0xce, 0xd2:
		v, err = d.uintN(4)
		if c == 0xd2 {
			v = uint64(int32(v))
		}
	case 0xcf, 0xd3:
		v, err = d.uintN(8)
	default:
		return 0, ErrMsgpack
	}
	return int64(v), err
}

// Bool reads a boolean; nil is false.
func (d *MsgReader) Bool() (bool, error) {
	c, err := d.code()
	switch {
	case err != nil:
		return false, err
	case c == 0xc0 || c == 0xc2:
		return false, nil
	case c == 0xc3:
		return true, nil
	}
	return false, ErrMsgpack
}

// maxSkipDepth bounds the nesting of skipped values.
const maxSkipDepth = 32

// Skip skips one value of any type (nested at most 32 deep).
func (d *MsgReader) Skip() error { return d.skip(0) }

func (d *MsgReader) skip(depth int) error {
	if depth > maxSkipDepth {
		return ErrMsgpack
	}
	c, err := d.code()
	if err != nil {
		return err
	}
	var items, n int // nested values to skip; bytes to skip
	switch {
	case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return nil
	case c >= 0x80 && c <= 0x8f:
		items = 2 * int(c&0x0f)
	case c >= 0x90 && c <= 0x9f:
		items = int(c & 0x0f)
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xc4 || c == 0xd9:
		n, err = d.length(1)
	case c == 0xc5 || c == 0xda:
		n, err = d.length(2)
	case c == 0xc6 || c == 0xdb:
		n, err = d.length(4)
	case c == 0xc7, c == 0xc8, c == 0xc9: // ext 8/16/32: length, type, data
		n, err = d.length(1 << (c - 0xc7))
		n++
	case c == 0xca, c == 0xce, c == 0xd2:
		n = 4
	case c == 0xcb, c == 0xcf, c == 0xd3:
		n = 8
	case c == 0xcc, c == 0xd0:
		n = 1
	case c == 0xcd, c == 0xd1:
		n = 2
	case c >= 0xd4 && c <= 0xd8: // fixext 1/2/4/8/16: type, data
		n = 1 + 1<<(c-0xd4)
	case c == 0xdc:
		items, err = d.length(2)
	case c == 0xdd:
		items, err = d.length(4)
	case c == 0xde:
		items, err = d.length(2)
		items *= 2
	case c == 0xdf:
		items, err = d.length(4)
		items *= 2
	default: // 0xc1 is never used
		return ErrMsgpack
	}
	if err != nil {
		return err
	}
	if _, err := d.next(n); err != nil {
		return err
	}
	for range items {
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// AppendNil appends nil.
func AppendNil(dst []byte) []byte { return append(dst, 0xc0) }

// AppendBool appends a boolean.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 0xc3)
	}
	return append(dst, 0xc2)
}

// AppendInt appends an integer in its shortest encoding.
func AppendInt(dst []byte, v int64) []byte {
	switch {
	case v >= -32 && v <= 0x7f:
		return append(dst, byte(v))
	case v >= 0 && v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v >= 0 && v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v >= 0 && v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	case v >= 0:
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), uint64(v))
	case v >= math.MinInt8:
		return append(dst, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

// AppendMapLen appends the header of a map of n key-value pairs.
func AppendMapLen(dst []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(dst, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
}

// AppendArrayLen appends the header of an array of n elements.
func AppendArrayLen(dst []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(dst, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
}

// AppendStr appends s as a msgpack str.
func AppendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n <= 31:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

// AppendBin appends b as a msgpack bin.
func AppendBin(dst []byte, b []byte) []byte {
	return append(AppendBinLen(dst, len(b)), b...)
}

// AppendBinLen appends the header of a msgpack bin of n bytes: the bytes
// follow it (AppendBin is both).
func AppendBinLen(dst []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
}

// bodyKeys is how many of the optional body keys (body, body_follows,
// body_at) an encoded r has, in either layout: they are left out when empty.
func (r *Request) bodyKeys() int {
	n := 0
	if len(r.Body) > 0 {
		n++
	}
	if r.BodyFollows {
		n++
	}
	if r.BodyAt != nil {
		n++
	}
	return n
}

// AppendRequest appends r encoded as msgpack.Marshal(r) would decode it:
// a map with r's msgpack keys, body and body_follows omitted when empty.
// It allocates only to grow dst.
func AppendRequest(dst []byte, r *Request) []byte {
	dst = AppendMapLen(dst, 7+r.bodyKeys())
	dst = AppendStr(dst, "method")
	dst = AppendStr(dst, r.Method)
	dst = AppendStr(dst, "target")
	dst = AppendStr(dst, r.Target)
	dst = AppendStr(dst, "proto")
	dst = AppendStr(dst, r.Proto)
	dst = AppendStr(dst, "headers")
	if r.Headers == nil {
		dst = AppendNil(dst)
	} else {
		dst = AppendArrayLen(dst, len(r.Headers))
		for _, s := range r.Headers {
			dst = AppendStr(dst, s)
		}
	}
	dst = AppendStr(dst, "content_length")
	dst = AppendInt(dst, r.ContentLength)
	if len(r.Body) > 0 {
		dst = AppendStr(dst, "body")
		dst = AppendBin(dst, r.Body)
	}
	if r.BodyFollows {
		dst = AppendStr(dst, "body_follows")
		dst = AppendBool(dst, true)
	}
	if r.BodyAt != nil {
		dst = AppendStr(dst, "body_at")
		dst = AppendArrayLen(dst, len(r.BodyAt))
		for _, v := range r.BodyAt {
			dst = AppendInt(dst, int64(v))
		}
	}
	dst = AppendStr(dst, "remote")
	dst = AppendStr(dst, r.Remote)
	dst = AppendStr(dst, "listener")
	return AppendInt(dst, int64(r.Listener))
}

// ResponseView is a Response decoded without copying: Headers (name,
// value, …) and Body alias the payload, which must outlive their use.
type ResponseView struct {
	Status  int
	Headers [][]byte
	Body    []byte
	// BodyAt is body_at ([offset, length] in the answer arena), nil when
	// absent.
	BodyAt []uint64
	at     [2]uint64 // BodyAt's storage
}

// Decode fills v from a TypeResponse payload, reusing v.Headers' capacity.
// It yields what msgpack.Unmarshal into a Response yields (nil strings
// are empty); on error v is unusable.
func (v *ResponseView) Decode(payload []byte) error {
	d := MsgReader{b: payload}
	v.Status, v.Headers, v.Body, v.BodyAt = 0, v.Headers[:0], nil, nil
	n, err := d.MapLen()
	if err != nil {
		return err
	}
	for range n {
		key, _, err := d.Bytes()
		if err != nil {
			return err
		}
		switch string(key) {
		case "status":
			var s int64
			s, err = d.Int()
			v.Status = int(s)
		case "headers":
			var k int
			if k, err = d.ArrayLen(); err != nil || k < 0 {
				break // nil leaves the headers as they were, as msgpack does
			}
			v.Headers = v.Headers[:0]
			for i := 0; i < k && err == nil; i++ {
				var b []byte
				b, _, err = d.Bytes()
				v.Headers = append(v.Headers, b)
			}
		case "body":
			v.Body, _, err = d.Bytes()
		case "body_at":
			v.BodyAt, err = d.uints(v.at[:0])
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// uints reads an array of non-negative integers into dst (nil: nil, as
// msgpack decodes it into a slice).
func (d *MsgReader) uints(dst []uint64) ([]uint64, error) {
	k, err := d.ArrayLen()
	if err != nil || k < 0 {
		return nil, err
	}
	if k > 16 {
		return nil, ErrMsgpack // two are expected
	}
	if dst == nil {
		dst = make([]uint64, 0, k)
	}
	for range k {
		v, err := d.Int()
		if err != nil {
			return nil, err
		}
		if v < 0 {
			return nil, ErrMsgpack // a negative offset or length
		}
		dst = append(dst, uint64(v))
	}
	return dst, nil
}

// AppendResponseRef is AppendResponseHead for a body in the answer arena
// (a frame with FlagRef): body_at names it, no body follows.
func AppendResponseRef(dst []byte, status int, pairs []string, extra []string, r Ref) []byte {
	dst = AppendMapLen(dst, 3)
	dst = AppendStr(dst, "status")
	dst = AppendInt(dst, int64(status))
	dst = AppendStr(dst, "headers")
	dst = AppendArrayLen(dst, len(pairs)+len(extra))
	for _, s := range pairs {
		dst = AppendStr(dst, s)
	}
	for _, s := range extra {
		dst = AppendStr(dst, s)
	}
	dst = AppendStr(dst, "body_at")
	dst = AppendArrayLen(dst, 2)
	dst = AppendInt(dst, int64(r.Off))
	return AppendInt(dst, int64(r.Len))
}
