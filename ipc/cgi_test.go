package ipc

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// cgiMap decodes a CGI-layout payload as any msgpack reader would.
func cgiMap(t testing.TB, p []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := msgpack.Unmarshal(p, &m); err != nil {
		t.Fatalf("the CGI layout is not a msgpack map: %v (payload %x)", err, p)
	}
	return m
}

func TestAppendRequestCGI(t *testing.T) {
	r := &Request{Method: "POST", Target: "/p/a?q=1&r", Proto: "HTTP/1.1", Remote: "[::1]:40000", Listener: 2,
		Headers: []string{"Host", "example.com:8080", "User-Agent", "curl", "Cookie", "a=1", "Accept", "*/*",
			"cookie", "b=2", "X_Foo", "y", "x-foo", "z", "Content-Type", "text/plain", "Content-Length", "5", "Content_Length", "9"},
		ContentLength: 5, Body: []byte("hello")}
	got := cgiMap(t, AppendRequestCGI(nil, r))
	want := map[string]any{
		"REQUEST_METHOD": "POST", "REQUEST_URI": "/p/a?q=1&r", "QUERY_STRING": "q=1&r", "SERVER_PROTOCOL": "HTTP/1.1",
		"REMOTE_ADDR": "::1", "REMOTE_PORT": int8(-1), "REQUEST_SCHEME": "http", "DOCUMENT_URI": "/p/a",
		"HTTP_HOST": "example.com:8080", "HTTP_USER_AGENT": "curl", "HTTP_COOKIE": "a=1; b=2", "HTTP_ACCEPT": "*/*",
		"HTTP_X_FOO": "z", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "5", "SERVER_NAME": "example.com",
		"listener": int8(2), "body": []byte("hello"),
	}
	// msgpack's integer types vary with the value: compare numbers as int64.
	for k, v := range got {
		if n, ok := toInt64(v); ok {
			got[k] = n
		}
	}
	want["REMOTE_PORT"], want["listener"] = int64(40000), int64(2)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CGI layout:\n got %v\nwant %v", got, want)
	}
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), true
	}
	return 0, false
}

// The few things PHP's SAPIs and the SDK did in PHP before, now done here:
// what each target, Host and remote address gives.
func TestRequestCGIKeysOfTargetsHostsAndRemotes(t *testing.T) {
	for _, c := range []struct {
		target, host, remote      string
		uri, query, docURI, sname string // docURI "-": left out (not origin-form)
		addr                      string
		port                      int64
	}{
		{"/", "127.0.0.1:8082", "127.0.0.1:5000", "/", "", "/", "127.0.0.1", "127.0.0.1", 5000},
		{"/a?", "h", "10.0.0.1:1", "/a?", "", "/a", "h", "10.0.0.1", 1},
		{"/a?b?c", "[::1]:80", "[fe80::1]:65535", "/a?b?c", "b?c", "/a", "[::1]", "fe80::1", 65535},
		{"http://x.example/p?q", "[::1]", "/run/drover.sock", "http://x.example/p?q", "q", "-", "[::1]", "/run/drover.sock", 0},
		{"*", "h:", "", "*", "", "-", "h:", "", 0},
		{"/", "h:8a", "1.2.3.4:", "/", "", "/", "h:8a", "1.2.3.4:", 0},
	} {
		m := cgiMap(t, AppendRequestCGI(nil, &Request{Method: "GET", Target: c.target, Proto: "HTTP/1.0",
			Headers: []string{"HOST", c.host}, Remote: c.remote}))
		port, _ := toInt64(m["REMOTE_PORT"])
		doc, hasDoc := m["DOCUMENT_URI"]
		if m["REQUEST_URI"] != c.uri || m["QUERY_STRING"] != c.query || m["SERVER_NAME"] != c.sname ||
			m["REMOTE_ADDR"] != c.addr || port != c.port || m["SERVER_PROTOCOL"] != "HTTP/1.0" ||
			(c.docURI == "-") == hasDoc || (hasDoc && doc != c.docURI) {
			t.Errorf("target %q host %q remote %q: got %v", c.target, c.host, c.remote, m)
		}
	}
	// No Host (HTTP/1.0): no SERVER_NAME; no protocol: HTTP/1.1.
	m := cgiMap(t, AppendRequestCGI(nil, &Request{Method: "GET", Target: "/"}))
	if _, ok := m["SERVER_NAME"]; ok || m["SERVER_PROTOCOL"] != "HTTP/1.1" || len(m) != 8 {
		t.Errorf("a request without headers: %v", m)
	}
}

// More headers than are compared pair by pair: repeated names are joined
// through the map instead, in the order received.
func TestAppendRequestCGIManyHeaders(t *testing.T) {
	var h []string
	for i := 0; i < 100; i++ {
		h = append(h, fmt.Sprintf("X-H%d", i%40), fmt.Sprint(i))
	}
	h = append(h, "X_H3", "forged") // left out, not joined to X-H3
	m := cgiMap(t, AppendRequestCGI(nil, &Request{Method: "GET", Target: "/", Headers: h}))
	if len(m) != 8+40 {
		t.Fatalf("%d keys, want %d", len(m), 8+40)
	}
	if m["HTTP_X_H3"] != "3, 43, 83" || m["HTTP_X_H39"] != "39, 79" {
		t.Errorf("joined values: X-H3 %q, X-H39 %q", m["HTTP_X_H3"], m["HTTP_X_H39"])
	}
}

func TestDecodeRequestCGIRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{Method: "GET", Target: "/x?y=1", Proto: "HTTP/1.1", Headers: []string{"Host", "h", "Accept-Encoding", "gzip"}, Remote: "1.2.3.4:5"},
		{Method: "POST", Target: "/up", Proto: "HTTP/1.1", Headers: []string{"Content-Type", "a/b", "Content-Length", "3"},
			ContentLength: 3, Body: []byte("abc"), Remote: "[::1]:9", Listener: 3},
		{Method: "PUT", Target: "/big", Proto: "HTTP/1.1", Headers: []string{"Transfer-Encoding", "chunked"},
			ContentLength: -1, BodyFollows: true, Remote: "@"},
		{Method: "PUT", Target: "/arena", Proto: "HTTP/1.1", Headers: []string{"Content-Length", "100000"},
			ContentLength: 100000, BodyAt: []uint64{4096, 100000}, Remote: "10.0.0.1:1"},
	} {
		var got Request
		if err := DecodeRequestCGI(AppendRequestCGI(nil, &r), &got); err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Target, err)
		}
		if got.Headers == nil {
			got.Headers = []string{}
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestAppendRequestCGIAllocs(t *testing.T) {
	r := &Request{Method: "GET", Target: "/hello?name=x", Proto: "HTTP/1.1", Remote: "127.0.0.1:40000",
		Headers: []string{"Host", "127.0.0.1:8080", "User-Agent", "wrk", "Accept", "*/*", "Cookie", "sid=1"}}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendRequestCGI(buf[:0], r) }); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}

// Whatever the request, the layout is a well-formed map of as many keys
// as it says, which the master's own decoder reads back.
func FuzzAppendRequestCGI(f *testing.F) {
	f.Add("GET", "/a?b", "Host\x00h:1\x00Cookie\x00a\x00cookie\x00b", "[::1]:2", []byte("x"), true)
	f.Add("", "", "", "", []byte(nil), false)
	f.Fuzz(func(t *testing.T, method, target, headers, remote string, body []byte, follows bool) {
		h := strings.Split(headers, "\x00")
		if len(h)%2 == 1 {
			h = h[:len(h)-1]
		}
		p := AppendRequestCGI(nil, &Request{Method: method, Target: target, Headers: h, Remote: remote, Body: body, BodyFollows: follows})
		d := NewMsgReader(p)
		n, err := d.MapLen()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2*n; i++ {
			if err := d.Skip(); err != nil {
				t.Fatalf("element %d of a %d-key map: %v", i, n, err)
			}
		}
		if d.Offset() != len(p) {
			t.Fatalf("%d bytes after a %d-key map", len(p)-d.Offset(), n)
		}
		var r Request
		if err := DecodeRequestCGI(p, &r); err != nil {
			t.Fatal(err)
		}
		if r.Method != method || r.Target != target || r.BodyFollows != follows || string(r.Body) != string(body) {
			t.Fatalf("round trip: %+v", r)
		}
	})
}

func BenchmarkAppendRequestLayouts(b *testing.B) {
	r := &Request{Method: "GET", Target: "/hello?name=x", Proto: "HTTP/1.1", Remote: "127.0.0.1:40000",
		Headers: []string{"Host", "127.0.0.1:8080", "User-Agent", "wrk", "Accept", "*/*", "Cookie", "sid=1"}}
	buf := make([]byte, 0, 4096)
	b.Run("default", func(b *testing.B) {
		for range b.N {
			buf = AppendRequest(buf[:0], r)
		}
	})
	b.Run("cgi", func(b *testing.B) {
		for range b.N {
			buf = AppendRequestCGI(buf[:0], r)
		}
	})
}

// DecodeRequestCGI reads only what the master wrote (a request handed
// back), but any bytes must give an error, never a panic or a hang.
func FuzzDecodeRequestCGI(f *testing.F) {
	f.Add(AppendRequestCGI(nil, &Request{Method: "GET", Target: "/", Headers: []string{"Host", "h"}, Remote: "1.2.3.4:5", Body: []byte("b"), BodyAt: []uint64{1, 2}}))
	f.Add([]byte{0x81, 0xab, 'R', 'E', 'M', 'O', 'T', 'E', '_', 'P', 'O', 'R', 'T', 0xa1, 'x'})
	f.Add([]byte{0xde, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		var r Request
		_ = DecodeRequestCGI(p, &r)
	})
}
