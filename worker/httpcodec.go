package worker

import (
	"encoding/binary"
	"errors"
	"math"
)

// The HTTP frames' msgpack payloads (ipc.Request, ipc.Response) are coded
// here by hand: the request path must not pay for reflection, and the
// strings of a request are cut from a single allocation. The decoder
// accepts what docs/protocol.md asks a reader to accept (any integer and
// string encoding, unknown keys, keys in any order) and yields what
// msgpack.Unmarshal into an ipc.Request yields; FuzzDecodeRequest holds the
// two together.

var errMsgpack = errors.New("malformed msgpack")

// wireRequest is a decoded ipc.Request. Its strings share one allocation;
// body aliases the payload it was decoded from.
type wireRequest struct {
	method, target, proto, remote string
	headers                       []string // name, value, …
	contentLength                 int64
	body                          []byte
	bodyFollows                   bool
	listener                      int
}

// span locates a string in the decoder's scratch buffer.
type span struct{ off, n int }

// requestDecoder decodes ipc.Request payloads; its buffers are reused.
type requestDecoder struct {
	scratch []byte
	spans   []span // headers
}

// decode fills w from payload. On error w is unusable.
func (dec *requestDecoder) decode(payload []byte, w *wireRequest) error {
	d := mpReader{b: payload}
	*w = wireRequest{headers: w.headers[:0]}
	dec.scratch, dec.spans = dec.scratch[:0], dec.spans[:0]
	var method, target, proto, remote span
	n, err := d.mapLen()
	if err != nil {
		return err
	}
	str := func() (span, error) {
		b, _, err := d.bytes()
		sp := span{len(dec.scratch), len(b)}
		dec.scratch = append(dec.scratch, b...)
		return sp, err
	}
	for range n {
		key, _, err := d.bytes()
		if err != nil {
			return err
		}
		switch string(key) {
		case "method":
			method, err = str()
		case "target":
			target, err = str()
		case "proto":
			proto, err = str()
		case "remote":
			remote, err = str()
		case "headers":
			var k int
			if k, err = d.arrayLen(); err != nil || k < 0 {
				break // nil leaves the headers as they were, as msgpack does
			}
			dec.spans = dec.spans[:0]
			for i := 0; i < k && err == nil; i++ {
				var sp span
				sp, err = str()
				dec.spans = append(dec.spans, sp)
			}
		case "content_length":
			w.contentLength, err = d.int()
		case "listener":
			var v int64
			v, err = d.int()
			w.listener = int(v)
		case "body":
			w.body, _, err = d.bytes()
		case "body_follows":
			w.bodyFollows, err = d.bool()
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
	all := string(dec.scratch)
	cut := func(sp span) string { return all[sp.off : sp.off+sp.n] }
	w.method, w.target, w.proto, w.remote = cut(method), cut(target), cut(proto), cut(remote)
	for _, sp := range dec.spans {
		w.headers = append(w.headers, cut(sp))
	}
	return nil
}

// mpReader reads msgpack values from b.
type mpReader struct {
	b   []byte
	off int
}

func (d *mpReader) next(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, errMsgpack
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *mpReader) code() (byte, error) {
	p, err := d.next(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// uintN reads a big-endian unsigned integer of size 1, 2, 4 or 8 bytes.
func (d *mpReader) uintN(size int) (uint64, error) {
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
func (d *mpReader) length(size int) (int, error) {
	n, err := d.uintN(size)
	if err != nil || n > math.MaxInt32 {
		return 0, errMsgpack
	}
	return int(n), nil
}

// mapLen reads a map header; nil is -1.
func (d *mpReader) mapLen() (int, error) {
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
	return 0, errMsgpack
}

// arrayLen reads an array header; nil is -1.
func (d *mpReader) arrayLen() (int, error) {
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
	return 0, errMsgpack
}

// bytes reads a str or bin (as msgpack does for both Go strings and
// []byte); nil yields nil and isNil.
func (d *mpReader) bytes() (b []byte, isNil bool, err error) {
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
		return nil, false, errMsgpack
	}
	if err != nil {
		return nil, false, err
	}
	b, err = d.next(n)
	return b, false, err
}

// int reads any integer encoding; nil is 0.
func (d *mpReader) int() (int64, error) {
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
		return 0, errMsgpack
	}
	return int64(v), err
}

// bool reads a boolean; nil is false.
func (d *mpReader) bool() (bool, error) {
	c, err := d.code()
	switch {
	case err != nil:
		return false, err
	case c == 0xc0 || c == 0xc2:
		return false, nil
	case c == 0xc3:
		return true, nil
	}
	return false, errMsgpack
}

// maxDepth bounds the nesting of skipped values.
const maxDepth = 32

// skip skips one value of any type.
func (d *mpReader) skip(depth int) error {
	if depth > maxDepth {
		return errMsgpack
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
		return errMsgpack
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

// appendResponse appends an ipc.Response payload: status, headers (name,
// value, … as pairs, then extra) and body, omitted when empty.
func appendResponse(dst []byte, status int, pairs []string, extra []string, body []byte) []byte {
	if len(body) > 0 {
		dst = append(dst, 0x83)
	} else {
		dst = append(dst, 0x82)
	}
	dst = appendStr(dst, "status")
	dst = appendInt(dst, status)
	dst = appendStr(dst, "headers")
	dst = appendArrayLen(dst, len(pairs)+len(extra))
	for _, s := range pairs {
		dst = appendStr(dst, s)
	}
	for _, s := range extra {
		dst = appendStr(dst, s)
	}
	if len(body) > 0 {
		dst = appendStr(dst, "body")
		dst = appendBin(dst, body)
	}
	return dst
}

func appendInt(dst []byte, v int) []byte {
	switch {
	case v >= 0 && v <= 0x7f:
		return append(dst, byte(v))
	case v >= 0 && v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

func appendArrayLen(dst []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(dst, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
}

func appendStr(dst []byte, s string) []byte {
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

func appendBin(dst []byte, b []byte) []byte {
	switch n := len(b); {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}
