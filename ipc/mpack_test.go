package ipc

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

var benchRequest = Request{
	Method: "GET", Target: "/api/items?id=42&sort=desc", Proto: "HTTP/1.1",
	Headers: []string{"Host", "example.com", "User-Agent", "curl/8.5.0", "Accept", "*/*",
		"Accept-Encoding", "gzip, deflate, br", "Cookie", "session=0123456789abcdef0123456789abcdef"},
	Remote: "192.0.2.10:54321", Listener: 1,
}

func TestAppendRequest(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (MaxInlineBody+1000)/16)
	long := strings.Repeat("x", 70000)
	tests := map[string]Request{
		"zero":          {},
		"nil headers":   {Method: "GET", Target: "/", Proto: "HTTP/1.1", Remote: "1.2.3.4:5"},
		"empty headers": {Method: "GET", Target: "/", Headers: []string{}},
		"typical":       benchRequest,
		"body":          {Method: "POST", Target: "/p", Headers: []string{"Content-Length", "5"}, ContentLength: 5, Body: []byte("hello")},
		"empty body":    {Method: "POST", Body: []byte{}},
		"big body":      {Method: "PUT", ContentLength: int64(len(big)), Body: big},
		"body follows":  {Method: "POST", ContentLength: -1, BodyFollows: true, Headers: []string{"Transfer-Encoding", "chunked"}},
		"large ints":    {ContentLength: math.MaxInt64, Listener: math.MaxInt32 + 7},
		"min ints":      {ContentLength: math.MinInt64, Listener: -129},
		"mid ints":      {ContentLength: 1 << 40, Listener: 300},
		"neg ints":      {ContentLength: -33, Listener: -40000},
		"long strings":  {Method: strings.Repeat("M", 40), Target: long, Proto: strings.Repeat("p", 300), Headers: []string{long, ""}, Remote: long[:31]},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			std, err := msgpack.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			var want, got Request
			if err := msgpack.Unmarshal(std, &want); err != nil {
				t.Fatal(err)
			}
			payload := AppendRequest([]byte("prefix"), &r)
			if !bytes.HasPrefix(payload, []byte("prefix")) {
				t.Fatal("dst overwritten")
			}
			if err := msgpack.Unmarshal(payload[len("prefix"):], &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestAppendRequestAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendRequest(buf[:0], &benchRequest) }); n != 0 {
		t.Fatalf("AppendRequest allocates %v times", n)
	}
}

// encode builds a payload with msgpack's Encoder, for exact encodings.
func encode(t testing.TB, fn func(e *msgpack.Encoder) error) []byte {
	var buf bytes.Buffer
	if err := fn(msgpack.NewEncoder(&buf)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkResponseView decodes payload both ways; when both succeed they must
// agree. It reports whether both succeeded.
func checkResponseView(t *testing.T, v *ResponseView, payload []byte) bool {
	t.Helper()
	var want Response
	errStd := msgpack.Unmarshal(payload, &want)
	errView := v.Decode(payload)
	if errStd != nil || errView != nil {
		return false
	}
	if v.Status != want.Status {
		t.Fatalf("status %d, msgpack %d", v.Status, want.Status)
	}
	if len(v.Headers) != len(want.Headers) {
		t.Fatalf("headers %q, msgpack %q", v.Headers, want.Headers)
	}
	for i, h := range v.Headers {
		if string(h) != want.Headers[i] {
			t.Fatalf("headers %q, msgpack %q", v.Headers, want.Headers)
		}
	}
	if !bytes.Equal(v.Body, want.Body) {
		t.Fatalf("body %q, msgpack %q", v.Body, want.Body)
	}
	return true
}

func TestResponseViewDecode(t *testing.T) {
	marshal := func(v any) func(e *msgpack.Encoder) error {
		return func(e *msgpack.Encoder) error { return e.Encode(v) }
	}
	big := bytes.Repeat([]byte{'b'}, 70000)
	tests := map[string]func(e *msgpack.Encoder) error{
		"zero":      marshal(&Response{}),
		"typical":   marshal(&Response{Status: 200, Headers: []string{"Content-Type", "text/plain", "X-A", ""}, Body: []byte("hello")}),
		"big body":  marshal(&Response{Status: 404, Body: big}),
		"nil map":   marshal(nil),
		"empty map": marshal(map[string]any{}),
		"reordered, unknown keys": marshal(map[string]any{
			"body": "as str", "x-unknown": map[string]any{"a": []any{1, 2.5, "s", nil, true, []byte{1}}},
			"headers": []any{"A", []byte("bin value"), nil, "B"}, "status": uint64(201), "float": 1.5,
			"time": map[string]any{"nested": []any{[]any{}, map[string]any{}}},
		}),
		"nil values": marshal(map[string]any{"status": nil, "headers": nil, "body": nil}),
		"explicit encodings": func(e *msgpack.Encoder) error {
			e.EncodeMapLen(5)
			e.EncodeString("status")
			e.EncodeUint64(503)
			e.EncodeString("headers")
			e.EncodeArrayLen(4)
			e.EncodeBytes([]byte("Name"))
			e.EncodeString(strings.Repeat("v", 300))
			e.EncodeString(strings.Repeat("n", 40))
			e.EncodeString("")
			e.EncodeBytes([]byte("status")) // a key as bin
			e.EncodeInt16(-7)
			e.EncodeString("body")
			e.EncodeString(strings.Repeat("z", 70000))
			e.EncodeString("ext")
			return e.EncodeExtHeader(5, 3)
		},
		"ints": func(e *msgpack.Encoder) error {
			e.EncodeMapLen(6)
			for _, f := range []func(){func() { e.EncodeInt8(-100) }, func() { e.EncodeUint8(250) },
				func() { e.EncodeInt32(-70000) }, func() { e.EncodeUint32(1 << 31) }, func() { e.EncodeInt64(math.MinInt64) }} {
				e.EncodeString("status")
				f()
			}
			e.EncodeString("status")
			return e.EncodeUint16(299)
		},
		"duplicate headers, later nil": func(e *msgpack.Encoder) error {
			e.EncodeMapLen(3)
			e.EncodeString("headers")
			e.Encode([]string{"A", "1", "B", "2"})
			e.EncodeString("headers")
			e.Encode([]string{"C", "3"})
			e.EncodeString("headers")
			return e.EncodeNil()
		},
		"many headers": marshal(&Response{Status: 200, Headers: strings.Split(strings.Repeat("h,", 40000), ",")}),
	}
	var v ResponseView
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			payload := encode(t, fn)
			if name == "explicit encodings" {
				payload = append(payload, 1, 2, 3) // the ext's data
			}
			if !checkResponseView(t, &v, payload) {
				var r Response
				t.Fatalf("decode failed: msgpack %v, view %v", msgpack.Unmarshal(payload, &r), v.Decode(payload))
			}
		})
	}
}

func TestResponseViewErrors(t *testing.T) {
	good, _ := msgpack.Marshal(&Response{Status: 200, Headers: []string{"A", "b"}, Body: []byte("x")})
	var v ResponseView
	for i := range len(good) {
		if v.Decode(good[:i]) == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		}
	}
	for _, p := range [][]byte{{0x91, 0x01}, {0x81, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xa1, '1'},
		{0x81, 0xa7, 'h', 'e', 'a', 'd', 'e', 'r', 's', 0x91, 0x01}, {0x81, 0xc1}} {
		if v.Decode(p) == nil {
			t.Errorf("% x: no error", p)
		}
	}
}

func TestResponseViewAllocs(t *testing.T) {
	payload, _ := msgpack.Marshal(&Response{Status: 200, Headers: []string{"Content-Type", "text/plain", "X-A", "b"}, Body: []byte("hello")})
	var v ResponseView
	if n := testing.AllocsPerRun(100, func() { _ = v.Decode(payload) }); n != 0 {
		t.Fatalf("Decode allocates %v times", n)
	}
}

func FuzzResponseView(f *testing.F) {
	for _, r := range []Response{{}, {Status: 200, Headers: []string{"A", "1"}, Body: []byte("b")}, {Status: -1, Headers: []string{}}} {
		b, _ := msgpack.Marshal(&r)
		f.Add(b)
	}
	b, _ := msgpack.Marshal(map[string]any{"headers": []any{nil, []byte("x")}, "status": 1.5, "z": map[string]any{"k": []any{1}}})
	f.Add(b)
	f.Add([]byte{0xc0})
	f.Add([]byte{0x81, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var v ResponseView
		checkResponseView(t, &v, payload)
		v.Headers = append(v.Headers, []byte("stale")) // reuse must not leak state
		checkResponseView(t, &v, payload)
	})
}

func BenchmarkAppendRequest(b *testing.B) {
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Marshal(&benchRequest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendRequest(buf[:0], &benchRequest)
		}
	})
}

func BenchmarkResponseViewDecode(b *testing.B) {
	payload, _ := msgpack.Marshal(&Response{Status: 200, Headers: []string{"Content-Type", "application/json",
		"Cache-Control", "no-store", "X-Request-Id", "7f3c2a9e-1b2d-4c5e-8f9a-0b1c2d3e4f50"}, Body: []byte(`{"ok":true,"items":[1,2,3]}`)})
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Response
			if err := Unmarshal(payload, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("view", func(b *testing.B) {
		b.ReportAllocs()
		var v ResponseView
		for b.Loop() {
			if err := v.Decode(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
