package plane

import (
	"testing"

	"github.com/drover-dev/drover/ipc"
)

// Requests that wait for a worker are served in the order they came: a
// request read in the same loop iteration in which a slot frees up does not
// take that slot ahead of those already waiting (it was measured doing so
// for about 40 % of the requests at 256 connections with 2 PHP workers,
// which put the p99 latency at 3.5 to 9 times the mean; docs/benchmarks.md).
func TestHTTPWaitingRequestsServedInArrivalOrder(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true}) // HTTP dispatch mode 3, one loop
	w0 := h.readyWorker(0, 1)                   // the only worker: one request at a time, none sent ahead

	// d's connection is accepted and idle before the loop is held below.
	d := h.dial()
	d.get("/d0")
	w0.serve("/d0", -1)
	if got := d.answer(); got != "/d0" {
		t.Fatalf("GET /d0 answered %q", got)
	}

	a, b, c := h.dial(), h.dial(), h.dial()
	a.get("/a")
	hd, _ := w0.expect(ipc.TypeRequest, 0) // the worker holds a's request
	b.get("/b")
	h.eventually("b's request waiting", func() bool { return h.p.httpWaiting.Load() == 1 })
	c.get("/c")
	h.eventually("c's request waiting", func() bool { return h.p.httpWaiting.Load() == 2 })

	// The worker's answer to a, then d's request, reach the loop in one
	// iteration (the loop is held meanwhile): the answer frees the slot
	// first. d came last: it must wait behind b and c.
	release := h.stall(0, nil)
	w0.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, hd.ID, marshalResponse(t, ipc.Response{Status: 200, Body: []byte("/a")})))
	d.get("/d")
	release()
	if got := a.answer(); got != "/a" {
		t.Fatalf("GET /a answered %q", got)
	}
	for _, x := range []struct {
		cl   *client
		path string
	}{{b, "/b"}, {c, "/c"}, {d, "/d"}} {
		w0.serve(x.path, -1) // fails when the worker gets another request first
		if got := x.cl.answer(); got != x.path {
			t.Fatalf("GET %s answered %q", x.path, got)
		}
	}
}
