package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const httpConfig = `
worker_num: 2
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`

func httpURL(s *server, path string) string { return "http://" + tcpAddr(s.addrs[0]) + path }

func TestHTTPHelloAndKeepAlive(t *testing.T) {
	s := startServer(t, httpConfig)
	client := &http.Client{Timeout: 10 * time.Second}
	var reused []bool
	for i := 0; i < 2; i++ {
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, httpURL(s, "/"), nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "Hello, World!" || resp.Proto != "HTTP/1.1" {
			t.Fatalf("GET /: %s %d %q", resp.Proto, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q", ct)
		}
		if resp.Header.Get("Date") == "" || resp.ContentLength != int64(len(body)) {
			t.Errorf("Date %q, Content-Length %d", resp.Header.Get("Date"), resp.ContentLength)
		}
	}
	if len(reused) != 2 || !reused[1] {
		t.Errorf("connection reuse %v: the second request should reuse the first connection", reused)
	}
}

// rawHTTP writes raw bytes and reads everything until the server closes or
// the timeout.
func rawHTTP(t *testing.T, s *server, raw string, halfClose bool) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(raw))
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

func TestHTTPHostileRequests(t *testing.T) {
	s := startServer(t, httpConfig+"\nhttp_max_header_size: 4K\n")
	cases := []struct {
		name, raw string
		status    string
	}{
		{"content-length and chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"two content-lengths", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "400"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400"},
		{"bad chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "400"},
		{"huge header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", "431"},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"NUL in header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "400"},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := rawHTTP(t, s, tc.raw, false)
			if !strings.HasPrefix(out, "HTTP/1.1 "+tc.status+" ") {
				t.Fatalf("answer %q, want status %s", firstLine(out), tc.status)
			}
			if !strings.Contains(out, "Connection: close") {
				t.Errorf("no Connection: close on a refused request: %q", out)
			}
		})
	}
	// None of it reached a worker or hurt the server.
	if got := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(got, "Hello, World!") {
		t.Fatalf("after the hostile requests: %q", got)
	}
}

func firstLine(s string) string {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func TestHTTPPipelining10000(t *testing.T) {
	s := startServer(t, httpConfig)
	c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 10000
	go func() {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "GET /seq?i=%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		}
		c.Write(b.Bytes())
	}()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprint(i); string(body) != want {
			t.Fatalf("response %d answers request %q: pipelined answers out of order", i, body)
		}
	}
}

func TestHTTPBodiesAndStreaming(t *testing.T) {
	s := startServer(t, httpConfig)
	client := &http.Client{Timeout: 30 * time.Second}
	big := make([]byte, 1<<20)
	rand.Read(big)
	// Content-Length body, and the same body chunked (unknown length).
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(big)
		if chunked {
			body = io.MultiReader(bytes.NewReader(big[:1000]), bytes.NewReader(big[1000:]))
		}
		req, _ := http.NewRequest(http.MethodPost, httpURL(s, "/echo"), body)
		if chunked {
			req.ContentLength = -1
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, big) {
			t.Fatalf("chunked=%v: status %d, %d bytes back (want the 1 MiB sent)", chunked, resp.StatusCode, len(got))
		}
	}
	// A streamed response: each event arrives before the handler ends.
	resp, err := client.Get(httpURL(s, "/stream?n=3"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("streamed response not chunked: %v", resp.TransferEncoding)
	}
	r := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line, err := r.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		r.ReadString('\n') // blank line between events
	}
}

func TestHTTPExpectContinueHeadAndHalfClose(t *testing.T) {
	s := startServer(t, httpConfig)
	// 100-continue: the client sends the body only after the interim answer.
	c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"))
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("expected 100 Continue first, got %q", line)
	}
	r.ReadString('\n')
	c.Write([]byte("hello"))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "hello" {
		t.Fatalf("body after 100-continue: %q", b)
	}
	// HEAD: headers, no body.
	out := rawHTTP(t, s, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false)
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") || strings.Contains(out, "Hello") || !strings.Contains(out, "Content-Length: 13") {
		t.Fatalf("HEAD: %q", out)
	}
	// HTTP/1.0 without keep-alive: answered, then closed.
	out = rawHTTP(t, s, "GET / HTTP/1.0\r\n\r\n", false)
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") || !strings.HasSuffix(out, "Hello, World!") {
		t.Fatalf("HTTP/1.0: %q", out)
	}
	// Half-closed after the request: still answered.
	out = rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true)
	if !strings.HasSuffix(out, "Hello, World!") {
		t.Fatalf("half-closed client: %q", out)
	}
}

// Slow clients are closed with 408 after http_header_timeout without
// holding anyone else up: one that never finishes its headers (slowloris),
// and one that stalls in the middle of its body, whose handler is released.
func TestHTTPSlowClientsAreClosed(t *testing.T) {
	s := startServer(t, httpConfig+"\nhttp_header_timeout: 1\n")
	for _, tc := range []struct{ name, sent, logged string }{
		{"slowloris", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", "http_header_timeout"},
		{"stalled body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly this", "request body stalled"},
	} {
		logs := s.subscribe()
		c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(tc.sent))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(out), "HTTP/1.1 408 ") {
			t.Fatalf("%s: got %q, want 408 and a close", tc.name, firstLine(string(out)))
		}
		s.waitLog(logs, 5*time.Second, "the "+tc.name+" line", func(e logEntry) bool {
			return strings.Contains(e.msg(), tc.logged)
		})
		s.unsubscribe(logs)
		// Nobody else waited.
		for range 3 {
			if out := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(out, "Hello, World!") {
				t.Fatalf("after the %s: %q", tc.name, out)
			}
		}
	}
}

func TestHTTPWorkerErrors(t *testing.T) {
	s := startServer(t, `
worker_num: 1
dispatch_timeout: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http, E2E_CONCURRENCY: "1"}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	logs := s.subscribe()
	// The worker dies mid-request: 502, with a log line naming it.
	out := rawHTTP(t, s, "GET /exit HTTP/1.1\r\nHost: x\r\n\r\n", false)
	if !strings.HasPrefix(out, "HTTP/1.1 502 ") {
		t.Fatalf("worker died mid-request: %q", firstLine(out))
	}
	s.waitLog(logs, 5*time.Second, "the 502 line", func(e logEntry) bool {
		return strings.Contains(e.msg(), "502") && e.str("worker_id") == "0" && e.str("pid") != "" && e.str("target") == "/exit"
	})
	s.waitLog(logs, 5*time.Second, "the successor", func(e logEntry) bool { return e.msg() == "worker ready" })

	// The only slot is held: the next request waits dispatch_timeout, then 503.
	holder, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	holder.Write([]byte("GET /wait-cancel HTTP/1.1\r\nHost: x\r\n\r\n"))
	s.waitLog(logs, 5*time.Second, "the held request", func(e logEntry) bool { return e.str("output") == "waiting for cancel" })
	out = rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false)
	if !strings.HasPrefix(out, "HTTP/1.1 503 ") || !strings.Contains(out, "Retry-After: ") {
		t.Fatalf("no free worker: %q", out)
	}
	// The held client goes away: the handler's context is cancelled.
	holder.Close()
	s.waitLog(logs, 5*time.Second, "the cancellation", func(e logEntry) bool { return e.str("output") == "request context cancelled" })
	if out := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(out, "Hello, World!") {
		t.Fatalf("after the cancellation: %q", out)
	}
}

func TestHTTPUnderConcurrency(t *testing.T) {
	s := startServer(t, httpConfig)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	parallel(t, 64, func(i int) error {
		for j := 0; j < 50; j++ {
			body := fmt.Sprintf("client %d request %d", i, j)
			resp, err := client.Post(httpURL(s, "/echo"), "text/plain", strings.NewReader(body))
			if err != nil {
				return err
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != body {
				return fmt.Errorf("%q came back as %q", body, got)
			}
		}
		return nil
	})
}

// TestHelloExample serves examples/hello as `make run` does (its own
// binary; launch: auto starts it with exec, as it does not import
// worker/plugin) and checks the routes the README shows.
func TestHelloExample(t *testing.T) {
	s := startServer(t, `
worker_num: 2
worker:
  cmd: [{{bin}}/hello]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(httpURL(s, "/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello, World!" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET /: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	resp, err = client.Post(httpURL(s, "/echo"), "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ping" {
		t.Fatalf("POST /echo: %q", body)
	}
	resp, err = client.Get(httpURL(s, "/stream?n=2"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "data:") || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /stream: %q %q", body, resp.Header.Get("Content-Type"))
	}
	resp, err = client.Get(httpURL(s, "/missing"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET /missing: %d", resp.StatusCode)
	}
}

func TestHTTPRequestTimeoutAnswers504AndReplacesTheWorker(t *testing.T) {
	s := startServer(t, `
worker_num: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http}
  request_timeout: 1
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	hung := pidsOf(s.status(), "worker")[0]
	logs := s.subscribe()
	start := time.Now()
	out := rawHTTP(t, s, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n", false)
	if !strings.HasPrefix(out, "HTTP/1.1 504 ") {
		t.Fatalf("hung handler: %q", firstLine(out))
	}
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Errorf("504 after %s with request_timeout 1s", d)
	}
	e := s.waitLog(logs, 5*time.Second, "the 504 line", func(e logEntry) bool { return strings.Contains(e.msg(), "504") })
	if e.str("worker_id") != "0" || e.str("pid") != fmt.Sprint(hung) || e.str("target") != "/hang" {
		t.Errorf("504 line names worker %s pid %s target %s; want 0, %d, /hang", e.str("worker_id"), e.str("pid"), e.str("target"), hung)
	}
	s.waitLog(logs, 5*time.Second, "the successor", func(e logEntry) bool {
		return e.msg() == "worker ready" && e.str("pid") != fmt.Sprint(hung)
	})
	waitGone(t, []int{hung}, 5*time.Second)
	if out := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(out, "Hello, World!") {
		t.Fatalf("after the replacement: %q", out)
	}
}

func TestHTTPCutResponseIsNotPassedOffAsWhole(t *testing.T) {
	s := startServer(t, httpConfig)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(httpURL(s, "/cut"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("a response cut by a panic read as complete: %q", body)
	}
	if string(body) != "partial" {
		t.Errorf("the part sent before the panic: %q", body)
	}
}

func TestHTTPRequestWaitsForRestartedWorkers(t *testing.T) {
	marker := t.TempDir() + "/slow"
	s := startServer(t, `
worker_num: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http, E2E_SLOW_START_IF: `+marker+`}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	// From now on workers take 500ms to start.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := s.subscribe()
	syscall.Kill(pidsOf(s.status(), "manager")[0], syscall.SIGKILL)
	s.waitLog(logs, 5*time.Second, "the worker leaving", func(e logEntry) bool { return e.msg() == "worker left" })
	// No worker now: the request waits (dispatch_timeout 5s) and goes to the
	// successor as soon as it says hello.
	start := time.Now()
	out := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false)
	if !strings.HasSuffix(out, "Hello, World!") {
		t.Fatalf("request while the workers restarted: %q", firstLine(out))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("answered %s later: it waited for a finished response instead of the new worker's hello", d)
	}
}

// A response far bigger than the master's output buffer reaches a client
// that reads slowly, whole: the handler is held back by flow control
// instead of the master buffering (and, past buffer_output_size, closing).
// An upload bigger than the SDK's body buffer is echoed whole the same way.
func TestHTTPFlowControlBigBodies(t *testing.T) {
	s := startServer(t, httpConfig+"buffer_output_size: 512K\npackage_max_length: 64M\n")
	const size = 32 << 20
	conn, err := net.Dial("tcp", tcpAddr(s.addrs[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /big?n=%d HTTP/1.1\r\nHost: t\r\n\r\n", size)
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("status %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	// A slow client: it stops reading for a while after each 4 MiB (far
	// more than the master's buffer and the socket buffers hold), so an
	// unthrottled handler would overflow the master meanwhile.
	got, want := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := 0; off < size; {
		n, err := io.ReadFull(resp.Body, got[:min(len(got), size-off)])
		for i := 0; i < n; i++ {
			want[i] = byte((off + i) % (32 << 10) % 251)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("content differs in the 64 KiB from offset %d", off)
		}
		off += n
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v\n%s", off, size, err, s.logText())
		}
		if off%(4<<20) == 0 {
			time.Sleep(200 * time.Millisecond) // load shaping, not synchronisation
		}
	}
	resp.Body.Close()

	// Upload: 32 MiB to /echo, read back while it is sent.
	body := make([]byte, size)
	rand.Read(body)
	req, _ := http.NewRequest(http.MethodPost, httpURL(s, "/echo"), bytes.NewReader(body))
	r2, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	echoed, err := io.ReadAll(r2.Body)
	r2.Body.Close()
	if err != nil || r2.StatusCode != 200 || !bytes.Equal(echoed, body) {
		t.Fatalf("echo of 32 MiB: status %d, %d bytes back, err %v\n%s", r2.StatusCode, len(echoed), err, s.logText())
	}
	if s.hasLog(func(e logEntry) bool { return e.str("level") == "warning" || e.str("level") == "error" }) {
		t.Fatalf("warnings or errors logged:\n%s", s.logText())
	}
}
