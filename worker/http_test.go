package worker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// startHTTP runs ServeHTTP's worker with h on an in-process socket pair.
func startHTTP(t testing.TB, h http.Handler, opts ...Option) *fakeMaster {
	t.Helper()
	return startWorker(t, Events{}, nil, append([]Option{withHandler(h)}, opts...)...)
}

// hframe is a frame read by the fake master, with its flags.
type hframe struct {
	typ     ipc.Type
	flags   uint8
	id      uint64
	payload []byte
}

func (m *fakeMaster) sendFlags(t ipc.Type, flags uint8, id uint64, payload []byte) {
	m.t.Helper()
	if err := m.w.WriteFrame(t, flags, id, payload); err != nil {
		m.t.Fatalf("master: write %s: %v", t, err)
	}
}

// request sends a TypeRequest.
func (m *fakeMaster) request(id uint64, r ipc.Request) {
	m.t.Helper()
	if r.Proto == "" {
		r.Proto = "HTTP/1.1"
	}
	if r.Remote == "" {
		r.Remote = fmt.Sprintf("10.0.0.1:%d", id)
	}
	b, err := ipc.Marshal(r)
	if err != nil {
		m.t.Fatal(err)
	}
	m.send(ipc.TypeRequest, id, b)
}

func (m *fakeMaster) get(id uint64, target string) {
	m.t.Helper()
	m.request(id, ipc.Request{Method: "GET", Target: target, Headers: []string{"Host", "example.com"}})
}

// readH returns the next frame other than a window credit. Like the real
// master with a fast client, it credits every response body frame but
// the last at once,
// unless holdCredit is set; the worker's credits add up in m.credited.
func (m *fakeMaster) readH() hframe {
	m.t.Helper()
	for {
		h, p, err := m.r.ReadFrame()
		if err != nil {
			m.t.Fatalf("master: read: %v", err)
		}
		if h.Type == ipc.TypeWindow {
			n, err := ipc.ParseWindow(p)
			if err != nil {
				m.t.Fatal(err)
			}
			if m.credited == nil {
				m.credited = map[uint64]int64{}
			}
			m.credited[h.ID] += int64(n)
			continue
		}
		f := hframe{typ: h.Type, flags: h.Flags, id: h.ID, payload: bytes.Clone(p)}
		body := len(p)
		if h.Type == ipc.TypeResponse {
			var r ipc.Response
			if err := ipc.Unmarshal(p, &r); err == nil {
				body = len(r.Body)
				if len(r.BodyAt) == 2 {
					body = int(r.BodyAt[1]) // in the answer arena (FlagRef)
				}
			}
		} else if ref, err := ipc.ParseRef(p); err == nil && h.Flags&ipc.FlagRef != 0 {
			body = int(ref.Len)
		}
		if !m.holdCredit && body > 0 && h.Flags&ipc.FlagEnd == 0 && (h.Type == ipc.TypeResponse || h.Type == ipc.TypeResponseBody) {
			m.sendFlags(ipc.TypeWindow, 0, h.ID, ipc.AppendWindow(nil, uint32(body)))
		}
		return f
	}
}

// response is a whole response as the master received it.
type response struct {
	ipc.Response
	body   []byte // inline and streamed
	frames []hframe
}

func (r *response) header(name string) []string {
	var v []string
	for i := 0; i+1 < len(r.Headers); i += 2 {
		if r.Headers[i] == name {
			v = append(v, r.Headers[i+1])
		}
	}
	return v
}

// add takes f into r and reports whether it ended the response.
func (r *response) add(t testing.TB, f hframe) bool {
	t.Helper()
	switch {
	case len(r.frames) == 0 && f.typ == ipc.TypeResponse:
		if err := ipc.Unmarshal(f.payload, &r.Response); err != nil {
			t.Fatalf("response frame: %v", err)
		}
		r.body = append(r.body, r.Response.Body...)
	case len(r.frames) > 0 && f.typ == ipc.TypeResponseBody:
		r.body = append(r.body, f.payload...)
	default:
		t.Fatalf("unexpected %s frame (flags %d) for conn %d after %d frames", f.typ, f.flags, f.id, len(r.frames))
	}
	if len(f.payload) > ipc.MaxInlineBody+4<<10 {
		t.Fatalf("%s frame of %d bytes", f.typ, len(f.payload))
	}
	r.frames = append(r.frames, f)
	return f.flags&ipc.FlagEnd != 0
}

// responses reads frames until n responses ended, keyed by connection.
func (m *fakeMaster) responses(n int) map[uint64]*response {
	m.t.Helper()
	got := map[uint64]*response{}
	for ended := 0; ended < n; {
		f := m.readH()
		r := got[f.id]
		if r == nil {
			r = new(response)
			got[f.id] = r
		}
		if r.add(m.t, f) {
			ended++
		}
	}
	return got
}

func (m *fakeMaster) response(id uint64) *response {
	m.t.Helper()
	r := m.responses(1)[id]
	if r == nil {
		m.t.Fatalf("no response for conn %d", id)
	}
	return r
}

func (m *fakeMaster) stop() {
	m.t.Helper()
	m.send(ipc.TypeStop, 0, nil)
	if err := m.expectEOF(); err != nil {
		m.t.Fatalf("Serve = %v after stop, want nil", err)
	}
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "Hello, World!")
})

func TestHTTPGet(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		gotc := make(chan *http.Request, 1)
		m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotc <- r
			hello(w, r)
		}), WithConcurrency(conc))
		m.request(7, ipc.Request{Method: "GET", Target: "/a/b?q=1", Proto: "HTTP/1.1", Remote: "192.0.2.7:51234",
			Headers: []string{"host", "example.com:8080", "accept", "*/*", "X-Two", "1", "x-two", "2"}})
		r := m.response(7)
		if len(r.frames) != 1 || r.frames[0].typ != ipc.TypeResponse || r.frames[0].flags != ipc.FlagEnd {
			t.Fatalf("frames %v, want one response frame with FlagEnd", r.frames)
		}
		if r.Status != 200 || string(r.body) != "Hello, World!" || fmt.Sprint(r.header("Content-Type")) != "[text/plain; charset=utf-8]" {
			t.Fatalf("response %d %q %q", r.Status, r.Headers, r.body)
		}
		got := <-gotc
		if got.Method != "GET" || got.URL.Path != "/a/b" || got.URL.RawQuery != "q=1" || got.RequestURI != "/a/b?q=1" ||
			got.Host != "example.com:8080" || got.RemoteAddr != "192.0.2.7:51234" || got.Proto != "HTTP/1.1" ||
			got.ProtoMajor != 1 || got.ProtoMinor != 1 || got.Body != http.NoBody || got.ContentLength != 0 {
			t.Fatalf("request %+v", got)
		}
		want := http.Header{"Accept": {"*/*"}, "X-Two": {"1", "2"}}
		if !reflect.DeepEqual(got.Header, want) {
			t.Fatalf("header %v, want %v", got.Header, want)
		}
		if got.Context().Err() == nil {
			t.Fatal("the request's context is not cancelled after the handler returned")
		}
		m.stop()
	})
}

// TestHTTPRequestLikeNetHTTP builds the same request with net/http's
// reader and with the worker, and compares what a handler sees.
func TestHTTPRequestLikeNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		req  ipc.Request
		body string
	}{
		{req: ipc.Request{Method: "GET", Target: "/", Headers: []string{"Host", "a.example"}}},
		{req: ipc.Request{Method: "GET", Target: "http://b.example:81/x%20y/%2F?a=1&b=%zz", Headers: []string{"Host", "a.example"}}},
		{req: ipc.Request{Method: "OPTIONS", Target: "*", Headers: []string{"Host", "a.example"}}},
		{req: ipc.Request{Method: "CONNECT", Target: "c.example:443", Headers: []string{"Host", "c.example:443"}}},
		{req: ipc.Request{Method: "GET", Target: "//double/slash?", Headers: []string{"HOST", "a.example", "user-agent", "x", "ACCEPT-encoding", "gzip", "accept-encoding", "br"}}},
		{req: ipc.Request{Method: "GET", Target: "/old", Proto: "HTTP/1.0"}},
		{req: ipc.Request{Method: "GET", Target: "/old", Proto: "HTTP/1.0", Headers: []string{"Connection", "Keep-Alive"}}},
		{req: ipc.Request{Method: "GET", Target: "/close", Headers: []string{"Host", "a", "Connection", "foo, close", "Pragma", "no-cache"}}},
		{req: ipc.Request{Method: "POST", Target: "/p", Headers: []string{"Host", "a", "Content-Length", "5"}, ContentLength: 5, Body: []byte("hello")}, body: "hello"},
		{req: ipc.Request{Method: "POST", Target: "/c", Headers: []string{"Host", "a", "Transfer-Encoding", "chunked"}, ContentLength: -1, Body: []byte("hello")}, body: "5\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(tc.req.Method+" "+tc.req.Target, func(t *testing.T) {
			if tc.req.Proto == "" {
				tc.req.Proto = "HTTP/1.1"
			}
			var raw strings.Builder
			fmt.Fprintf(&raw, "%s %s %s\r\n", tc.req.Method, tc.req.Target, tc.req.Proto)
			for i := 0; i < len(tc.req.Headers); i += 2 {
				fmt.Fprintf(&raw, "%s: %s\r\n", tc.req.Headers[i], tc.req.Headers[i+1])
			}
			raw.WriteString("\r\n" + tc.body)
			want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw.String())))
			if err != nil {
				t.Fatal(err)
			}
			delete(want.Header, "Host") // as net/http's server does
			wantBody, _ := io.ReadAll(want.Body)

			got := make(chan *http.Request, 1)
			gotBody := make(chan string, 1)
			m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- r
				gotBody <- string(b)
			}), WithConcurrency(2))
			m.request(1, tc.req)
			m.response(1)
			r := <-got
			if *r.URL != *want.URL {
				t.Errorf("URL %#v, want %#v", r.URL, want.URL)
			}
			if !reflect.DeepEqual(r.Header, want.Header) {
				t.Errorf("Header %v, want %v", r.Header, want.Header)
			}
			if r.Method != want.Method || r.RequestURI != want.RequestURI || r.Proto != want.Proto ||
				r.ProtoMajor != want.ProtoMajor || r.ProtoMinor != want.ProtoMinor || r.Host != want.Host ||
				r.ContentLength != want.ContentLength || !reflect.DeepEqual(r.TransferEncoding, want.TransferEncoding) ||
				r.Close != want.Close {
				t.Errorf("request\n%+v\nwant\n%+v", r, want)
			}
			if b := <-gotBody; b != string(wantBody) {
				t.Errorf("body %q, want %q", b, wantBody)
			}
			m.stop()
		})
	}
}

func TestHTTPBadTarget(t *testing.T) {
	m := startHTTP(t, hello, WithConcurrency(2))
	m.request(1, ipc.Request{Method: "GET", Target: "/a\x01b"})
	if r := m.response(1); r.Status != 400 {
		t.Fatalf("status %d, want 400", r.Status)
	}
	m.get(1, "/")
	if r := m.response(1); r.Status != 200 {
		t.Fatalf("status %d after a bad request, want 200", r.Status)
	}
	m.stop()
}

var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := io.Copy(w, r.Body); err != nil {
		w.WriteHeader(http.StatusBadRequest) // superfluous if the copy wrote
	}
})

func TestHTTPPostInline(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		clc := make(chan int64, 1)
		m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			clc <- r.ContentLength
			echoBody(w, r)
		}), WithConcurrency(conc))
		m.request(3, ipc.Request{Method: "POST", Target: "/echo", Headers: []string{"Host", "h", "Content-Length", "4"}, ContentLength: 4, Body: []byte("ping")})
		r := m.response(3)
		if cl := <-clc; len(r.frames) != 1 || r.Status != 200 || string(r.body) != "ping" || cl != 4 {
			t.Fatalf("%d frames, status %d, body %q, ContentLength %d", len(r.frames), r.Status, r.body, cl)
		}
		m.stop()
	})
}

// TestHTTPStreamedEcho posts 1 MiB in 64 KiB body frames to a handler that
// echoes it as it reads; halfway, a GET on another connection is answered
// while the POST is still in flight.
func TestHTTPStreamedEcho(t *testing.T) {
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i % 251)
	}
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			hello(w, r)
			return
		}
		echoBody(w, r)
	}), WithConcurrency(4))
	m.request(1, ipc.Request{Method: "POST", Target: "/echo", Headers: []string{"Host", "h"}, ContentLength: int64(len(big)), BodyFollows: true})
	const piece = ipc.MaxInlineBody
	rest := big
	for len(rest) > len(big)/2 {
		m.sendFlags(ipc.TypeRequestBody, 0, 1, rest[:piece])
		rest = rest[piece:]
	}
	m.get(2, "/")
	post := new(response)
	for {
		f := m.readH()
		if f.id == 1 {
			if post.add(t, f) {
				t.Fatal("the POST ended before its body was sent")
			}
			continue
		}
		r := new(response)
		if !r.add(t, f) || string(r.body) != "Hello, World!" {
			t.Fatalf("GET: %v %q", r.frames, r.body)
		}
		break
	}
	for len(rest) > 0 {
		var flags uint8
		if len(rest) == piece {
			flags = ipc.FlagEnd
		}
		m.sendFlags(ipc.TypeRequestBody, flags, 1, rest[:piece])
		rest = rest[piece:]
	}
	for f := m.readH(); !post.add(t, f); f = m.readH() {
	}
	if post.Status != 200 || !bytes.Equal(post.body, big) {
		t.Fatalf("status %d, %d bytes echoed, equal %v", post.Status, len(post.body), bytes.Equal(post.body, big))
	}
	if post.frames[0].flags&ipc.FlagEnd != 0 || len(post.frames) < len(big)/ipc.MaxInlineBody {
		t.Fatalf("%d frames, first flags %d: not streamed", len(post.frames), post.frames[0].flags)
	}
	m.stop()
}

// TestHTTPChunkedUpload is a body of unknown length, ended by an empty
// frame with FlagEnd.
func TestHTTPChunkedUpload(t *testing.T) {
	tec := make(chan []string, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tec <- r.TransferEncoding
		echoBody(w, r)
	}), WithConcurrency(2))
	m.request(1, ipc.Request{Method: "PUT", Target: "/", ContentLength: -1, BodyFollows: true, Headers: []string{"Transfer-Encoding", "chunked"}})
	m.sendFlags(ipc.TypeRequestBody, 0, 1, []byte("abc"))
	m.sendFlags(ipc.TypeRequestBody, 0, 1, []byte("def"))
	m.sendFlags(ipc.TypeRequestBody, ipc.FlagEnd, 1, nil)
	if r, te := m.response(1), <-tec; string(r.body) != "abcdef" || fmt.Sprint(te) != "[chunked]" {
		t.Fatalf("body %q, TransferEncoding %q", r.body, te)
	}
	m.stop()
}

// TestHTTPFlush streams server-sent events: every Flush reaches the master
// while the handler waits for the test to have seen it.
func TestHTTPFlush(t *testing.T) {
	const n = 3
	seen := make(chan struct{})
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				t.Errorf("event %d: the master did not see the flushed frame", i)
				return
			}
		}
	}), WithConcurrency(2))
	m.get(1, "/events")
	r := new(response)
	for i := range n {
		if f := m.readH(); r.add(t, f) {
			t.Fatalf("event %d: the response ended", i)
		}
		if want := fmt.Sprintf("data: %d\n\n", i); !strings.HasSuffix(string(r.body), want) {
			t.Fatalf("event %d: body so far %q", i, r.body)
		}
		seen <- struct{}{}
	}
	if f := m.readH(); !r.add(t, f) || len(f.payload) != 0 {
		t.Fatalf("last frame %v, want an empty end", f)
	}
	if fmt.Sprint(r.header("Content-Type")) != "[text/event-stream]" || r.frames[0].typ != ipc.TypeResponse {
		t.Fatalf("frames %v headers %q", r.frames, r.Headers)
	}
	m.stop()
}

func TestHTTPResponseController(t *testing.T) {
	errs := make(chan [3]error, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_, _ = io.WriteString(w, "<html>")
		errs <- [3]error{rc.Flush(), rc.EnableFullDuplex(), rc.SetWriteDeadline(time.Now())}
	}), WithConcurrency(2))
	m.get(1, "/")
	r := m.response(1)
	e := <-errs
	if e[0] != nil || e[1] != nil || !errors.Is(e[2], http.ErrNotSupported) {
		t.Fatalf("Flush, EnableFullDuplex, SetWriteDeadline: %v", e)
	}
	if len(r.frames) != 2 || fmt.Sprint(r.header("Content-Type")) != "[text/html; charset=utf-8]" {
		t.Fatalf("frames %v, headers %q", r.frames, r.Headers)
	}
	m.stop()
}

// TestHTTPCancel: the master's TypeCancel cancels the request's context and
// fails its unfinished body; what the handler writes afterwards still goes
// out (the client may only have half-closed), and the response ends.
func TestHTTPCancel(t *testing.T) {
	started := make(chan struct{})
	result := make(chan string, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		_, err := r.Body.Read(make([]byte, 10))
		<-r.Context().Done()
		_, werr := io.WriteString(w, "late")
		result <- fmt.Sprint(err, " | ", r.Context().Err(), " | ", werr)
	}), WithConcurrency(2))
	m.request(5, ipc.Request{Method: "POST", Target: "/", ContentLength: 100, BodyFollows: true})
	<-started
	m.send(ipc.TypeCancel, 5, nil)
	r := m.response(5)
	if got := <-result; got != "worker: the client went away | context canceled | <nil>" {
		t.Fatalf("handler saw %q", got)
	}
	if len(r.frames) != 1 || string(r.body) != "late" {
		t.Fatalf("after cancel: frames %v body %q", r.frames, r.body)
	}
	// Late frames for the connection are ignored; its next request works.
	m.send(ipc.TypeCancel, 5, nil)
	m.sendFlags(ipc.TypeRequestBody, ipc.FlagEnd, 5, []byte("late"))
	m.request(5, ipc.Request{Method: "GET", Target: "/"})
	m.request(6, ipc.Request{Method: "GET", Target: "/"})
	if got := m.responses(2); len(got) != 2 {
		t.Fatalf("responses %v", got)
	}
	m.stop()
}

func TestHTTPPanic(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/boom":
				w.Header().Set("X-Lost", "1")
				_, _ = io.WriteString(w, "partial")
				panic("handler bug")
			case "/abort":
				panic(http.ErrAbortHandler)
			case "/late":
				_, _ = io.WriteString(w, "sent")
				w.(http.Flusher).Flush()
				panic("after flush")
			}
			hello(w, r)
		}), WithConcurrency(conc))
		for _, path := range []string{"/boom", "/abort"} {
			m.get(1, path)
			r := m.response(1)
			if r.Status != 500 || string(r.body) != "Internal Server Error\n" || r.header("X-Lost") != nil || len(r.frames) != 1 {
				t.Fatalf("%s: %d %q %q", path, r.Status, r.Headers, r.body)
			}
		}
		m.get(1, "/late")
		r := m.response(1)
		if r.Status != 200 || string(r.body) != "sent" {
			t.Fatalf("/late: %d %q", r.Status, r.body)
		}
		// Part of it went out: the last frame says the response is cut.
		if last := r.frames[len(r.frames)-1]; last.flags != ipc.FlagEnd|ipc.FlagAbort {
			t.Fatalf("/late: last frame flags %#x, want FlagEnd|FlagAbort", last.flags)
		}
		m.get(1, "/")
		if r := m.response(1); string(r.body) != "Hello, World!" {
			t.Fatalf("after panics: %q", r.body)
		}
		m.stop()
		logs := m.logs.String()
		for _, want := range []string{"worker 3: panic serving GET /boom (conn 1): handler bug\n", "http_test.go", "panic serving GET /late"} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
		if strings.Contains(logs, "/abort") {
			t.Errorf("http.ErrAbortHandler was logged:\n%s", logs)
		}
	})
}

// TestHTTPConcurrentRequests blocks every handler until all the requests
// the worker declared it takes have started.
func TestHTTPConcurrentRequests(t *testing.T) {
	const n = 6
	var entered atomic.Int32
	all := make(chan struct{})
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if entered.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: the other requests did not start", r.URL)
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}), WithConcurrency(n))
	if m.hello.Concurrency != n {
		t.Fatalf("hello concurrency %d", m.hello.Concurrency)
	}
	for c := uint64(1); c <= n; c++ {
		m.get(c, fmt.Sprintf("/%d", c))
	}
	got := m.responses(n)
	for c := uint64(1); c <= n; c++ {
		if string(got[c].body) != fmt.Sprintf("/%d", c) {
			t.Fatalf("conn %d: %q", c, got[c].body)
		}
	}
	m.stop()
}

func TestHTTPDefaultConcurrency(t *testing.T) {
	m := startHTTP(t, hello)
	if m.hello.Concurrency != DefaultConcurrency() {
		t.Fatalf("hello concurrency %d, want %d", m.hello.Concurrency, DefaultConcurrency())
	}
	m.stop()
}

func TestHTTPServeMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "item %s", r.PathValue("id"))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "created %s", b)
	})
	m := startHTTP(t, mux, WithConcurrency(4))
	for i, tc := range []struct {
		method, target, body string
		status               int
		want                 string
	}{
		{"GET", "/items/42", "", 200, "item 42"},
		{"POST", "/items", "x", 201, "created x"},
		{"GET", "/nothing", "", 404, "404 page not found\n"},
		{"DELETE", "/items/1", "", 405, "Method Not Allowed\n"},
	} {
		m.request(uint64(i+1), ipc.Request{Method: tc.method, Target: tc.target, ContentLength: int64(len(tc.body)), Body: []byte(tc.body)})
		r := m.response(uint64(i + 1))
		if r.Status != tc.status || string(r.body) != tc.want {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.target, r.Status, r.body, tc.status, tc.want)
		}
	}
	m.stop()
}

func TestHTTPHead(t *testing.T) {
	m := startHTTP(t, hello, WithConcurrency(2))
	m.request(1, ipc.Request{Method: "HEAD", Target: "/"})
	r := m.response(1)
	if len(r.body) != 0 || fmt.Sprint(r.header("Content-Length")) != "[13]" || fmt.Sprint(r.header("Content-Type")) != "[text/plain; charset=utf-8]" {
		t.Fatalf("HEAD: %q %q", r.Headers, r.body)
	}
	m.stop()
}

func TestHTTPStatusRules(t *testing.T) {
	errs := make(chan error, 2)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "abc")
			errs <- err
		case "/cl":
			w.Header().Set("Content-Length", "2")
			_, err := io.WriteString(w, "abc")
			errs <- err
		case "/103":
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "x/y")
			w.WriteHeader(http.StatusTeapot)
			w.Header().Set("X-After", "ignored")
			w.WriteHeader(http.StatusOK) // superfluous
			_, _ = w.Write([]byte("tea"))
		case "/inject":
			w.Header().Set("X-Bad", "a\r\nSet-Cookie: x")
			w.Header()["Bad Name"] = []string{"v"}
			w.Header().Set("Trailer:X", "t")
		}
	}), WithConcurrency(2))
	m.get(1, "/204")
	if r := m.response(1); r.Status != 204 || r.header("Content-Length") != nil || !errors.Is(<-errs, http.ErrBodyNotAllowed) {
		t.Fatalf("204: %q", r.Headers)
	}
	m.get(1, "/cl")
	if r := m.response(1); len(r.body) != 0 || !errors.Is(<-errs, http.ErrContentLength) {
		t.Fatalf("Content-Length overrun: %q", r.body)
	}
	m.get(1, "/103")
	if r := m.response(1); r.Status != 418 || string(r.body) != "tea" || fmt.Sprint(r.header("Content-Type")) != "[x/y]" || r.header("X-After") != nil {
		t.Fatalf("103 then 418: %d %q %q", r.Status, r.Headers, r.body)
	}
	m.get(1, "/inject")
	if r := m.response(1); fmt.Sprint(r.Headers) != "[X-Bad a  Set-Cookie: x]" {
		t.Fatalf("headers %q", r.Headers)
	}
	m.stop()
	if !strings.Contains(m.logs.String(), "superfluous response.WriteHeader call (GET /103)") {
		t.Fatalf("log: %s", m.logs)
	}
}

// TestHTTPStopWaitsForInFlight stops the worker while a handler still
// reads its body: the body frames sent after the stop frame reach it, and
// the worker exits once it answered.
func TestHTTPStopWaitsForInFlight(t *testing.T) {
	started := make(chan struct{})
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		echoBody(w, r)
	}), WithConcurrency(4))
	m.request(1, ipc.Request{Method: "POST", Target: "/", ContentLength: 6, BodyFollows: true})
	m.sendFlags(ipc.TypeRequestBody, 0, 1, []byte("abc"))
	<-started
	m.send(ipc.TypeStop, 0, nil)
	m.sendFlags(ipc.TypeRequestBody, ipc.FlagEnd, 1, []byte("def"))
	if r := m.response(1); string(r.body) != "abcdef" {
		t.Fatalf("body %q", r.body)
	}
	if err := m.expectEOF(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// TestHTTPMasterGone: the end of the channel fails a body being waited for.
func TestHTTPMasterGone(t *testing.T) {
	readErr := make(chan error, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}), WithConcurrency(2))
	m.request(1, ipc.Request{Method: "POST", Target: "/", ContentLength: 6, BodyFollows: true})
	m.f.Close()
	if err := m.wait(); !errors.Is(err, io.EOF) {
		t.Fatalf("Serve = %v, want EOF", err)
	}
	if err := <-readErr; !errors.Is(err, errChannelEnded) {
		t.Fatalf("body read: %v", err)
	}
}

// TestHTTPBodyBufferFull: a handler that does not read while the client
// sends more than the bound gets ErrBodyBufferFull, and the reading
// goroutine never waited for it.
func TestHTTPBodyBufferFull(t *testing.T) {
	release := make(chan struct{})
	readErr := make(chan error, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			return
		}
		<-release
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}), WithConcurrency(2), WithRequestBodyBuffer(0))
	m.request(1, ipc.Request{Method: "POST", Target: "/", ContentLength: 3 * ipc.MaxInlineBody, BodyFollows: true})
	piece := make([]byte, ipc.MaxInlineBody)
	m.sendFlags(ipc.TypeRequestBody, 0, 1, piece)
	m.sendFlags(ipc.TypeRequestBody, 0, 1, piece)
	m.get(2, "/") // answered: the frames before it have been read
	m.response(2)
	close(release)
	m.sendFlags(ipc.TypeRequestBody, ipc.FlagEnd, 1, piece)
	m.response(1)
	if err := <-readErr; !errors.Is(err, ErrBodyBufferFull) {
		t.Fatalf("body read: %v", err)
	}
	m.stop()
}

// TestHTTPStreamWorkerRefuses: a worker started with Serve answers 501.
func TestHTTPStreamWorkerRefuses(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		m := startWorker(t, echo, nil, WithConcurrency(conc))
		m.get(1, "/")
		m.get(2, "/")
		if got := m.responses(2); got[1].Status != 501 || got[2].Status != 501 {
			t.Fatalf("responses %+v", got)
		}
		m.send(ipc.TypeData, 3, []byte("x"))
		m.expect(sendF(3, "x"), doneF(3))
		m.stop()
		if n := strings.Count(m.logs.String(), "has no HTTP handler"); n != 1 {
			t.Fatalf("logged %d times:\n%s", n, m.logs)
		}
	})
}

// TestHTTPStreamEventsInHTTPWorker: stream events reaching an HTTP worker
// are answered with Done, so the master's accounting stays right.
func TestHTTPStreamEventsInHTTPWorker(t *testing.T) {
	m := startHTTP(t, hello, WithConcurrency(1))
	m.connect(9)
	m.send(ipc.TypeData, 9, []byte("x"))
	m.expect(doneF(9), doneF(9))
	m.stop()
}

// BenchmarkHTTPHello measures one request through the SDK: the fake master
// writes a GET / frame as wrk's request would become, the worker runs a
// hello handler, the master reads the one response frame. With
// concurrency 1 one request is in flight at a time (latency); with N, N
// connections each keep one in flight (throughput, batching).
func BenchmarkHTTPHello(b *testing.B) {
	payload, err := ipc.Marshal(ipc.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1",
		Headers: []string{"Host", "127.0.0.1:8080"}, Remote: "127.0.0.1:40000"})
	if err != nil {
		b.Fatal(err)
	}
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			m := startHTTP(b, hello, WithConcurrency(conc))
			b.ReportAllocs()
			b.ResetTimer()
			sent := 0
			for c := uint64(1); c <= uint64(conc) && sent < b.N; c++ {
				m.send(ipc.TypeRequest, c, payload)
				sent++
			}
			for done := 0; done < b.N; {
				h, _, err := m.r.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				if h.Type != ipc.TypeResponse || h.Flags != ipc.FlagEnd {
					b.Fatalf("got %s flags %d", h.Type, h.Flags)
				}
				done++
				if sent < b.N {
					m.send(ipc.TypeRequest, h.ID, payload)
					sent++
				}
			}
			b.StopTimer()
			m.stop()
		})
	}
}

// TestExampleHello runs examples/hello as a worker process against the
// fake master: its three routes, with a body long enough to stream.
func TestExampleHello(t *testing.T) {
	if testing.Short() {
		t.Skip("builds examples/hello; skipped with -short")
	}
	bin := t.TempDir() + "/hello"
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/hello").CombinedOutput(); err != nil {
		t.Fatalf("build examples/hello: %v\n%s", err, out)
	}
	c := startChild(t, []string{bin}, true, "DROVER_ROLE=worker", "DROVER_WORKER_ID=0", "DROVER_FD=3", "DROVER_LAUNCH=exec")
	if h := c.readHello(t); h.Concurrency != DefaultConcurrency() || h.SDK != "go" {
		t.Fatalf("hello %+v", h)
	}
	m := c.m
	m.get(1, "/")
	if r := m.response(1); r.Status != 200 || string(r.body) != "Hello, World!" || fmt.Sprint(r.header("Content-Type")) != "[text/plain; charset=utf-8]" {
		t.Fatalf("GET /: %d %q %q", r.Status, r.Headers, r.body)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	m.request(2, ipc.Request{Method: "POST", Target: "/echo", ContentLength: int64(len(body)), BodyFollows: true})
	for rest := body; len(rest) > 0; rest = rest[min(len(rest), ipc.MaxInlineBody):] {
		var flags uint8
		if len(rest) <= ipc.MaxInlineBody {
			flags = ipc.FlagEnd
		}
		m.sendFlags(ipc.TypeRequestBody, flags, 2, rest[:min(len(rest), ipc.MaxInlineBody)])
	}
	if r := m.response(2); r.Status != 200 || !bytes.Equal(r.body, body) || len(r.frames) < 4 {
		t.Fatalf("POST /echo: %d, %d bytes in %d frames", r.Status, len(r.body), len(r.frames))
	}
	m.get(3, "/stream?n=3")
	r := m.response(3)
	if r.Status != 200 || string(r.body) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" || len(r.frames) != 4 || fmt.Sprint(r.header("Content-Type")) != "[text/event-stream]" {
		t.Fatalf("GET /stream: %d %q in %d frames", r.Status, r.body, len(r.frames))
	}
	m.get(4, "/nowhere")
	if r := m.response(4); r.Status != 404 {
		t.Fatalf("GET /nowhere: %d", r.Status)
	}
	m.send(ipc.TypeStop, 0, nil)
	if f, err := m.next(); err == nil {
		t.Fatalf("got %v after stop, want EOF", f)
	}
	c.wait(t, 0, "")
}
