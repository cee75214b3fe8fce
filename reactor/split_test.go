package reactor_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/drover-dev/drover/reactor"
)

// splitResult is what a connection made of a stream: the packets it cut, the
// bytes left unconsumed and the error that closed it, if any.
type splitResult struct {
	packets [][]byte
	rest    []byte
	want    int // want of the last Split call
	err     error
}

// splitFeed simulates a connection reading data through sp. The stream
// arrives in chunks whose sizes cycle through sizes (nil: all at once); after
// each chunk it calls Split until it returns n == 0, consuming each packet by
// moving the unconsumed bytes to the front of its buffer, as a connection
// with one reusable buffer would. It stops at the first error. It checks the
// invariants every Split call must keep and reports a violation through t.
func splitFeed(t testing.TB, sp reactor.Splitter, data []byte, sizes []int) splitResult {
	t.Helper()
	var r splitResult
	buf := make([]byte, 0, 64)
	for i, off := 0, 0; off < len(data); i++ {
		size := len(data) - off
		if len(sizes) > 0 {
			size = min(max(sizes[i%len(sizes)], 1), size)
		}
		buf = append(buf, data[off:off+size]...)
		off += size
		for {
			n, want, err := sp.Split(buf)
			r.want = want
			if n < 0 || n > len(buf) || want < 0 {
				t.Fatalf("Split(%d bytes) = n %d, want %d: out of range", len(buf), n, want)
			}
			if err != nil {
				if n != 0 || want != 0 {
					t.Fatalf("Split(%d bytes) = n %d, want %d with error %v", len(buf), n, want, err)
				}
				r.err = err
				r.rest = buf
				return r
			}
			if n == 0 {
				if want != 0 && want <= len(buf) {
					t.Fatalf("Split(%d bytes) = need more with want %d, which the buffer already holds", len(buf), want)
				}
				break
			}
			if want != 0 {
				t.Fatalf("Split(%d bytes) = packet of %d with want %d", len(buf), n, want)
			}
			r.packets = append(r.packets, bytes.Clone(buf[:n]))
			buf = append(buf[:0], buf[n:]...)
		}
	}
	r.rest = buf
	return r
}

// splitChunkings are the read patterns every table case is replayed with.
var splitChunkings = [][]int{{1}, {2}, {3}, {5}, {7}, {1, 4, 2, 9}, {64}}

// splitBigChunkings replace splitChunkings for streams of megabytes, where
// byte-sized reads are slow under -race and prove nothing more.
var splitBigChunkings = [][]int{{4093}, {65536, 1000}}

// splitSameResult reports how got, a chunked run, differs from whole, the
// same stream fed at once: the same packets, the same error sentinel, and
// when no error, the same unconsumed bytes and the same last want.
func splitSameResult(whole, got splitResult) error {
	if len(got.packets) != len(whole.packets) {
		return fmt.Errorf("%d packets %q, whole stream gives %d %q", len(got.packets), got.packets, len(whole.packets), whole.packets)
	}
	for i := range got.packets {
		if !bytes.Equal(got.packets[i], whole.packets[i]) {
			return fmt.Errorf("packet %d is %q, whole stream gives %q", i, got.packets[i], whole.packets[i])
		}
	}
	if splitKind(got.err) != splitKind(whole.err) {
		return fmt.Errorf("error %v, whole stream gives %v", got.err, whole.err)
	}
	if whole.err == nil && !bytes.Equal(got.rest, whole.rest) {
		return fmt.Errorf("rest %q, whole stream gives %q", got.rest, whole.rest)
	}
	if whole.err == nil && got.want != whole.want {
		return fmt.Errorf("last want %d, whole stream gives %d", got.want, whole.want)
	}
	return nil
}

// splitKind maps an error to the sentinel it wraps, for comparisons.
func splitKind(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, reactor.ErrPacketTooLarge):
		return reactor.ErrPacketTooLarge
	case errors.Is(err, reactor.ErrBadLength):
		return reactor.ErrBadLength
	}
	return err
}

// splitCase is a table case: a stream fed whole, the packets it must yield,
// the bytes left, the want of the last call and the error.
type splitCase struct {
	name    string
	in      string
	packets []string
	rest    string
	want    int
	err     error
}

// splitCheck runs c whole and in every chunking of chunkings, each with a
// fresh Splitter from newSplitter.
func splitCheck(t *testing.T, newSplitter func() reactor.Splitter, c splitCase, chunkings [][]int) {
	t.Helper()
	whole := splitFeed(t, newSplitter(), []byte(c.in), nil)
	var got []string
	for _, p := range whole.packets {
		got = append(got, string(p))
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.packets) {
		t.Errorf("packets %q, want %q", got, c.packets)
	}
	if !errors.Is(whole.err, c.err) || (c.err == nil) != (whole.err == nil) {
		t.Errorf("error %v, want %v", whole.err, c.err)
	}
	if c.err == nil {
		if string(whole.rest) != c.rest {
			t.Errorf("rest %q, want %q", whole.rest, c.rest)
		}
		if whole.want != c.want {
			t.Errorf("last want %d, want %d", whole.want, c.want)
		}
	}
	for _, sizes := range chunkings {
		r := splitFeed(t, newSplitter(), []byte(c.in), sizes)
		if err := splitSameResult(whole, r); err != nil {
			t.Errorf("chunks %v: %v", sizes, err)
		}
	}
}

// be16, be32, ... build length fields for the tables.
func be16(v uint16) string { return string(binary.BigEndian.AppendUint16(nil, v)) }
func le16(v uint16) string { return string(binary.LittleEndian.AppendUint16(nil, v)) }
func he16(v uint16) string { return string(binary.NativeEndian.AppendUint16(nil, v)) }
func be32(v uint32) string { return string(binary.BigEndian.AppendUint32(nil, v)) }
func le32(v uint32) string { return string(binary.LittleEndian.AppendUint32(nil, v)) }
func he32(v uint32) string { return string(binary.NativeEndian.AppendUint32(nil, v)) }

func TestSplitLengthSize(t *testing.T) {
	for code, want := range map[byte]int{
		'c': 1, 'C': 1, 's': 2, 'S': 2, 'n': 2, 'v': 2,
		'l': 4, 'L': 4, 'N': 4, 'V': 4, 'x': 0, 'q': 0, 0: 0,
	} {
		if got := reactor.LengthSize(code); got != want {
			t.Errorf("LengthSize(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestSplitLength(t *testing.T) {
	for _, tc := range []struct {
		spec reactor.LengthSpec
		splitCase
	}{
		// Swoole's classic header: 4-byte big-endian body length, body at 4.
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1024}, splitCase{
			name: "exact packet", in: be32(3) + "abc", packets: []string{be32(3) + "abc"}}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1024}, splitCase{
			name: "empty", in: ""}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1024}, splitCase{
			name: "partial header", in: "\x00\x00\x00", rest: "\x00\x00\x00"}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1024}, splitCase{
			name: "partial body", in: be32(3) + "a", rest: be32(3) + "a", want: 7}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1024}, splitCase{
			name: "header only, body unknown yet", in: be32(10), rest: be32(10), want: 14}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1024}, splitCase{
			name: "empty body", in: be32(0) + be32(0), packets: []string{be32(0), be32(0)}}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1024}, splitCase{
			name: "several packets and a partial one", in: be32(1) + "a" + be32(2) + "bc" + be32(0) + be32(5) + "de",
			packets: []string{be32(1) + "a", be32(2) + "bc", be32(0)}, rest: be32(5) + "de", want: 9}},

		// Every type, with the same 3-byte body.
		{reactor.LengthSpec{Type: 'c', BodyOffset: 1, Max: 64}, splitCase{
			name: "c int8", in: "\x03abc" + "\x03", packets: []string{"\x03abc"}, rest: "\x03", want: 4}},
		{reactor.LengthSpec{Type: 'C', BodyOffset: 1, Max: 1024}, splitCase{
			name: "C uint8 above 127", in: "\xc8" + strings.Repeat("x", 200), packets: []string{"\xc8" + strings.Repeat("x", 200)}}},
		{reactor.LengthSpec{Type: 's', BodyOffset: 2, Max: 64}, splitCase{
			name: "s int16 host", in: he16(3) + "abc", packets: []string{he16(3) + "abc"}}},
		{reactor.LengthSpec{Type: 'S', BodyOffset: 2, Max: 1 << 17}, splitCase{
			name: "S uint16 host above 32767", in: he16(40000), rest: he16(40000), want: 40002}},
		{reactor.LengthSpec{Type: 'n', BodyOffset: 2, Max: 64}, splitCase{
			name: "n uint16 big-endian", in: be16(3) + "abc", packets: []string{be16(3) + "abc"}}},
		{reactor.LengthSpec{Type: 'v', BodyOffset: 2, Max: 64}, splitCase{
			name: "v uint16 little-endian", in: le16(3) + "abc", packets: []string{le16(3) + "abc"}}},
		{reactor.LengthSpec{Type: 'n', BodyOffset: 2, Max: 1024}, splitCase{
			name: "n is not read little-endian", in: "\x01\x00", rest: "\x01\x00", want: 258}},
		{reactor.LengthSpec{Type: 'l', BodyOffset: 4, Max: 64}, splitCase{
			name: "l int32 host", in: he32(3) + "abc", packets: []string{he32(3) + "abc"}}},
		{reactor.LengthSpec{Type: 'L', BodyOffset: 4, Max: 64}, splitCase{
			name: "L uint32 host", in: he32(3) + "abc", packets: []string{he32(3) + "abc"}}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 64}, splitCase{
			name: "N uint32 big-endian", in: be32(3) + "abc", packets: []string{be32(3) + "abc"}}},
		{reactor.LengthSpec{Type: 'V', BodyOffset: 4, Max: 64}, splitCase{
			name: "V uint32 little-endian", in: le32(3) + "abc", packets: []string{le32(3) + "abc"}}},

		// Signed types reject negative values; unsigned read the same bits as large.
		{reactor.LengthSpec{Type: 'c', BodyOffset: 1, Max: 1024}, splitCase{
			name: "c negative", in: "\xff", err: reactor.ErrBadLength}},
		{reactor.LengthSpec{Type: 's', BodyOffset: 2, Max: 1 << 20}, splitCase{
			name: "s negative", in: he16(0x8000), err: reactor.ErrBadLength}},
		{reactor.LengthSpec{Type: 'l', BodyOffset: 4, Max: 1 << 20}, splitCase{
			name: "l negative", in: he32(0xffffffff) + "abc", err: reactor.ErrBadLength}},
		{reactor.LengthSpec{Type: 'L', BodyOffset: 4, Max: 1 << 20}, splitCase{
			name: "L same bits is too large", in: he32(0xffffffff) + "abc", err: reactor.ErrPacketTooLarge}},
		{reactor.LengthSpec{Type: 'c', BodyOffset: 1, Max: 1024}, splitCase{
			name: "negative after a good packet", in: "\x01a\x80zzz", packets: []string{"\x01a"}, err: reactor.ErrBadLength}},

		// A prefix before the length field, and header bytes after it.
		{reactor.LengthSpec{Type: 'n', Offset: 2, BodyOffset: 4, Max: 64}, splitCase{
			name: "offset with prefix", in: "AB" + be16(5) + "hello" + "CD" + be16(1),
			packets: []string{"AB" + be16(5) + "hello"}, rest: "CD" + be16(1), want: 5}},
		{reactor.LengthSpec{Type: 'n', Offset: 2, BodyOffset: 4, Max: 64}, splitCase{
			name: "prefix only", in: "AB\x00", rest: "AB\x00"}},
		{reactor.LengthSpec{Type: 'N', Offset: 4, BodyOffset: 12, Max: 64}, splitCase{
			name: "length in the middle of a 12-byte header", in: "TYPE" + be32(2) + "SEQ1" + "hi",
			packets: []string{"TYPE" + be32(2) + "SEQ1" + "hi"}}},

		// BodyOffset 0: the field counts the whole packet, header included.
		{reactor.LengthSpec{Type: 'N', BodyOffset: 0, Max: 64}, splitCase{
			name: "length includes header", in: be32(7) + "abc" + be32(4),
			packets: []string{be32(7) + "abc", be32(4)}}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 0, Max: 64}, splitCase{
			name: "length includes header, smaller than header", in: be32(3) + "abc", err: reactor.ErrBadLength}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 0, Max: 64}, splitCase{
			name: "length includes header, zero", in: be32(0), err: reactor.ErrBadLength}},
		{reactor.LengthSpec{Type: 'n', Offset: 2, BodyOffset: 0, Max: 64}, splitCase{
			name: "length includes prefix and field, one short", in: "AB" + be16(3), err: reactor.ErrBadLength}},
		{reactor.LengthSpec{Type: 'n', Offset: 2, BodyOffset: 0, Max: 64}, splitCase{
			name: "length includes prefix and field, header only", in: "AB" + be16(4), packets: []string{"AB" + be16(4)}}},
		{reactor.LengthSpec{Type: 'n', Offset: 2, BodyOffset: 1, Max: 64}, splitCase{
			name: "body offset inside the header", in: "AB" + be16(3) + "x", packets: []string{"AB" + be16(3)}, rest: "x"}},

		// package_max_length bounds the whole packet and is checked on the header.
		{reactor.LengthSpec{Type: 'n', BodyOffset: 2, Max: 10}, splitCase{
			name: "max exactly reached", in: be16(8) + "12345678", packets: []string{be16(8) + "12345678"}}},
		{reactor.LengthSpec{Type: 'n', BodyOffset: 2, Max: 10}, splitCase{
			name: "max exceeded by one, header only", in: be16(9), err: reactor.ErrPacketTooLarge}},
		{reactor.LengthSpec{Type: 'n', Offset: 3, BodyOffset: 0, Max: 10}, splitCase{
			name: "max counts the prefix", in: "abc" + be16(11), err: reactor.ErrPacketTooLarge}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4}, splitCase{
			name: "default max is 2 MiB", in: be32(2<<20 - 4), rest: be32(2<<20 - 4), want: 2 << 20}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 4}, splitCase{
			name: "default max exceeded", in: be32(2<<20 - 3), err: reactor.ErrPacketTooLarge}},
		{reactor.LengthSpec{Type: 'N', BodyOffset: 1 << 40, Max: 1 << 20}, splitCase{
			name: "huge body offset", in: be32(1), err: reactor.ErrPacketTooLarge}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := reactor.NewLengthSplitter(tc.spec)
			chunkings := splitChunkings
			if len(tc.in) > 1<<16 {
				chunkings = splitBigChunkings
			}
			splitCheck(t, func() reactor.Splitter { return sp }, tc.splitCase, chunkings)
		})
	}
}

func TestSplitLengthErrorText(t *testing.T) {
	sp := reactor.NewLengthSplitter(reactor.LengthSpec{Type: 'N', BodyOffset: 0})
	_, _, err := sp.Split([]byte(be32(3000000)))
	if !errors.Is(err, reactor.ErrPacketTooLarge) {
		t.Fatalf("err = %v, want ErrPacketTooLarge", err)
	}
	if got, want := err.Error(), "packet of 3000000 bytes exceeds package_max_length 2097152"; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
	sp = reactor.NewLengthSplitter(reactor.LengthSpec{Type: 'l', BodyOffset: 4})
	_, _, err = sp.Split([]byte(he32(0xfffffffe)))
	if !errors.Is(err, reactor.ErrBadLength) || !strings.Contains(err.Error(), "-2") {
		t.Errorf("err = %v, want ErrBadLength naming -2", err)
	}
}

func TestSplitLengthRejectsBadSpec(t *testing.T) {
	for _, spec := range []reactor.LengthSpec{
		{Type: 'x', BodyOffset: 4},
		{Type: 0},
		{Type: 'N', Offset: -1},
		{Type: 'N', BodyOffset: -1},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewLengthSplitter(%+v) did not panic", spec)
				}
			}()
			reactor.NewLengthSplitter(spec)
		}()
	}
}

func TestSplitEOF(t *testing.T) {
	for _, tc := range []struct {
		eof string
		max int
		splitCase
	}{
		{"\n", 64, splitCase{name: "one line", in: "hello\n", packets: []string{"hello\n"}}},
		{"\n", 64, splitCase{name: "empty", in: ""}},
		{"\n", 64, splitCase{name: "no eof yet", in: "hello", rest: "hello"}},
		{"\n", 64, splitCase{name: "several lines and a partial one", in: "a\nbb\nccc\ndd",
			packets: []string{"a\n", "bb\n", "ccc\n"}, rest: "dd"}},
		{"\n", 64, splitCase{name: "eof at buffer start is an empty body", in: "\n\nx\n",
			packets: []string{"\n", "\n", "x\n"}}},
		{"\r\n", 64, splitCase{name: "two-byte eof", in: "GET\r\nHost\r\n\r\n",
			packets: []string{"GET\r\n", "Host\r\n", "\r\n"}}},
		{"\r\n", 64, splitCase{name: "lone halves are body", in: "a\rb\nc\r\n\r",
			packets: []string{"a\rb\nc\r\n"}, rest: "\r"}},
		{"\r\n\r\n", 64, splitCase{name: "four-byte eof", in: "a\r\nb\r\n\r\nc\r\n\r",
			packets: []string{"a\r\nb\r\n\r\n"}, rest: "c\r\n\r"}},
		{"\x00\xff", 64, splitCase{name: "binary eof", in: "\x00\x00\xff\xff\x00\xff",
			packets: []string{"\x00\x00\xff", "\xff\x00\xff"}}},

		// Overlapping eof: the leftmost match from the packet start wins.
		{"aa", 64, splitCase{name: "aa in aaa", in: "aaa", packets: []string{"aa"}, rest: "a"}},
		{"aa", 64, splitCase{name: "aa in aaaa", in: "aaaa", packets: []string{"aa", "aa"}}},
		{"aa", 64, splitCase{name: "aa in baaab", in: "baaab", packets: []string{"baa"}, rest: "ab"}},
		{"aba", 64, splitCase{name: "aba in abababa", in: "abababa", packets: []string{"aba", "baba"}}},
		{"aab", 64, splitCase{name: "aab after aaa", in: "aaab", packets: []string{"aaab"}}},

		// package_max_length bounds the packet, eof included.
		{"\n", 5, splitCase{name: "max exactly reached", in: "abcd\n", packets: []string{"abcd\n"}}},
		{"\n", 5, splitCase{name: "max exceeded by one", in: "abcde\n", err: reactor.ErrPacketTooLarge}},
		{"\n", 5, splitCase{name: "max bytes without eof", in: "abcde", err: reactor.ErrPacketTooLarge}},
		{"\n", 5, splitCase{name: "one short of max without eof", in: "abcd", rest: "abcd"}},
		{"\r\n", 5, splitCase{name: "eof straddles max", in: "abcd\r\n", err: reactor.ErrPacketTooLarge}},
		{"\n", 5, splitCase{name: "too large after good packets", in: "ab\n\nabcdefgh\n",
			packets: []string{"ab\n", "\n"}, err: reactor.ErrPacketTooLarge}},
		{"\n", 0, splitCase{name: "default max", in: strings.Repeat("x", 2<<20-1) + "\n",
			packets: []string{strings.Repeat("x", 2<<20-1) + "\n"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunkings := splitChunkings
			if len(tc.in) > 1<<16 {
				chunkings = splitBigChunkings
			}
			splitCheck(t, func() reactor.Splitter { return reactor.NewEOFSplitter([]byte(tc.eof), tc.max) }, tc.splitCase, chunkings)
		})
	}
}

// TestSplitEOFAcrossReads walks the calling convention by hand: an eof split
// across reads, and the scan position forgotten once a packet is returned.
func TestSplitEOFAcrossReads(t *testing.T) {
	sp := reactor.NewEOFSplitter([]byte("\r\n"), 64)
	for i, step := range []struct {
		buf  string
		want int
	}{
		{"ab", 0},
		{"ab\r", 0},
		{"ab\r\ncd\r", 4}, // the packet is ab\r\n; the caller drops it
		{"cd\r", 0},
		{"cd\r\n", 4},
		{"\r", 0},
		{"\r\r", 0},
		{"\r\r\n", 3},
		{"", 0},
	} {
		n, want, err := sp.Split([]byte(step.buf))
		if n != step.want || want != 0 || err != nil {
			t.Errorf("step %d: Split(%q) = %d, %d, %v; want %d, 0, nil", i, step.buf, n, want, err, step.want)
		}
	}
}

func TestSplitEOFCopiesEOF(t *testing.T) {
	eof := []byte("\n")
	sp := reactor.NewEOFSplitter(eof, 64)
	eof[0] = 'x'
	if n, _, _ := sp.Split([]byte("ax\n")); n != 3 {
		t.Errorf("Split after the caller changed its eof slice = %d, want 3", n)
	}
}

func TestSplitEOFRejectsEmptyEOF(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewEOFSplitter(empty) did not panic")
		}
	}()
	reactor.NewEOFSplitter(nil, 64)
}

func TestSplitRaw(t *testing.T) {
	for _, tc := range []struct {
		max int
		splitCase
	}{
		{10, splitCase{name: "empty", in: ""}},
		{10, splitCase{name: "short read", in: "abc", packets: []string{"abc"}}},
		{10, splitCase{name: "exactly max", in: "0123456789", packets: []string{"0123456789"}}},
		{10, splitCase{name: "cut at max", in: strings.Repeat("x", 25),
			packets: []string{strings.Repeat("x", 10), strings.Repeat("x", 10), "xxxxx"}}},
		{0, splitCase{name: "default max", in: strings.Repeat("x", 2<<20+1),
			packets: []string{strings.Repeat("x", 2<<20), "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := reactor.NewRawSplitter(tc.max)
			// Raw packets are reads, so only the whole stream has a fixed answer.
			r := splitFeed(t, sp, []byte(tc.in), nil)
			var got []string
			for _, p := range r.packets {
				got = append(got, string(p))
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.packets) || r.err != nil || len(r.rest) != 0 {
				t.Errorf("got %d packets, rest %q, err %v; want %d packets", len(got), r.rest, r.err, len(tc.packets))
			}
			// Chunked, the packets differ but concatenate to the stream.
			limit := tc.max
			if limit <= 0 {
				limit = 2 << 20
			}
			chunkings := splitChunkings
			if len(tc.in) > 1<<16 {
				chunkings = splitBigChunkings
			}
			for _, sizes := range chunkings {
				r := splitFeed(t, sp, []byte(tc.in), sizes)
				for _, p := range r.packets {
					if len(p) > limit {
						t.Errorf("chunks %v: packet of %d bytes over max %d", sizes, len(p), limit)
					}
				}
				if !bytes.Equal(bytes.Join(r.packets, nil), []byte(tc.in)) || r.err != nil {
					t.Errorf("chunks %v: packets do not add up to the stream (err %v)", sizes, r.err)
				}
			}
		})
	}
}

// TestSplitNoAlloc holds the hot-path promise: Split allocates nothing when
// it returns a packet or asks for more.
func TestSplitNoAlloc(t *testing.T) {
	length := []byte(be32(3) + "abc" + be32(3) + "a")
	lines := []byte("abc\r\ndef")
	for name, tc := range map[string]struct {
		sp  reactor.Splitter
		buf []byte
	}{
		"length packet": {reactor.NewLengthSplitter(reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 64}), length},
		"length more":   {reactor.NewLengthSplitter(reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 64}), length[7:]},
		"eof packet":    {reactor.NewEOFSplitter([]byte("\r\n"), 64), lines},
		"eof more":      {reactor.NewEOFSplitter([]byte("\r\n"), 64), lines[5:]},
		"raw":           {reactor.NewRawSplitter(64), lines},
	} {
		if a := testing.AllocsPerRun(100, func() { tc.sp.Split(tc.buf) }); a != 0 {
			t.Errorf("%s: %v allocations per Split, want 0", name, a)
		}
	}
}
