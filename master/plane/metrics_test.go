package plane

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// scrape gathers c through a pedantic registry (which checks that what
// Collect sends matches Describe) and returns every sample by name and
// labels, as `name{k="v",…}`; a histogram gives name_count, name_sum and
// name_bucket{le=…}.
func scrape(t testing.TB, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := func(extra ...string) string {
				var ls []string
				for _, lp := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
				}
				ls = append(ls, extra...)
				sort.Strings(ls)
				if len(ls) == 0 {
					return ""
				}
				return "{" + strings.Join(ls, ",") + "}"
			}
			name := mf.GetName()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name+labels()] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name+labels()] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[name+"_count"+labels()] = float64(h.GetSampleCount())
				out[name+"_sum"+labels()] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[name+"_bucket"+labels(fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// want checks the samples named in want (name{labels} → value).
func wantSamples(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s missing from the scrape", k)
		case g != v:
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

// HTTP requests are counted by status class as they end, with their
// worker time; a request refused at dispatch_timeout is a rejection and a
// 5xx; one whose client left unanswered has code 0; connections open are
// those opened less those closed.
func TestMetricsHTTP(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, workers: 1, metrics: true})
	tw := h.readyWorker(0, 1)
	answer := func(id uint64, status int) {
		tw.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, id, marshalResponse(t, ipc.Response{Status: status, Body: []byte("x")})))
	}

	a := h.dial() // kept alive
	a.rawSend("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	hd, _ := tw.expect(ipc.TypeRequest, 0)
	answer(hd.ID, 200)
	a.expect("HTTP/1.1 200 OK\r\n")

	b := h.dial()
	b.rawSend("GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	hd, _ = tw.expect(ipc.TypeRequest, 0)
	answer(hd.ID, 500)
	if out := b.expectClosed(); !strings.HasPrefix(out, "HTTP/1.1 500 ") {
		t.Fatalf("GET /b: %q", out)
	}

	// x holds the only worker; c waits for it, then is refused.
	x := h.dial()
	x.rawSend("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	tw.expect(ipc.TypeRequest, 0)
	c := h.dial()
	c.rawSend("GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	h.eventually("GET /c waiting for the worker", func() bool { return len(h.p.loops[0].waiting) == 1 })
	got := scrape(t, h.met)
	wantSamples(t, got, map[string]float64{`drover_dispatch_waiting`: 1, `drover_connections{listener="test"}`: 3})
	h.onLoop(func() {
		h.p.cfg.DispatchTimeout = 1
		h.p.OnTick(h.p.rx.Loops()[0])
	})
	if out := c.expectClosed(); !strings.HasPrefix(out, "HTTP/1.1 503 ") {
		t.Fatalf("GET /c: %q, want 503", out)
	}
	c.c.Close() // its lingering close ends
	x.c.(*net.TCPConn).SetLinger(0)
	x.c.Close() // reset, unanswered: code 0
	h.eventually("x closed", func() bool { return h.p.http.Conns() == 1 })

	got = scrape(t, h.met)
	wantSamples(t, got, map[string]float64{
		`drover_requests_total{code="0",listener="test"}`:                 1,
		`drover_requests_total{code="2xx",listener="test"}`:               1,
		`drover_requests_total{code="3xx",listener="test"}`:               0,
		`drover_requests_total{code="4xx",listener="test"}`:               0,
		`drover_requests_total{code="5xx",listener="test"}`:               2,
		`drover_request_duration_seconds_count{listener="test"}`:          3, // a, b, x: c never reached a worker
		`drover_request_duration_seconds_bucket{le="60",listener="test"}`: 3,
		`drover_dispatch_wait_seconds_count`:                              3,
		`drover_dispatch_rejected_total{reason="dispatch_timeout"}`:       1,
		`drover_dispatch_rejected_total{reason="http_max_buffered"}`:      0,
		`drover_dispatch_rejected_total{reason="queue_full"}`:             0,
		`drover_connections{listener="test"}`:                             1,
		`drover_dispatch_waiting`:                                         0,
		`drover_tasks_queued`:                                             0,
		`drover_tasks_total{result="ok"}`:                                 0,
	})
	for _, k := range []string{`drover_requests_total{code="1xx",listener="test"}`, `drover_requests_total{code="other",listener="test"}`} {
		if _, ok := got[k]; ok {
			t.Errorf("%s reported before any such answer", k)
		}
	}
	if s := got[`drover_request_duration_seconds_sum{listener="test"}`]; s <= 0 || s > 2*waitTimeout.Seconds() {
		t.Errorf("worker time summed to %vs", s)
	}
}

// A stream listener's requests are its events: connect, data, close; a
// connection closed because every worker's queue was full is a
// rejection.
func TestMetricsStream(t *testing.T) {
	h := newHarness(t, harnessOpts{workers: 1, queueMax: 1, metrics: true})
	tw := h.readyWorker(0, 1)
	c1 := h.dial()
	c1.send("one")
	tw.expect(ipc.TypeData, 0) // in flight
	c2 := h.dial()
	c2.send("two") // queued
	h.eventually("an event queued at the worker", func() bool { return h.p.Snapshot()[0].Queued == 1 })
	c3 := h.dial()
	c3.send("three") // refused: the queue is full
	c3.expectClosed()
	h.eventually("the refused connection closed", func() bool { return h.p.rx.Conns() == 2 })
	wantSamples(t, scrape(t, h.met), map[string]float64{
		`drover_requests_total{code="connect",listener="test"}`: 3,
		`drover_requests_total{code="data",listener="test"}`:    3,
		`drover_requests_total{code="close",listener="test"}`:   1,
		`drover_connections{listener="test"}`:                   2,
		`drover_dispatch_rejected_total{reason="queue_full"}`:   1,
		`drover_dispatch_waiting`:                               1,
	})
	if _, ok := scrape(t, h.met)[`drover_request_duration_seconds_count{listener="test"}`]; ok {
		t.Error("a stream listener has a request duration")
	}
}

// The counting of a request, as a loop does it for each: its dispatch
// (wait and time) and its end (status class, worker time). It must
// allocate nothing; "off" is the cost without an admin listener (the nil
// check of each hook).
func BenchmarkCountRequest(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			h := newHarness(b, harnessOpts{http: true, workers: 1, metrics: on})
			cl := h.dial()
			cl.rawSend("GET / HTTP/1.1\r\nHost: x\r\n") // a connection, its head not yet whole
			var hc *reactor.HTTPConn
			h.eventually("the connection open", func() bool {
				h.p.rx.Loops()[0].EachConn(func(c *reactor.Conn) { hc = c.Ctx.(*connState).http.hc })
				return hc != nil
			})
			h.onLoop(func() {
				st := stateOf(hc).http
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					h.p.countDispatch(hc, st)
					h.p.countRequest(hc, 200, 120)
				}
				b.StopTimer()
			})
			if on {
				if n := scrape(b, h.met)[`drover_requests_total{code="2xx",listener="test"}`]; n != float64(b.N) {
					b.Fatalf("counted %v requests, want %d", n, b.N)
				}
			}
		})
	}
}
