package reactor_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/drover-dev/drover/reactor"
)

// splitLengthCodes are the pack codes LengthSpec.Type accepts.
const splitLengthCodes = "cCsSnvlLNV"

// splitFuzzChunks turns a fuzzed byte into a read pattern: two alternating
// read sizes from 1 to 16 (0 reads byte by byte).
func splitFuzzChunks(chunk uint8) []int {
	return []int{1 + int(chunk&15), 1 + int(chunk>>4)}
}

// splitLengthOracle splits data the slow, obvious way: it decodes every
// header byte by byte, without encoding/binary, and returns the packets, the
// unconsumed rest, the want for it and the error.
func splitLengthOracle(spec reactor.LengthSpec, data []byte) splitResult {
	var r splitResult
	size := reactor.LengthSize(spec.Type)
	header := spec.Offset + size
	hostLittle := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	bigEndian := spec.Type == 'n' || spec.Type == 'N' ||
		(!hostLittle && (spec.Type == 's' || spec.Type == 'S' || spec.Type == 'l' || spec.Type == 'L'))
	signed := spec.Type == 'c' || spec.Type == 's' || spec.Type == 'l'
	for {
		if len(data) < header {
			r.rest = data
			return r
		}
		var u uint64
		for i, b := range data[spec.Offset:header] {
			if bigEndian {
				u = u<<8 | uint64(b)
			} else {
				u |= uint64(b) << (8 * i)
			}
		}
		v := int64(u)
		if signed && u>>(8*size-1) == 1 {
			v -= 1 << (8 * size)
		}
		total := int64(spec.BodyOffset) + v
		switch {
		case v < 0 || total < int64(header):
			r.err = reactor.ErrBadLength
			return r
		case total > int64(spec.Max):
			r.err = reactor.ErrPacketTooLarge
			return r
		case int64(len(data)) < total:
			r.rest, r.want = data, int(total)
			return r
		}
		r.packets = append(r.packets, data[:total])
		data = data[total:]
	}
}

// splitEOFOracle splits data the slow, obvious way: a packet is the shortest
// prefix that ends with eof, and it must fit in max bytes.
func splitEOFOracle(eof []byte, max int, data []byte) splitResult {
	var r splitResult
next:
	for {
		for p := len(eof); p <= len(data); p++ {
			if p > max {
				r.err = reactor.ErrPacketTooLarge
				return r
			}
			if bytes.HasSuffix(data[:p], eof) {
				r.packets = append(r.packets, data[:p])
				data = data[p:]
				continue next
			}
		}
		if len(data) >= max {
			r.err = reactor.ErrPacketTooLarge
			return r
		}
		r.rest = data
		return r
	}
}

// splitFuzzCommon checks what every splitter run must satisfy: the packets
// are the consumed prefix of data in order, none exceeds max, the whole
// stream matches the oracle and the chunked stream matches the whole.
func splitFuzzCommon(t *testing.T, data []byte, max int, whole, chunked, oracle splitResult) {
	t.Helper()
	consumed := bytes.Join(whole.packets, nil)
	if !bytes.HasPrefix(data, consumed) {
		t.Fatalf("packets %q are not a prefix of the stream %q", whole.packets, data)
	}
	if whole.err == nil && !bytes.Equal(append(consumed, whole.rest...), data) {
		t.Fatalf("packets %q and rest %q do not make up the stream %q", whole.packets, whole.rest, data)
	}
	for i, p := range whole.packets {
		if len(p) > max || len(p) == 0 {
			t.Fatalf("packet %d has %d bytes, want 1 to %d", i, len(p), max)
		}
	}
	if err := splitSameResult(oracle, whole); err != nil {
		t.Fatalf("whole stream against the oracle: %v", err)
	}
	if err := splitSameResult(whole, chunked); err != nil {
		t.Fatalf("chunked stream: %v", err)
	}
}

// FuzzLengthSplit checks the length splitter for every type against its
// oracle, whole and chunked. offset's low nibble is the length offset and its
// high nibble picks package_max_length (16 to 496).
func FuzzLengthSplit(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x03abc\x00\x00\x00\x01d"), uint8(0), uint8(8), uint8(0x30), uint8(4))
	f.Add([]byte("\x03abc\xff"), uint8(0x21), uint8(0), uint8(0x10), uint8(1))
	f.Add([]byte("AB\x00\x05helloCD\x00"), uint8(3), uint8(4), uint8(0x42), uint8(4))
	f.Add([]byte("\x00\x00\x00\x07abc\x00\x00\x00\x03"), uint8(1), uint8(8), uint8(0x20), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk, typ, offset, bodyOffset uint8) {
		spec := reactor.LengthSpec{
			Type:       splitLengthCodes[int(typ)%len(splitLengthCodes)],
			Offset:     int(offset & 15),
			BodyOffset: int(bodyOffset),
			Max:        16 + 32*int(offset>>4),
		}
		sp := reactor.NewLengthSplitter(spec)
		whole := splitFeed(t, sp, data, nil)
		chunked := splitFeed(t, sp, data, splitFuzzChunks(chunk))
		splitFuzzCommon(t, data, spec.Max, whole, chunked, splitLengthOracle(spec, data))
		if whole.err == nil && whole.want != 0 && whole.want > spec.Max {
			t.Fatalf("want %d above package_max_length %d", whole.want, spec.Max)
		}
	})
}

// FuzzEOFSplit checks the EOF splitter against its oracle, whole and
// chunked, for eofs of 1 to 8 bytes (Swoole's limit for package_eof), with
// package_max_length from 8 to 64 picked by chunk.
func FuzzEOFSplit(f *testing.F) {
	f.Add([]byte("GET /\r\nHost: x\r\n\r\npartial\r"), uint8(0), []byte("\r\n"))
	f.Add([]byte("baaab\naaaa"), uint8(17), []byte("aa"))
	f.Add([]byte("abababa"), uint8(3), []byte("aba"))
	f.Add([]byte("\n\nline\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n"), uint8(40), []byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, eof []byte) {
		if len(eof) == 0 {
			eof = []byte("\n")
		}
		eof = eof[:min(len(eof), 8)]
		max := 8 + int(chunk)%57
		whole := splitFeed(t, reactor.NewEOFSplitter(eof, max), data, nil)
		chunked := splitFeed(t, reactor.NewEOFSplitter(eof, max), data, splitFuzzChunks(chunk))
		splitFuzzCommon(t, data, max, whole, chunked, splitEOFOracle(eof, max, data))
		for i, p := range whole.packets {
			if bytes.Index(p, eof) != len(p)-len(eof) {
				t.Fatalf("packet %d %q does not end at its first eof %q", i, p, eof)
			}
		}
		if whole.err == nil && bytes.Contains(whole.rest[:min(len(whole.rest), max)], eof) {
			t.Fatalf("rest %q holds an eof %q within max %d", whole.rest, eof, max)
		}
	})
}
