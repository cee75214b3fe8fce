package ipc

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestResponseCodec(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("v", n)
		pairs := []string{"Name", s}
		for range 20 {
			pairs = append(pairs, "X", "y")
		}
		b := AppendResponse(nil, 200+n%100, pairs, []string{"Extra", "1"}, []byte(s))
		var got Response
		if err := Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := Response{Status: 200 + n%100, Headers: append(pairs, "Extra", "1")}
		if n > 0 {
			want.Body = []byte(s)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("n=%d: decoded differently", n)
		}
	}
}

func TestRequestCodec(t *testing.T) {
	for _, r := range []Request{
		{},
		{Method: "GET", Target: "/", Proto: "HTTP/1.1", Headers: []string{"Host", "x"}, Remote: "1.2.3.4:5", Listener: 300},
		{Method: "POST", Target: strings.Repeat("/a", 200), Headers: make([]string, 40), ContentLength: 1 << 40, Body: bytes.Repeat([]byte("b"), 70000), BodyFollows: true, Listener: -3},
		{ContentLength: -1, Headers: []string{}},
	} {
		b, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, b, true)
	}
}

// checkDecode holds the hand-written decoder to msgpack's: whatever it
// accepts, msgpack decodes the same way. (What it refuses is not handed to
// msgpack, which allocates whatever length a header claims.) With
// mustAccept, payload is msgpack's own encoding.
func checkDecode(t *testing.T, payload []byte, mustAccept bool) {
	var dec RequestDecoder
	var got Request
	if err := dec.Decode(payload, &got); err != nil {
		if mustAccept {
			t.Fatalf("decode refused msgpack's encoding: %v", err)
		}
		return
	}
	var want Request
	if err := Unmarshal(payload, &want); err != nil {
		t.Fatalf("decode accepted what msgpack refuses (%v): %q", err, payload)
	}
	if len(got.Headers) == 0 && len(want.Headers) == 0 {
		got.Headers, want.Headers = nil, nil
	}
	if len(got.Body) == 0 && len(want.Body) == 0 {
		got.Body, want.Body = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nmsgpack\n%+v", got, want)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []Request{
		{Method: "GET", Target: "/", Proto: "HTTP/1.1", Headers: []string{"Host", "x", "Accept", "*/*"}, Remote: "1.2.3.4:5"},
		{Method: "POST", Target: "/e", ContentLength: 3, Body: []byte("abc"), Listener: 2},
		{Method: "PUT", ContentLength: -1, BodyFollows: true},
	} {
		b, _ := Marshal(r)
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa3, 'f', 'o', 'o', 0x92, 0xc0, 0xd4, 1, 2}) // unknown key
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, payload []byte) { checkDecode(t, payload, false) })
}

// BenchmarkRequestDecode measures the Go SDK's half of a request: decoding
// its frame, against msgpack's reflection.
func BenchmarkRequestDecode(b *testing.B) {
	payload := AppendRequest(nil, &benchRequest)
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Request
			if err := Unmarshal(payload, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		var dec RequestDecoder
		var r Request
		for b.Loop() {
			if err := dec.Decode(payload, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendResponse measures the Go SDK's half of a response:
// encoding its frame, against msgpack's reflection.
func BenchmarkAppendResponse(b *testing.B) {
	r := Response{Status: 200, Headers: []string{"Content-Type", "application/json", "Cache-Control", "no-store"},
		Body: []byte(`{"ok":true,"items":[1,2,3]}`)}
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Marshal(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendResponse(buf[:0], r.Status, r.Headers, []string{"Content-Length", "27"}, r.Body)
		}
	})
}
