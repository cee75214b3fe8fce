package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readUntilClose writes raw on a new connection and reads until the server
// closes it; closed is false when the connection was still open after
// wait.
func readUntilClose(t *testing.T, s *server, raw string, wait time.Duration) (out string, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	var ne net.Error
	return string(b), !(errors.As(err, &ne) && ne.Timeout())
}

// The master owns response framing: a handler's Content-Length is enforced
// (the bytes beyond it are not written and the connection closes after the
// declared ones; fewer bytes than declared close it too, so the client
// sees the answer incomplete), and a body after 204 or 304 is dropped.
// Pipelined requests on one keep-alive connection therefore never get a
// response the handler did not frame. A 1xx status is not passed off as a
// final answer.
func TestHTTPHandlerCannotInjectAResponse(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	logs := s.subscribe()
	const next = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

	// Content-Length lower than the body: the rest carries a response.
	out, closed := readUntilClose(t, s, "GET /lie HTTP/1.1\r\nHost: x\r\n\r\n"+next, 5*time.Second)
	if n := strings.Count(out, "HTTP/1.1 "); n != 1 || !closed || !strings.HasSuffix(out, "\r\n\r\nhello") {
		t.Fatalf("Content-Length 5 and a longer body, pipelined with another request: %d responses, closed after them %v; want 1 ending in the 5 declared bytes and a close:\n%q", n, closed, out)
	}
	e := s.waitLog(logs, 5*time.Second, "the longer body's line", func(e logEntry) bool {
		return strings.Contains(e.msg(), "more than its Content-Length")
	})
	if e.str("target") != "/lie" || e["worker_id"] == nil || e["pid"] == nil || e["conn"] == nil {
		t.Fatalf("the line does not name the worker, conn and target: %v", e)
	}

	// Content-Length higher than the body: closed after what came.
	out, closed = readUntilClose(t, s, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n"+next, 5*time.Second)
	if n := strings.Count(out, "HTTP/1.1 "); n != 1 || !closed || !strings.HasSuffix(out, "only ten!!") {
		t.Fatalf("Content-Length 100 and a 10-byte body, pipelined: %d responses, closed %v; want 1 and a close:\n%q", n, closed, out)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a short body read as whole (err %v)", err)
	}
	s.waitLog(logs, 5*time.Second, "the short body's line", func(e logEntry) bool {
		return strings.Contains(e.msg(), "less than its Content-Length") && e.str("target") == "/short" && e["worker_id"] != nil
	})

	// A body after 204 and 304 is dropped; the connection stays framed.
	for _, status := range []string{"204", "304"} {
		out, _ = readUntilClose(t, s, "GET /nocontent?status="+status+" HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
		br := bufio.NewReader(strings.NewReader(out))
		r1, err1 := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err1 != nil || r1.Status[:3] != status {
			t.Fatalf("%s with a body: first response %v %v:\n%q", status, r1, err1, out)
		}
		r2, err2 := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err2 != nil || r2.StatusCode != 200 {
			t.Fatalf("%s with a body: the second response is not the pipelined request's (%v):\n%q", status, err2, out)
		}
		b, _ := io.ReadAll(r2.Body)
		if rest, _ := io.ReadAll(br); string(b) != "Hello, World!" || len(rest) > 0 || strings.Contains(out, "injected") {
			t.Fatalf("%s with a body: second body %q, then %q", status, b, rest)
		}
	}
	s.waitLog(logs, 5*time.Second, "the dropped body's line", func(e logEntry) bool {
		return strings.Contains(e.msg(), "body dropped") && e.str("target") == "/nocontent?status=204"
	})

	// A 1xx status as the final answer is the handler's error, not a 200.
	out, _ = readUntilClose(t, s, "GET /informational?status=103 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
	if !strings.HasPrefix(out, "HTTP/1.1 502 ") || strings.Contains(out, "not final") {
		t.Fatalf("a final 103 from the handler: %q", firstLine(out))
	}
}

// nonReader asks addr for target on a connection with a small receive
// buffer (so that the answer waits at the server, not in this kernel) and
// never reads it; the connection is closed at the test's end.
func nonReader(t *testing.T, addr, target string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	return c
}

// slowAttackConfig is 2 PHP workers with short body and send timeouts, so
// that the attackers are closed within seconds.
const slowAttackConfig = "http_body_timeout: 4\nhttp_send_timeout: 4\n"

// getLatencies times n plain GETs, one after another, each on its own
// connection; a GET that fails or is not answered 200 within 2 s counts
// as 2 s and ends the series.
func getLatencies(t *testing.T, s *server, n int) []time.Duration {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var d []time.Duration
	for range n {
		start := time.Now()
		resp, err := client.Get(httpURL(s, "/"))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = errors.New(resp.Status)
			}
		}
		if err != nil {
			t.Logf("GET under attack: %v after %s", err, time.Since(start))
			d = append(d, 2*time.Second)
			break
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return d
}

// percentile is the p-th percentile (0 < p ≤ 100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Slow clients pin no worker: with 2 PHP workers, 50 clients trickling a
// POST body a byte a second and 50 that ask for a 1 MiB answer and never
// read it leave a plain GET answered at once (p99 < 100 ms): bodies are
// buffered by the master before dispatch, and answers by the master
// (the handler is credited on receipt), so no worker waits for a client.
// The tricklers get 408 at http_body_timeout, the non-readers are closed at
// http_send_timeout, each with a line that names it; then the pool serves
// at once.
func TestHTTPSlowClientsPinNoWorker(t *testing.T) {
	s := startServer(t, phpWorkers(2, phpScript(t, "handler.php"), httpListener, slowAttackConfig))
	logs := s.subscribe()
	addr := tcpAddr(s.addrs[0])
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	const attackers = 50

	// Non-readers: a small receive buffer, a request for 1 MiB, no reads.
	for range attackers {
		nonReader(t, addr, "/big?n=1048576")
	}
	// Tricklers: a 100-byte body, one byte a second.
	answers := make(chan string, attackers)
	for range attackers {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx")); err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Second): // the attack's pace, not synchronisation
				}
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			b, _ := io.ReadAll(c)
			answers <- firstLine(string(b))
		}()
	}
	// The attack is in place once the non-readers' answers are made (the
	// handlers ran); without buffering they never are, and the GETs below
	// show what that costs.
	inPlace := false
	for deadline := time.Now().Add(5 * time.Second); !inPlace && time.Now().Before(deadline); {
		served := uint64(0)
		for _, r := range s.status() {
			served += r.Requests
		}
		if inPlace = served >= attackers; inPlace {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling status, not waiting for time to pass
	}
	d := getLatencies(t, s, 100)
	t.Logf("plain GET under attack: %d answered, p50 %s, p99 %s", len(d), percentile(d, 50), percentile(d, 99))
	if p99 := percentile(d, 99); len(d) < 100 || p99 >= 100*time.Millisecond {
		t.Fatalf("plain GET under attack by %d tricklers and %d non-readers: p99 %s over %d GETs, want under 100 ms and all answered", attackers, attackers, p99, len(d))
	}
	if !inPlace {
		// Fast GETs prove nothing if the handlers never made the answers
		// the non-readers hold.
		t.Fatalf("the %d non-readers' answers were not all made within 5s: the attack was never in place", attackers)
	}

	// Each attacker is closed, with a line that names it.
	bodies, sends := 0, 0
	deadline := time.After(20 * time.Second)
	for bodies < attackers || sends < attackers {
		select {
		case e := <-logs:
			switch {
			case strings.Contains(e.msg(), "http_body_timeout") && e.str("remote") != "" && e.str("target") == "/echo":
				bodies++
			case strings.Contains(e.msg(), "http_send_timeout") && e.str("remote") != "" && e.str("target") == "/big?n=1048576":
				sends++
			}
		case <-deadline:
			t.Fatalf("after 20 s, %d of %d tricklers timed out (http_body_timeout) and %d of %d non-readers (http_send_timeout)", bodies, attackers, sends, attackers)
		}
	}
	for range attackers {
		if a := <-answers; !strings.HasPrefix(a, "HTTP/1.1 408 ") {
			t.Fatalf("a trickler got %q, want 408", a)
		}
	}
	d = getLatencies(t, s, 20)
	t.Logf("plain GET after the attack: p50 %s, p99 %s", percentile(d, 50), percentile(d, 99))
	if p99 := percentile(d, 99); len(d) < 20 || p99 >= 100*time.Millisecond {
		t.Fatalf("plain GET after the attack: p99 %s over %d GETs, want under 100 ms", p99, len(d))
	}
}

// masterRow is the master's row of drover status.
func masterRow(rows []statusRow) statusRow {
	for _, r := range rows {
		if r.Role == "master" {
			return r
		}
	}
	return statusRow{}
}

// The bodies and answers the master holds are bounded across connections
// (http_max_buffered): a body that would pass the bound is refused with
// 503 and a line naming it, the others are served, and the count (drover
// status) goes back to 0 when they are done.
func TestHTTPBufferedBytesAreBounded(t *testing.T) {
	s := startServer(t, phpWorkers(1, phpScript(t, "handler.php"), httpListener, "http_max_buffered: 1M\n"))
	logs := s.subscribe()
	const size = 900 << 10
	a, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetDeadline(time.Now().Add(20 * time.Second))
	body := strings.Repeat("a", size)
	fmt.Fprintf(a, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", size, body[:size-1])
	s.waitStatus("the first body buffered", func(rows []statusRow) bool { return masterRow(rows).HTTPBuffered == size-1 })

	out := rawHTTP(t, s, fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 200<<10, body[:200<<10]), false)
	if !strings.HasPrefix(out, "HTTP/1.1 503 ") {
		t.Fatalf("a body past http_max_buffered: %q, want 503", firstLine(out))
	}
	s.waitLog(logs, 5*time.Second, "the refusal's line", func(e logEntry) bool {
		return strings.Contains(e.msg(), "http_max_buffered") && e.str("target") == "/echo" && e.str("remote") != ""
	})

	a.Write([]byte(body[size-1:]))
	resp, err := http.ReadResponse(bufio.NewReader(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	echoed, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(echoed) != body {
		t.Fatalf("the body under the bound: %d, %d bytes back (%v)", resp.StatusCode, len(echoed), err)
	}
	s.waitStatus("http_buffered back to 0", func(rows []statusRow) bool { return masterRow(rows).HTTPBuffered == 0 })
}

// A client that does not read an answer too large for the master's and
// the kernel's buffers holds its handler back (flow control) only until
// http_send_timeout: then the connection is reset (the kernel drops what
// it held for the client, as with nginx's reset_timedout_connection) with
// a line that names the worker, the handler is cancelled, and the worker
// serves on.
func TestHTTPSendTimeoutReleasesTheHandler(t *testing.T) {
	s := startServer(t, phpWorkers(1, phpScript(t, "handler.php"), httpListener, "http_send_timeout: 2\n"))
	logs := s.subscribe()
	pid := pidsOf(s.status(), "worker")
	c := nonReader(t, tcpAddr(s.addrs[0]), "/big?n=67108864")
	e := s.waitLog(logs, 15*time.Second, "the send timeout's line", func(e logEntry) bool {
		return strings.Contains(e.msg(), "http_send_timeout") && e.str("target") == "/big?n=67108864"
	})
	if e["worker_id"] == nil || e["pid"] == nil || e.str("remote") == "" {
		t.Fatalf("the line does not name the worker and the client: %v", e)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the timed-out client read %d more bytes, then %v; want a reset", n, err)
	}
	wantGet(t, httpURL(s, "/"), 200, "Hello, World!")
	if now := pidsOf(s.status(), "worker"); !slices.Equal(now, pid) {
		t.Fatalf("worker pids %v, then %v: the worker was replaced, not its handler cancelled", pid, now)
	}
}

// A worker whose answer is held back for a client that does not read it
// gets no request sent ahead (prefetch): with every worker busy, a GET
// waits in the master for a free one, and gets 503 at dispatch_timeout,
// instead of queueing at the held worker until http_send_timeout.
func TestHTTPNothingWaitsBehindAHeldAnswer(t *testing.T) {
	s := startServer(t, phpWorkers(1, phpScript(t, "handler.php"), httpListener, "dispatch_timeout: 1\n"))
	nonReader(t, tcpAddr(s.addrs[0]), "/big?n=67108864")
	// Held once the master's buffer for it is full.
	s.waitStatus("the answer buffered by the master", func(rows []statusRow) bool { return masterRow(rows).HTTPBuffered > 1<<20 })
	start := time.Now()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(httpURL(s, "/"))
	if err != nil {
		t.Fatalf("GET while the only worker's answer is held: %v after %s (sent ahead to the held worker?)", err, time.Since(start))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET while the only worker's answer is held: %d, want 503 at dispatch_timeout", resp.StatusCode)
	}
}
