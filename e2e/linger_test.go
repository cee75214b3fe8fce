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
