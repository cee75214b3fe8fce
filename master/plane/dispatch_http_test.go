package plane

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// get sends GET path on c, kept alive.
func (c *client) get(path string) {
	c.t.Helper()
	c.rawSend("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
}

// answer reads one response on c and returns its body.
func (c *client) answer() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c.c, 16), nil) // one response at a time: nothing is read past it
	if err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(body)
}

// serve reads tw's next request, which must be for path, binds its
// connection to uid when uid >= 0, and answers path back.
func (tw *testWorker) serve(path string, uid int) {
	tw.h.t.Helper()
	hd, p := tw.expect(ipc.TypeRequest, 0)
	if !strings.Contains(string(p), path) {
		tw.h.t.Fatalf("worker %d got the request %q, want %s", tw.w.slot, p, path)
	}
	var frames [][]byte
	if uid >= 0 {
		frames = append(frames, frame(ipc.TypeBind, hd.ID, binary.BigEndian.AppendUint64(nil, uint64(uid))))
	}
	resp, err := ipc.Marshal(&ipc.Response{Status: 200, Body: []byte(path)})
	if err != nil {
		tw.h.t.Fatal(err)
	}
	frames = append(frames, ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, hd.ID, resp))
	tw.write(cat(frames...))
}

// In the binding modes an HTTP request goes to its connection's worker and
// waits for it while it is busy, even when another worker is free, as a
// stream event does (Swoole's dispatch_mode 2, 4 and 5); a request waiting
// so holds up no other connection's request.
func TestHTTPBoundRequestWaitsForItsWorker(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, httpMode: modeUID})
	w0 := h.readyWorker(0, 1)
	// With only worker 0 ready, every connection's first request goes
	// there; its handler binds a and b to uid 0, c to uid 1.
	a, b, c := h.dial(), h.dial(), h.dial()
	for _, x := range []struct {
		cl   *client
		path string
		uid  int
	}{{a, "/a", 0}, {b, "/b", 0}, {c, "/c", 1}} {
		x.cl.get(x.path)
		w0.serve(x.path, x.uid)
		if got := x.cl.answer(); got != x.path {
			t.Fatalf("GET %s answered %q", x.path, got)
		}
	}
	w1 := h.readyWorker(1, 1)

	a.get("/a2") // worker 0 holds it
	hd, _ := w0.expect(ipc.TypeRequest, 0)
	b.get("/b2") // for worker 0, busy: waits, though worker 1 is free
	h.eventually("b's request waiting", func() bool { return h.p.httpWaiting.Load() == 1 })
	c.get("/c2") // for worker 1: not held up behind b's
	w1.serve("/c2", -1)
	if got := c.answer(); got != "/c2" {
		t.Fatalf("GET /c2 answered %q", got)
	}
	// Worker 0 answers a: b's request goes to it, and to no other.
	w0.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, hd.ID, marshalResponse(t, ipc.Response{Status: 200, Body: []byte("/a2")})))
	if got := a.answer(); got != "/a2" {
		t.Fatalf("GET /a2 answered %q", got)
	}
	w0.serve("/b2", -1)
	if got := b.answer(); got != "/b2" {
		t.Fatalf("GET /b2 answered %q", got)
	}
}
