package master

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// Dispatch modes, Swoole's numbering.
const (
	modeRoundRobin = 1
	modeFixed      = 2
	modeIdle       = 3
	modeIP         = 4
	modeUID        = 5
)

// errQueueFull closes a connection whose event found every queue full.
var errQueueFull = errors.New("dispatch queue full: every worker busy and dispatch_queue_max events queued (add workers or raise dispatch_queue_max)")

// dispatcher owns the worker table and the per-worker accounting. Loops
// call it concurrently; one mutex guards it (held for a few map and slice
// operations, never across a system call).
type dispatcher struct {
	mu       sync.Mutex
	mode     int // for stream listeners
	httpMode int // for HTTP listeners
	queueMax int
	workers  []*worker // by slot: the incarnation taking new events, nil if none
	tasks    []*worker // task workers by slot
	procs    []*worker // user processes by slot
	all      map[uint64]*worker
	rr       int
	lead     int           // HTTP mode 3: the worker requests go to first
	leadAt   time.Time     // … since when
	total    int           // events in flight or queued at workers
	idle     chan struct{} // closed when total drops to 0, while someone waits
}

func newDispatcher(mode, workers, tasks, queueMax int) *dispatcher {
	return &dispatcher{mode: mode, queueMax: queueMax, workers: make([]*worker, workers),
		tasks: make([]*worker, tasks), all: make(map[uint64]*worker)}
}

// bound reports whether the mode ties a connection to one worker, which
// then sees its connect and close events.
func (d *dispatcher) bound() bool {
	return d.mode == modeFixed || d.mode == modeIP || d.mode == modeUID
}

func (d *dispatcher) add(w *worker) {
	d.mu.Lock()
	d.all[w.gen] = w
	d.mu.Unlock()
}

func (d *dispatcher) byGen(gen uint64) *worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.all[gen]
}

// ready records a worker's hello; false if it had already said hello.
func (d *dispatcher) ready(w *worker, h *ipc.Hello, recycleAt uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.state != stateStarting {
		return false
	}
	w.state = stateReady
	w.concurrency = h.Concurrency
	w.prefetch = h.Prefetch
	w.sdk = h.SDK
	w.recycleAt = recycleAt
	w.flow = h.Flow
	table := d.workers
	switch w.role {
	case ipc.RoleTaskWorker:
		table = d.tasks
	case ipc.RoleProcess:
		table = d.procs
	}
	if w.slot < len(table) {
		table[w.slot] = w
	}
	return true
}

// readyCount returns how many workers and task workers take events.
func (d *dispatcher) readyCount() (workers, tasks int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		if w != nil && w.state == stateReady {
			workers++
		}
	}
	for _, w := range d.tasks {
		if w != nil && w.state == stateReady {
			tasks++
		}
	}
	return workers, tasks
}

// target picks the worker for connection c's next event, or nil when no
// worker is ready. Called with mu held.
func (d *dispatcher) target(c *reactor.Conn, st *connState) *worker {
	n := len(d.workers)
	switch d.mode {
	case modeRoundRobin:
		// The next ready worker with room; failing that, the next ready one.
		var fallback *worker
		for i := 0; i < n; i++ {
			d.rr = (d.rr + 1) % n
			w := d.workers[d.rr]
			if w == nil || w.state != stateReady {
				continue
			}
			if w.inflight < w.concurrency {
				return w
			}
			if fallback == nil {
				fallback = w
			}
		}
		return fallback
	case modeIdle:
		var best *worker
		for _, w := range d.workers {
			if w == nil || w.state != stateReady {
				continue
			}
			if best == nil || w.inflight+len(w.queue)-w.concurrency < best.inflight+len(best.queue)-best.concurrency {
				best = w
			}
		}
		return best
	}
	if d.mode == modeUID && st.uidBound {
		if w := d.workers[int(st.uid%uint64(n))]; w != nil && w.state == stateReady {
			return w
		}
	}
	if st.w != nil && st.w.state == stateReady {
		return st.w
	}
	var pref int
	if d.mode == modeIP && c.RemoteIP() != nil {
		h := fnv.New32a()
		h.Write(c.RemoteIP())
		pref = int(h.Sum32() % uint32(n))
	} else {
		pref = int((c.ID() >> 8) % uint64(n))
	}
	for i := 0; i < n; i++ {
		if w := d.workers[(pref+i)%n]; w != nil && w.state == stateReady {
			return w
		}
	}
	return nil
}

// dispatch sends an event of connection c to a worker. It returns false
// when no worker is ready (the caller keeps the event pending) and an
// error when the event cannot be queued. Runs on c's loop.
func (d *dispatcher) dispatch(c *reactor.Conn, st *connState, t ipc.Type, payload []byte) (bool, error) {
	l := c.Loop()
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.target(c, st)
	if w == nil {
		return false, nil
	}
	if d.bound() && w != st.w {
		// A worker that takes over a connection hears of it first.
		if st.w != nil || t != ipc.TypeConnect {
			if err := d.send(l, w, ipc.TypeConnect, c.ID(), st.info); err != nil {
				return true, err
			}
			st.outstanding++
		}
		st.w = w
	}
	if err := d.send(l, w, t, c.ID(), payload); err != nil {
		return true, err
	}
	st.outstanding++
	return true, nil
}

// send puts one event in flight at w, or in w's queue when w is at its
// declared concurrency. Called with mu held.
func (d *dispatcher) send(l *reactor.Loop, w *worker, t ipc.Type, id uint64, payload []byte) error {
	if w.inflight < w.concurrency+w.prefetch && len(w.queue) == 0 {
		w.inflight++
		w.write(l, t, id, payload)
	} else {
		if len(w.queue) >= d.queueMax {
			return errQueueFull
		}
		w.queue = append(w.queue, queued{t: t, id: id, payload: append([]byte(nil), payload...)})
	}
	w.owed[id]++
	d.total++
	return nil
}

// packRotate is how long one worker leads HTTP dispatch (mode 3) before the
// next takes the lead. Each hand-over wakes a worker whose threads parked
// while it did not lead: at 256 connections a lead of 100 ms measured 6 %
// fewer requests/s than one of 1 s, which measured the same as never
// handing over (docs/benchmarks.md). 1 s still has every worker serve.
const packRotate = time.Second

// dispatchHTTP sends an HTTP request to a ready worker with a free slot
// (never queued at a worker: its body frames must follow it directly) and
// returns that worker, or nil when none has a free slot. Runs on c's loop.
func (d *dispatcher) dispatchHTTP(c *reactor.Conn, st *connState, payload []byte) *worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	var pick *worker
	n := len(d.workers)
	free := func(w *worker) bool { return w != nil && w.state == stateReady && w.inflight < w.concurrency }
	switch d.httpMode {
	case modeRoundRobin:
		for i := 0; i < n && pick == nil; i++ {
			d.rr = (d.rr + 1) % n
			if w := d.workers[d.rr]; free(w) {
				pick = w
			}
		}
	case modeFixed, modeIP, modeUID:
		if free(st.w) {
			pick = st.w
		}
	}
	if pick == nil {
		// Idle worker first (mode 3, and the fallback of the others),
		// packed: the first worker with a free slot from the lead one, so
		// that requests arriving together share one worker's reads and
		// writes; the lead moves on every packRotate, so that every worker
		// serves (and recycles) too.
		for i := 0; i < n && pick == nil; i++ {
			if w := d.workers[(d.lead+i)%n]; free(w) {
				pick = w
			}
		}
		if now := c.Loop().Now(); now.Sub(d.leadAt) >= packRotate {
			d.lead, d.leadAt = (d.lead+1)%n, now
		}
	}
	if pick == nil {
		// Every worker is busy: send ahead to one that prefetches, the
		// least loaded, rather than wait here for an answer to come back.
		for i := 0; i < n; i++ {
			w := d.workers[(d.lead+i)%n]
			if w != nil && w.state == stateReady && w.inflight < w.concurrency+w.prefetch && w.held.Load() == 0 &&
				(pick == nil || w.inflight-w.concurrency < pick.inflight-pick.concurrency) {
				pick = w
			}
		}
	}
	if pick == nil {
		return nil
	}
	st.w = pick
	pick.inflight++
	pick.owed[c.ID()]++
	d.total++
	pick.write(c.Loop(), ipc.TypeRequest, c.ID(), payload)
	return pick
}

// sendClose tells the worker bound to a closed connection, if it still
// takes events.
func (d *dispatcher) sendClose(c *reactor.Conn, st *connState, reason []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w := st.w; w != nil && w.state == stateReady {
		d.send(c.Loop(), w, ipc.TypeClose, c.ID(), reason)
	}
}

// done accounts one Done from w for connection id and starts the next
// queued event. It returns false if w had nothing in flight for that
// connection (a protocol violation). Runs on w's owner loop l.
func (d *dispatcher) done(l *reactor.Loop, w *worker, id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.inflight == 0 || w.owed[id] == 0 {
		return false
	}
	w.inflight--
	d.total--
	d.servedOne(w)
	if w.prefetch > 0 {
		now := time.Now()
		if l != nil {
			now = l.Now()
		}
		w.lastEnd.Store(now.UnixNano())
	}
	if n := w.owed[id]; n > 1 {
		w.owed[id] = n - 1
	} else {
		delete(w.owed, id)
	}
	for w.inflight < w.concurrency+w.prefetch && len(w.queue) > 0 && w.state != stateDead {
		q := w.queue[0]
		w.queue[0] = queued{}
		w.queue = w.queue[1:]
		w.inflight++
		w.write(l, q.t, q.id, q.payload)
	}
	if len(w.queue) == 0 {
		w.queue = nil
	}
	d.signalIdle()
	return true
}

// servedOne counts an event or task w finished, and asks for its
// replacement at its max_request (task_max_request). Called with mu held.
func (d *dispatcher) servedOne(w *worker) {
	w.served++
	if w.recycleAt > 0 && w.served >= w.recycleAt && !w.recycling && w.state == stateReady {
		w.recycling = true
		key := "max_request"
		if w.role == ipc.RoleTaskWorker {
			key = "task_max_request"
		}
		w.m.post(evRecycle{w: w, cause: fmt.Sprintf("%s reached (%d served)", key, w.served)})
	}
}

// taskDone counts a task w finished.
func (d *dispatcher) taskDone(w *worker) {
	d.mu.Lock()
	d.servedOne(w)
	d.mu.Unlock()
}

// retire stops sending new events to w, whose successor has taken its
// slot, and returns how many it still has in flight or queued.
func (d *dispatcher) retire(w *worker) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.state == stateReady {
		w.state = stateRetiring
	}
	return w.inflight + len(w.queue)
}

// resume undoes retire for a worker whose replacement failed: it takes
// new work again.
func (d *dispatcher) resume(w *worker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.state == stateRetiring {
		w.state = stateReady
	}
}

// claim marks the ready workers that want accepts as being replaced and
// returns them in slot order (workers, then task workers).
func (d *dispatcher) claim(want func(*worker) bool) []*worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*worker
	for _, table := range [][]*worker{d.workers, d.tasks, d.procs} {
		for _, w := range table {
			if w != nil && w.state == stateReady && !w.recycling && want(w) {
				w.recycling = true
				out = append(out, w)
			}
		}
	}
	return out
}

// owing returns a worker with an event of connection id in flight or
// queued, or nil.
func (d *dispatcher) owing(id uint64) *worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.all {
		if w.owed[id] > 0 {
			return w
		}
	}
	return nil
}

// unmarkRecycling lets w be recycled again (its replacement failed).
func (d *dispatcher) unmarkRecycling(w *worker) {
	d.mu.Lock()
	w.recycling = false
	d.mu.Unlock()
}

// remove takes a dead incarnation out of service and returns the
// connections that had events in flight or queued there, and the state it
// was in (stateDead: it was removed before). Idempotent.
func (d *dispatcher) remove(w *worker) (ids []uint64, was workerState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if was = w.state; was == stateDead {
		return nil, was
	}
	w.state = stateDead
	delete(d.all, w.gen)
	for _, table := range [][]*worker{d.workers, d.tasks, d.procs} {
		if w.slot < len(table) && table[w.slot] == w {
			table[w.slot] = nil
		}
	}
	for id, n := range w.owed {
		ids = append(ids, id)
		d.total -= int(n)
	}
	w.owed, w.queue, w.inflight = nil, nil, 0
	d.signalIdle()
	return ids, was
}

// outstanding returns the events in flight or queued at workers.
func (d *dispatcher) outstanding() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// idleCh returns a channel closed once no event is in flight or queued.
func (d *dispatcher) idleCh() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idle == nil {
		d.idle = make(chan struct{})
	}
	ch := d.idle
	d.signalIdle()
	return ch
}

func (d *dispatcher) signalIdle() {
	if d.idle != nil && d.total == 0 {
		close(d.idle)
		d.idle = nil
	}
}

// workerInfo is a snapshot of one incarnation for status.
type workerInfo struct {
	w           *worker
	state       workerState
	inflight    int
	queued      int
	served      uint64
	concurrency int
	sdk         string
}

func (d *dispatcher) snapshot() []workerInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]workerInfo, 0, len(d.all))
	for _, w := range d.all {
		out = append(out, workerInfo{w: w, state: w.state, inflight: w.inflight, queued: len(w.queue),
			served: w.served, concurrency: w.concurrency, sdk: w.sdk})
	}
	return out
}

// pickTask returns the ready task worker with the fewest tasks (busy) below
// its concurrency, or nil. No allocation: it runs for every task.
func (d *dispatcher) pickTask(busy func(*worker) int) *worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	var pick *worker
	pickBusy := 0
	for _, w := range d.tasks {
		if w == nil || w.state != stateReady {
			continue
		}
		if b := busy(w); b < w.concurrency && (pick == nil || b < pickBusy) {
			pick, pickBusy = w, b
		}
	}
	return pick
}

// alive reports whether w has not left.
// stateOf returns w's state.
func (d *dispatcher) stateOf(w *worker) workerState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.state
}

func (d *dispatcher) alive(w *worker) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.state != stateDead
}

// byID returns the incarnation running as worker id (workers first, then
// task workers), or nil.
func (d *dispatcher) byID(id, workerNum int) *worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	var w *worker
	switch {
	case id >= 0 && id < len(d.workers):
		w = d.workers[id]
	case id >= workerNum && id-workerNum < len(d.tasks):
		w = d.tasks[id-workerNum]
	case id >= workerNum+len(d.tasks) && id-workerNum-len(d.tasks) < len(d.procs):
		w = d.procs[id-workerNum-len(d.tasks)]
	}
	if w == nil || w.state == stateDead {
		return nil
	}
	return w
}
