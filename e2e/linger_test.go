package e2e

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestHTTPErrorLingeringClose: a client that sends far more than the
// master reads before it refuses the request (a request line over the
// limit, headers over http_max_header_size, a body over package_max_length)
// and only then reads gets the status line and a clean end of stream, not a
// reset: the master shuts down its sending side after the answer and reads
// and drops what the client still sends before it closes (nginx's
// lingering_close). Without that, the kernel answers the unread input with
// RST and the client's read fails with ECONNRESET, the answer lost.
func TestHTTPErrorLingeringClose(t *testing.T) {
	s := startServer(t, httpConfig+"\nhttp_max_header_size: 16K\n")
	more := strings.Repeat("x", 100<<10) // what the client goes on sending
	cases := []struct {
		name, raw, status string
	}{
		{"request line over the limit", "GET /" + strings.Repeat("a", 80<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n" + more, "414"},
		{"headers over http_max_header_size", "GET / HTTP/1.1\r\nHost: x\r\n" +
			strings.Repeat("X-Pad: "+strings.Repeat("b", 1000)+"\r\n", 100) + "\r\n" + more, "431"},
		{"body over package_max_length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + more, "413"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			// All of it first, then read: the client that reads only once it
			// has sent its request.
			_, werr := c.Write([]byte(tc.raw))
			out, rerr := io.ReadAll(c)
			if !strings.HasPrefix(string(out), "HTTP/1.1 "+tc.status+" ") {
				t.Fatalf("after sending %d bytes: read %q (read error: %v, write error: %v); want the status line HTTP/1.1 %s",
					len(tc.raw), firstLine(string(out)), rerr, werr, tc.status)
			}
			if rerr != nil {
				t.Fatalf("answer %q then read error %v; want a clean end of stream", firstLine(string(out)), rerr)
			}
			if werr != nil {
				t.Errorf("writing the request: %v; want the master to take (and drop) what follows its answer", werr)
			}
		})
	}
	// Every lingering connection ends once its client closed: none is left
	// holding a slot of max_conn.
	s.waitStatus("no client connection open", func(rows []statusRow) bool {
		for _, r := range rows {
			if r.Role == "master" {
				return r.Connections == 0
			}
		}
		return false
	})
}

// A lingering connection counts as open (it holds a descriptor and a slot
// of max_conn) until it ends, and does not hold a stop back: a draining
// master closes it instead of waiting max_wait_time for a client that
// goes on sending.
func TestHTTPLingeringConnectionAndStop(t *testing.T) {
	s := startServer(t, httpConfig+"\nmax_wait_time: 8s\n")
	c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("GET /" + strings.Repeat("a", 32<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c) // ends at the master's shutdown of its side
	if !strings.HasPrefix(string(out), "HTTP/1.1 414 ") || err != nil {
		t.Fatalf("read %q, %v; want a 414 and a clean end of stream", firstLine(string(out)), err)
	}
	// The client has not closed: the master lingers on it.
	rows := s.status()
	if rows[0].Role != "master" || rows[0].Connections != 1 {
		t.Fatalf("status while lingering: %+v; want the master with 1 open connection", rows[0])
	}
	// A client trickling bytes keeps it lingering (up to 30 s) ...
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-trickled }()
	// ... but not a stop.
	start := time.Now()
	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("drover stop: %v\n%s", err, out)
	}
	t.Logf("drover stop took %s with a lingering connection open", time.Since(start).Round(time.Millisecond))
	if s.hasLog(func(e logEntry) bool { return strings.HasPrefix(e.msg(), "max_wait_time reached") }) {
		t.Fatalf("the stop waited max_wait_time for the lingering connection:\n%s", s.logText())
	}
}
