package plane

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/cpu"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// The data plane's counters for /metrics. Each reactor loop has its own
// (loopMetrics), written only by that loop: an atomic addition to a cache
// line no other loop writes, no lock and no allocation on the request
// path. A scrape (Collect, on the admin listener's goroutine) sums the
// loops' counters with atomic loads and hands them to Prometheus as const
// metrics. Counting is on only when Metrics was called (an admin listener
// is configured): otherwise each hook is one nil check.
//
// A scrape reads each counter once, not all of them at one instant: a
// histogram's count and sum may be one request apart while requests end.

// Rejections, the reason label of drover_dispatch_rejected_total.
const (
	rejectDispatchTimeout  = iota // HTTP 503: no worker slot within dispatch_timeout
	rejectHandedBack              // HTTP 503: handed back unstarted by an exiting worker after its body went there
	rejectQueueFull               // stream close: dispatch_queue_max events queued at every worker
	rejectPendingFull             // stream close: no worker ready and the loop's pending list full
	rejectWorkerBufferFull        // stream close: worker_buffer_size held for the worker
	nReject
)

// rejectHTTPMaxBuffered is counted by the HTTP server (reactor), not per
// loop: bodies refused with 503 at http_max_buffered.
const rejectHTTPMaxBuffered = "http_max_buffered"

var rejectNames = [nReject]string{"dispatch_timeout", "handed_back", "queue_full", "pending_full", "worker_buffer_full"}

// Task results, the result label of drover_tasks_total.
const (
	taskOK      = iota // the task worker finished it
	taskError          // the task worker finished it with an error (its handler failed)
	taskRefused        // refused at once: task queue full, or no task workers
	taskTimeout        // past task_timeout (task_worker.request_timeout); its task worker is replaced
	taskLost           // its task worker left while running it
	nTask
)

var taskNames = [nTask]string{"ok", "error", "refused", "timeout", "lost"}

// HTTP status classes, the code label of an HTTP listener's
// drover_requests_total: 0 for a request over without an answer (its
// client left), then 1xx to 5xx, and other (a handler's status 600-999).
const nCodes = 7

var codeNames = [nCodes]string{"0", "1xx", "2xx", "3xx", "4xx", "5xx", "other"}

// codeClass maps a status to its index in codeNames.
func codeClass(status int) int {
	switch {
	case status < 100:
		return 0
	case status < 600:
		return status / 100
	}
	return nCodes - 1
}

// bucketBounds are the upper bounds of the duration histograms' buckets:
// from 100 µs (a hello world's worker time is tens of µs) to a minute.
var bucketBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second, time.Minute,
}

// histogram counts durations by bucket; written by one loop, read by the
// scrape.
type histogram struct {
	counts [len(bucketBounds) + 1]atomic.Uint64 // the last: above every bound
	sum    atomic.Int64                         // nanoseconds
}

// observe counts d. No allocation, no lock.
func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(bucketBounds) && d > bucketBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	if d > 0 { // most dispatches wait for nothing: one atomic less
		h.sum.Add(int64(d))
	}
}

// histSum accumulates histograms at scrape.
type histSum struct {
	counts [len(bucketBounds) + 1]uint64
	sum    int64
}

func (s *histSum) add(h *histogram) {
	for i := range h.counts {
		s.counts[i] += h.counts[i].Load()
	}
	s.sum += h.sum.Load()
}

// metric is s as a Prometheus histogram (cumulative buckets, seconds).
func (s *histSum) metric(desc *prometheus.Desc, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bucketBounds))
	var n uint64
	for i, b := range bucketBounds {
		n += s.counts[i]
		buckets[b.Seconds()] = n
	}
	n += s.counts[len(bucketBounds)]
	return prometheus.MustNewConstHistogram(desc, n, time.Duration(s.sum).Seconds(), buckets, labels...)
}

// loopMetrics are one reactor loop's counters, written only by it. The
// pads keep other loops' counters off its cache lines.
type loopMetrics struct {
	_      cpu.CacheLinePad
	wait   histogram // dispatch wait of the HTTP requests dispatched on this loop
	reject [nReject]atomic.Uint64
	lis    []listenerMetrics // by listener index (the slice is read-only)
	_      cpu.CacheLinePad
}

// listenerMetrics are one loop's counters for one listener.
type listenerMetrics struct {
	_ cpu.CacheLinePad
	// codes: HTTP requests over, by status class (codeNames).
	codes [nCodes]atomic.Uint64
	// opened and closed connections; data: stream packets (events).
	opened, closed, data atomic.Uint64
	dur                  histogram // HTTP: worker time, dispatch to the end of the answer
	_                    cpu.CacheLinePad
}

// metrics is the plane's side of /metrics, built by Metrics before the
// loops start; then read-only but for the atomics.
type metrics struct {
	p     *Plane
	names []string // listener label values, by listener index
	http  []bool   // by listener index: an HTTP listener
	loops []*loopMetrics
	tasks [nTask]atomic.Uint64 // written under the task router's mutex, or by its timers

	requests, duration, connections, waiting, waitSec, rejected, tasksQueued, tasksTotal, accessDropped *prometheus.Desc
}

// Metrics turns counting on and returns the collector of the data plane's
// families; names are the listeners' label values (their addresses as
// bound), by index. Call it once, after Start and before the reactor's
// loops run.
func (p *Plane) Metrics(names []string) prometheus.Collector {
	mt := &metrics{p: p, names: names, http: make([]bool, len(p.cfg.Listeners)), loops: make([]*loopMetrics, len(p.loops))}
	for i, l := range p.cfg.Listeners {
		mt.http[i] = l.Protocol == "http"
	}
	for i := range mt.loops {
		mt.loops[i] = &loopMetrics{lis: make([]listenerMetrics, len(p.cfg.Listeners))}
	}
	mt.requests = prometheus.NewDesc("drover_requests_total",
		"Requests over, by listener and code: HTTP by status class (2xx … 5xx; 0: the client left before an answer), stream listeners by event (connect, data, close).",
		[]string{"listener", "code"}, nil)
	mt.duration = prometheus.NewDesc("drover_request_duration_seconds",
		"Worker time of HTTP requests: from dispatch to a worker to the end of its answer.", []string{"listener"}, nil)
	mt.connections = prometheus.NewDesc("drover_connections", "Open client connections.", []string{"listener"}, nil)
	mt.waiting = prometheus.NewDesc("drover_dispatch_waiting",
		"HTTP requests waiting for a free worker slot, plus stream events queued at busy workers.", nil, nil)
	mt.waitSec = prometheus.NewDesc("drover_dispatch_wait_seconds",
		"Time HTTP requests waited for a free worker slot (0 for those that found one at once), one observation per dispatch.", nil, nil)
	mt.rejected = prometheus.NewDesc("drover_dispatch_rejected_total",
		"Requests refused with 503 and stream connections closed because no worker could take their event, by reason.", []string{"reason"}, nil)
	mt.tasksQueued = prometheus.NewDesc("drover_tasks_queued", "Tasks waiting for a free task worker.", nil, nil)
	mt.tasksTotal = prometheus.NewDesc("drover_tasks_total", "Tasks over, by result.", []string{"result"}, nil)
	mt.accessDropped = prometheus.NewDesc("drover_access_log_dropped_total",
		"Access log lines dropped because the writer fell behind (present when access_log is on).", nil, nil)
	p.met = mt
	return mt
}

// loop is the counters of l.
func (mt *metrics) loop(l *reactor.Loop) *loopMetrics { return mt.loops[l.Index()] }

// countOpen counts a connection opened, and a stream listener's connect
// event. Runs on its loop.
func (p *Plane) countOpen(c *reactor.Conn) {
	if p.met != nil {
		p.met.loop(c.Loop()).lis[c.Listener().Index].opened.Add(1)
	}
}

// countPacket counts a stream listener's data event. Runs on its loop.
func (p *Plane) countPacket(c *reactor.Conn) {
	if p.met != nil {
		p.met.loop(c.Loop()).lis[c.Listener().Index].data.Add(1)
	}
}

// countDispatch counts the dispatch of hc's request to a worker: how long
// it waited for a free slot, and when it went (for its worker time). Runs
// on its loop.
func (p *Plane) countDispatch(hc *reactor.HTTPConn, h *httpState) {
	if p.met == nil {
		return
	}
	now := hc.Conn().Loop().Now()
	var wait time.Duration
	if hc.Phase() == reactor.HTTPQueued {
		wait = now.Sub(hc.QueuedAt())
	}
	p.met.loop(hc.Conn().Loop()).wait.observe(wait)
	h.dispatched = now
}

// countRequest counts an HTTP request that is over, and its worker time
// when a worker had it. Runs on its loop.
func (p *Plane) countRequest(hc *reactor.HTTPConn, status int, bytes int64) {
	if p.met == nil {
		return
	}
	c := hc.Conn()
	lm := &p.met.loop(c.Loop()).lis[c.Listener().Index]
	lm.codes[codeClass(status)].Add(1)
	if h := stateOf(hc).http; h != nil && !h.dispatched.IsZero() {
		lm.dur.observe(c.Loop().Now().Sub(h.dispatched))
		h.dispatched = time.Time{}
	}
}

// countClose counts a connection that closed, and the stream connections
// closed because no worker could take their event. Runs on its loop.
func (p *Plane) countClose(c *reactor.Conn, st *connState, err error) {
	if p.met == nil {
		return
	}
	lm := p.met.loop(c.Loop())
	lm.lis[c.Listener().Index].closed.Add(1)
	if st.http != nil || err == nil {
		return
	}
	var full *errWorkerBufferFull
	switch {
	case errors.Is(err, errQueueFull):
		lm.reject[rejectQueueFull].Add(1)
	case errors.Is(err, errPendingFull):
		lm.reject[rejectPendingFull].Add(1)
	case errors.As(err, &full):
		lm.reject[rejectWorkerBufferFull].Add(1)
	}
}

// countRejected counts an HTTP request refused with 503 (reason). Runs on
// l.
func (p *Plane) countRejected(l *reactor.Loop, reason int) {
	if p.met != nil {
		p.met.loop(l).reject[reason].Add(1)
	}
}

// countTask counts a task over with result. Safe from any goroutine.
func (p *Plane) countTask(result int) {
	if p.met != nil {
		p.met.tasks[result].Add(1)
	}
}

// Describe implements prometheus.Collector.
func (mt *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mt.requests, mt.duration, mt.connections, mt.waiting, mt.waitSec,
		mt.rejected, mt.tasksQueued, mt.tasksTotal, mt.accessDropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the loops' counters summed.
// Runs on the scrape's goroutine; it reads atomics and takes the
// dispatcher's and the task router's mutexes once each, as drover status
// does.
func (mt *metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	if acc := mt.p.acc; acc != nil { // set before the admin listener starts (Run)
		counter(mt.accessDropped, acc.w.Dropped())
	}
	for i, name := range mt.names {
		var codes [nCodes]uint64
		var opened, closed, data uint64
		var dur histSum
		for _, lm := range mt.loops {
			l := &lm.lis[i]
			for k := range codes {
				codes[k] += l.codes[k].Load()
			}
			// closed before opened: a connection is never counted closed
			// and not opened, so the gauge never goes below 0.
			closed += l.closed.Load()
			opened += l.opened.Load()
			data += l.data.Load()
			dur.add(&l.dur)
		}
		gauge(mt.connections, int64(opened-closed), name)
		if !mt.http[i] {
			counter(mt.requests, opened, name, "connect")
			counter(mt.requests, data, name, "data")
			counter(mt.requests, closed, name, "close")
			continue
		}
		for k, v := range codes {
			if v > 0 || (k != 1 && k != nCodes-1) { // 1xx and other only once seen
				counter(mt.requests, v, name, codeNames[k])
			}
		}
		ch <- dur.metric(mt.duration, name)
	}
	var wait histSum
	var reject [nReject]uint64
	for _, lm := range mt.loops {
		wait.add(&lm.wait)
		for k := range reject {
			reject[k] += lm.reject[k].Load()
		}
	}
	ch <- wait.metric(mt.waitSec)
	for k, v := range reject {
		counter(mt.rejected, v, rejectNames[k])
	}
	counter(mt.rejected, mt.p.http.Refused(), rejectHTTPMaxBuffered)

	waiting := max(mt.p.httpWaiting.Load(), 0)
	for _, wi := range mt.p.Snapshot() {
		if wi.W.role != ipc.RoleTaskWorker {
			waiting += int64(wi.Queued)
		}
	}
	gauge(mt.waiting, waiting)
	gauge(mt.tasksQueued, int64(mt.p.tasks.queued()))
	for k := range mt.tasks {
		counter(mt.tasksTotal, mt.tasks[k].Load(), taskNames[k])
	}
}
