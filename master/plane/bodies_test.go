package plane

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
)

// readBody reads the TypeRequestBody frames of connection id up to the one
// with FlagEnd and returns the body they carry.
func (tw *testWorker) readBody(id uint64) []byte {
	tw.h.t.Helper()
	var body []byte
	for {
		h, p := tw.expect(ipc.TypeRequestBody, id)
		body = append(body, p...)
		if h.Flags&ipc.FlagEnd != 0 {
			return body
		}
	}
}

// pattern is n bytes that differ from those of another seed at every
// offset a test checks.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i/251)
	}
	return b
}

// A request body that the worker's socket pair does not take at once
// waits where the connection buffered it (by reference, not copied): the
// buffer is not reused for the next request's body until the worker has
// read it all. Here the worker answers the first request before reading a
// byte of its body, so the second body is buffered while the first still
// waits for the pair.
func TestHTTPBodyWaitingForTheWorkerIsNotOverwritten(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, workers: 1})
	tw := h.readyWorker(0, 1)
	// A pair that takes less than a body (the kernel doubles the figure).
	if err := unix.SetsockoptInt(tw.w.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10); err != nil {
		t.Fatal(err)
	}
	const size = 900 << 10
	a, b := pattern('a', size), pattern('b', size)
	c := h.dial()
	go func() { // the client's socket cannot hold both bodies at once
		c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
		fmt.Fprintf(c.c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%sPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s",
			size, a, size, b)
	}()
	hd, p := tw.expect(ipc.TypeRequest, 0)
	if !strings.Contains(string(p), "/a") {
		t.Fatalf("first request: %q, want /a", p)
	}
	tw.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, hd.ID, marshalResponse(t, ipc.Response{Status: 200, Body: []byte("A")})))
	c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	br := bufio.NewReader(c.c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	// The second body is buffered (the worker is free again: its request
	// is queued behind the first body) before the worker reads on.
	h.eventually("the second request at the worker", func() bool {
		return h.p.http.Buffered() == 0 && tw.w.outBytes.Load() > size
	})
	if got := tw.readBody(hd.ID); !bytes.Equal(got, a) {
		t.Fatalf("the first body: %d bytes, differing from what the client sent at offset %d", len(got), firstDiff(got, a))
	}
	hd2, p := tw.expect(ipc.TypeRequest, hd.ID)
	if !strings.Contains(string(p), "/b") {
		t.Fatalf("second request: %q, want /b", p)
	}
	if got := tw.readBody(hd2.ID); !bytes.Equal(got, b) {
		t.Fatalf("the second body: %d bytes, differing from what the client sent at offset %d", len(got), firstDiff(got, b))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A worker that goes away with a body queued for it by reference: its
// client gets 502, the buffer is released, and the next request is served
// by its successor with its own body intact.
func TestHTTPWorkerGoneWithABodyQueued(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, workers: 1})
	tw := h.readyWorker(0, 1)
	if err := unix.SetsockoptInt(tw.w.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10); err != nil {
		t.Fatal(err)
	}
	const size = 900 << 10
	c := h.dial()
	go func() {
		c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
		fmt.Fprintf(c.c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", size, pattern('a', size))
	}()
	tw.expect(ipc.TypeRequest, 0)
	h.eventually("the body queued for the worker", func() bool {
		return h.p.http.Buffered() == 0 && tw.w.outBytes.Load() > 0
	})
	tw.conn.Close()
	tw.gone()
	if out := c.expectClosed(); !strings.HasPrefix(out, "HTTP/1.1 502 ") {
		t.Fatalf("the client of the worker that went away: %q, want 502", firstLine(out))
	}
	h.onLoop(func() {
		tw.w.outMu.Lock()
		defer tw.w.outMu.Unlock()
		if len(tw.w.refs) != 0 {
			t.Errorf("%d body pieces still queued for a worker that went away", len(tw.w.refs))
		}
	})

	next := h.readyWorker(0, 1)
	b := pattern('b', size)
	c2 := h.dial()
	go func() {
		c2.c.SetWriteDeadline(time.Now().Add(waitTimeout))
		fmt.Fprintf(c2.c, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", size, b)
	}()
	hd, _ := next.expect(ipc.TypeRequest, 0)
	if got := next.readBody(hd.ID); !bytes.Equal(got, b) {
		t.Fatalf("the next body: %d bytes, differing at offset %d", len(got), firstDiff(got, b))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
