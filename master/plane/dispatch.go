package plane

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

// errWorkerBufferFull closes a connection whose event would take the
// bytes held for its worker past worker_buffer_size.
type errWorkerBufferFull struct {
	slot, pid   int
	held, limit int64
}

func (e *errWorkerBufferFull) Error() string {
	return fmt.Sprintf("worker %d (pid %d) is not reading its socket pair: %d bytes held for it reach worker_buffer_size %d; connection closed (raise worker_buffer_size, or find why the worker does not read)",
		e.slot, e.pid, e.held, e.limit)
}

// dispatcher owns the worker table and the per-worker accounting. Loops
// call it concurrently; one mutex guards it (held for a few map and slice
// operations, never across a system call).
type dispatcher struct {
	mu sync.Mutex
	// The dispatch mode of stream listeners (default 2) and of HTTP
	// listeners (default 3), under the same rules (choose). Set before the
	// loops start (Run), read-only after.
	mode     int
	httpMode int
	queueMax int
	workers  []*Worker // by slot: the incarnation taking new events, nil if none
	tasks    []*Worker // task workers by slot
	procs    []*Worker // user processes by slot
	all      map[uint64]*Worker
	rr       int
	lead     int           // HTTP mode 3: the worker requests go to first
	leadAt   time.Time     // … since when
	total    int           // events in flight or queued at workers
	idle     chan struct{} // closed when total drops to 0, while someone waits
	// handoff counts, by connection, events taken from a retiring worker's
	// queue that are on their way back to their connection's loop; while
	// a connection has some, its new events wait behind them (pending).
	handoff map[uint64]int
	// leadSlots: the HTTP lead rotates over this many lowest slots
	// (Resize, pool.go); 0: all of them.
	leadSlots int
}

func newDispatcher(mode, workers, tasks, queueMax int) *dispatcher {
	return &dispatcher{mode: mode, httpMode: modeIdle, queueMax: queueMax, workers: make([]*Worker, workers),
		tasks: make([]*Worker, tasks), all: make(map[uint64]*Worker)}
}

// bound reports whether the mode ties a connection to one worker, which
// then sees its connect and close events.
func (d *dispatcher) bound() bool { return binds(d.mode) }

// binds reports whether mode ties a connection to one worker.
func binds(mode int) bool { return mode == modeFixed || mode == modeIP || mode == modeUID }

func (d *dispatcher) add(w *Worker) {
	d.mu.Lock()
	d.all[w.gen] = w
	d.mu.Unlock()
}

func (d *dispatcher) byGen(gen uint64) *Worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.all[gen]
}

// ready records a worker's hello; false if it had already said hello.
func (d *dispatcher) ready(w *Worker, h *ipc.Hello, recycleAt uint64) bool {
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
	w.arenas = h.Arenas
	w.cgi = h.CGI
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
	w.lastDone = time.Now()
	if w.role == ipc.RoleWorker && w.p != nil {
		w.p.pool.joined.Store(w.lastDone.UnixNano())
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

// choose picks the worker for a connection's next event (a stream
// listener's) or request (an HTTP listener's: http) under dispatch mode
// mode. The rule is the same for both kinds of listener
// (docs/configuration.md, Dispatch modes):
//
//   - 1 round-robin: the next ready worker in turn with a free slot.
//   - 3 idle worker first: a ready worker with a free slot, never a busy
//     one while another has a free slot: the least loaded on a stream
//     listener; on an HTTP listener the first from the lead one (packed,
//     see packRotate).
//   - 2, 4 and 5 bind the connection to one worker: after a bind (mode 5)
//     worker uid % worker_num, else the worker the connection has, else
//     the one its home places it at (its id; its client IP in mode 4);
//     when that worker is not ready, the next ready one.
//
// When no worker has a free slot, modes 1 and 3 return on a stream
// listener a ready worker to queue at (the next one in turn; the least
// loaded), and nil on an HTTP listener (dispatchHTTP sends ahead or
// waits). The binding modes return the connection's worker, busy or not.
// It returns nil when no worker is ready. now is the loop's time (HTTP
// mode 3 only). Called with mu held; it allocates nothing.
func (d *dispatcher) choose(mode int, http bool, st *connState, now time.Time) *Worker {
	n := len(d.workers)
	if n == 0 {
		return nil
	}
	switch mode {
	case modeRoundRobin:
		var fallback *Worker
		for i := 0; i < n; i++ {
			d.rr = (d.rr + 1) % n
			w := d.workers[d.rr]
			if w == nil || w.state != stateReady {
				continue
			}
			if w.free() {
				return w
			}
			if fallback == nil && !http {
				fallback = w
			}
		}
		return fallback
	case modeIdle:
		if http {
			return d.packed(now)
		}
		var best *Worker
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
	if mode == modeUID && st.uidBound {
		if w := d.workers[int(st.uid%uint64(n))]; w != nil && w.state == stateReady {
			return w
		}
	}
	if st.w != nil && st.w.state == stateReady {
		return st.w
	}
	pref := int(st.home % uint64(n))
	for i := 0; i < n; i++ {
		if w := d.workers[(pref+i)%n]; w != nil && w.state == stateReady {
			return w
		}
	}
	return nil
}

// target is choose for a stream listener's event.
func (d *dispatcher) target(st *connState) *Worker {
	return d.choose(d.mode, false, st, time.Time{})
}

// packed returns the first ready worker with a free slot from the lead
// one, or nil: requests arriving together share one worker's reads and
// writes; the lead moves on every packRotate, so that every worker
// serves (and recycles) too. Called with mu held.
func (d *dispatcher) packed(now time.Time) *Worker {
	n := len(d.workers)
	var pick *Worker
	for i := 0; i < n && pick == nil; i++ {
		if w := d.workers[(d.lead+i)%n]; w != nil && w.state == stateReady && w.free() {
			pick = w
		}
	}
	if now.Sub(d.leadAt) >= packRotate {
		d.lead, d.leadAt = (d.lead+1)%d.rotate(), now
	}
	return pick
}

// home is where connection c's events go in the modes that bind it to a
// worker, before anything else decided (connState.home): its client IP's
// hash in mode 4, its id otherwise.
func home(mode int, c *reactor.Conn) uint64 {
	if ip := c.RemoteIP(); mode == modeIP && ip != nil {
		h := fnv.New32a()
		h.Write(ip)
		return uint64(h.Sum32())
	}
	return c.ID() >> 8
}

// dispatch sends an event of connection c to a worker. It returns false
// when no worker is ready (the caller keeps the event pending) and an
// error when the event cannot be queued. Runs on c's loop.
func (d *dispatcher) dispatch(c *reactor.Conn, st *connState, t ipc.Type, payload []byte) (bool, error) {
	l := c.Loop()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handoff[c.ID()] > 0 {
		return false, nil // behind events handed back from a retiring worker
	}
	w := d.target(st)
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
func (d *dispatcher) send(l *reactor.Loop, w *Worker, t ipc.Type, id uint64, payload []byte) error {
	if t != ipc.TypeClose {
		// A Close is a few bytes per connection, and the worker needs it;
		// anything else counts against worker_buffer_size.
		if held, limit := w.held(), w.p.workerBufferSize(); held > 0 && held+int64(len(payload)) > limit {
			w.refused()
			return &errWorkerBufferFull{slot: w.slot, pid: w.pid, held: held, limit: limit}
		}
	}
	if w.inflight < w.concurrency+w.prefetch && len(w.queue) == 0 {
		w.inflight++
		w.write(l, t, id, payload)
	} else {
		if len(w.queue) >= d.queueMax {
			return errQueueFull
		}
		at := time.Now()
		if l != nil {
			at = l.Now()
		}
		w.queue = append(w.queue, queued{t: t, id: id, payload: append([]byte(nil), payload...), at: at})
		w.queueBytes += int64(len(payload))
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

// dispatchHTTP sends an HTTP request to the worker pickHTTP picks, and
// returns it, or nil when the request must wait for a worker (the caller
// keeps it, up to dispatch_timeout). Runs on c's loop.
// dispatchHTTP sends an HTTP request to a worker with a free slot
// (pickHTTP), or returns nil. The request is r, encoded in place into the
// worker's output (keep, if set, gets a copy of the payload when the worker
// prefetches and may hand it back), or, when r is nil, payload, encoded
// before (a request that waited).
func (d *dispatcher) dispatchHTTP(c *reactor.Conn, st *connState, r *ipc.Request, payload []byte, keep *[]byte) *Worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	pick := d.pickHTTP(st, c.Loop().Now())
	if pick == nil {
		return nil
	}
	st.w = pick
	pick.inflight++
	pick.owed[c.ID()]++
	d.total++
	if r != nil && r.BodyAt != nil && !pick.arenas {
		r.BodyAt, r.BodyFollows = nil, true // it does not map the request arena: frames
	}
	switch {
	case r != nil && pick.prefetch > 0:
		pick.writeRequest(c.Loop(), c.ID(), r, keep)
	case r != nil:
		pick.writeRequest(c.Loop(), c.ID(), r, nil)
	default:
		pick.write(c.Loop(), ipc.TypeRequest, c.ID(), payload)
	}
	return pick
}

// pickHTTP returns the worker for an HTTP connection's next request, or
// nil when it must wait. A request never queues at a worker: its body
// frames must follow it directly. So it goes to the worker choose picks
// with a free slot, or ahead to one that prefetches (hello prefetch) and
// is not held back by a slow client: in modes 1 and 3 the least loaded
// such worker when none has a free slot; in the binding modes only the
// connection's worker, which it otherwise waits for. Called with mu held.
func (d *dispatcher) pickHTTP(st *connState, now time.Time) *Worker {
	pick := d.choose(d.httpMode, true, st, now)
	switch {
	case pick == nil && !binds(d.httpMode):
		// Every worker is busy: send ahead to one that prefetches, the
		// least loaded, rather than wait here for an answer to come back.
		n := len(d.workers)
		for i := 0; i < n; i++ {
			if w := d.workers[(d.lead+i)%n]; w != nil && w.state == stateReady && w.ahead() &&
				(pick == nil || w.inflight-w.concurrency < pick.inflight-pick.concurrency) {
				pick = w
			}
		}
	case pick != nil && binds(d.httpMode) && !pick.free() && !pick.ahead():
		pick = nil // the connection's worker is busy: wait for it
	}
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
func (d *dispatcher) done(l *reactor.Loop, w *Worker, id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.inflight == 0 || w.owed[id] == 0 {
		return false
	}
	w.inflight--
	d.total--
	d.servedOne(w)
	var now time.Time // the loop's clock of this iteration: no clock read per answer
	if l != nil {
		now = l.Now()
	} else {
		now = time.Now()
	}
	w.lastDone = now
	if w.prefetch > 0 {
		w.lastEnd.Store(now.UnixNano())
	}
	if n := w.owed[id]; n > 1 {
		w.owed[id] = n - 1
	} else {
		delete(w.owed, id)
	}
	// A retiring worker's queue went to other workers at retire (it may
	// read no more after its Stop).
	for w.inflight < w.concurrency+w.prefetch && len(w.queue) > 0 && w.state == stateReady {
		q := w.queue[0]
		w.queue[0] = queued{}
		w.queue = w.queue[1:]
		w.queueBytes -= int64(len(q.payload))
		w.inflight++
		w.write(l, q.t, q.id, q.payload)
		w.p.waited(q.at, now)
	}
	if len(w.queue) == 0 {
		w.queue = nil
	}
	d.signalIdle()
	return true
}

// servedOne counts an event or task w finished, and asks for its
// replacement at its max_request (task_max_request). Called with mu held.
func (d *dispatcher) servedOne(w *Worker) {
	w.served++
	if w.recycleAt > 0 && w.served >= w.recycleAt && !w.recycling && w.state == stateReady {
		w.recycling = true
		key := "max_request"
		if w.role == ipc.RoleTaskWorker {
			key = "task_max_request"
		}
		w.p.events(Recycle{W: w, Cause: fmt.Sprintf("%s reached (%d served)", key, w.served)})
	}
}

// taskDone counts a task w finished.
func (d *dispatcher) taskDone(w *Worker) {
	d.mu.Lock()
	d.servedOne(w)
	w.lastDone = time.Now()
	d.mu.Unlock()
}

// retire stops sending new events to w, whose successor has taken its
// slot, and returns how many it still has in flight.
//
// The events queued at w (not yet sent) are handed back to their
// connections' loops, to be dispatched again (to its successor in the
// modes that bind a connection to a worker): w is about to get Stop, after
// which a worker reads nothing more (docs/protocol.md), so they must not
// wait for it. Until a connection's handed-back events are dispatched again
// its new events wait behind them, so each connection keeps its order.
func (d *dispatcher) retire(w *Worker) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.state == stateReady {
		w.state = stateRetiring
	}
	if n := len(w.queue); n > 0 && w.p != nil && w.p.rx != nil {
		byLoop := make(map[*reactor.Loop][]pendingEvent)
		for _, q := range w.queue {
			if k := w.owed[q.id]; k > 1 {
				w.owed[q.id] = k - 1
			} else {
				delete(w.owed, q.id)
			}
			l := w.p.rx.LoopOf(q.id)
			if l == nil {
				d.total--
				continue
			}
			// Still counted in total until its loop took it back, so that a
			// drain does not see the workers idle meanwhile.
			if d.handoff == nil {
				d.handoff = make(map[uint64]int)
			}
			d.handoff[q.id]++
			byLoop[l] = append(byLoop[l], pendingEvent{id: q.id, t: q.t, payload: q.payload, handoff: true})
		}
		w.queue, w.queueBytes = nil, 0
		for l, evs := range byLoop {
			l.Post(reactor.Task{Fn: func(l *reactor.Loop, _ *reactor.Task) { w.p.takeBack(l, evs) }})
		}
		w.log.WithField("events", n).Info("queued events of a retiring worker handed back for dispatch to the others")
	}
	return w.inflight
}

// handedBack forgets n handed-back events of connection id: they are in
// its loop's pending list, in order (or dropped, the connection being
// closed), no longer at any worker. Runs on the connection's loop.
func (d *dispatcher) handedBack(id uint64, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handoff[id] -= n; d.handoff[id] <= 0 {
		delete(d.handoff, id)
	}
	d.total -= n
	d.signalIdle()
}

// isFull reports whether w holds worker_buffer_size bytes (worker.full).
func (d *dispatcher) isFull(w *Worker) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.full()
}

// serves reports whether w holds an event of connection id (in flight or
// queued): only then may it answer that connection's request.
func (d *dispatcher) serves(w *Worker, id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.owed[id] > 0
}

// resume undoes retire for a worker whose replacement failed: it takes
// new work again.
func (d *dispatcher) resume(w *Worker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.state == stateRetiring {
		w.state = stateReady
	}
}

// claim marks the ready workers that want accepts as being replaced and
// returns them in slot order (workers, then task workers).
func (d *dispatcher) claim(want func(*Worker) bool) []*Worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*Worker
	for _, table := range [][]*Worker{d.workers, d.tasks, d.procs} {
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
func (d *dispatcher) owing(id uint64) *Worker {
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
func (d *dispatcher) unmarkRecycling(w *Worker) {
	d.mu.Lock()
	w.recycling = false
	d.mu.Unlock()
}

// remove takes a dead incarnation out of service and returns the
// connections that had events in flight or queued there, and the state it
// was in (stateDead: it was removed before). Idempotent.
func (d *dispatcher) remove(w *Worker) (ids []uint64, was workerState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if was = w.state; was == stateDead {
		return nil, was
	}
	w.state = stateDead
	delete(d.all, w.gen)
	for _, table := range [][]*Worker{d.workers, d.tasks, d.procs} {
		if w.slot < len(table) && table[w.slot] == w {
			table[w.slot] = nil
		}
	}
	for id, n := range w.owed {
		ids = append(ids, id)
		d.total -= int(n)
	}
	w.owed, w.queue, w.queueBytes, w.inflight = nil, nil, 0, 0
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
	w           *Worker
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
func (d *dispatcher) pickTask(busy func(*Worker) int) *Worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	var pick *Worker
	pickBusy := 0
	for _, w := range d.tasks {
		if w == nil || w.state != stateReady {
			continue
		}
		if b := busy(w); b < w.concurrency && !w.full() && (pick == nil || b < pickBusy) {
			pick, pickBusy = w, b
		}
	}
	return pick
}

// alive reports whether w has not left.
// stateOf returns w's state.
func (d *dispatcher) stateOf(w *Worker) workerState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.state
}

func (d *dispatcher) alive(w *Worker) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.state != stateDead
}

// byID returns the incarnation running as worker id, or nil: workers are
// 0..workerCap-1, task workers the next taskCap ids, then user processes
// (config.WorkerCap, config.TaskWorkerCap).
func (d *dispatcher) byID(id, workerCap, taskCap int) *Worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	var w *Worker
	switch {
	case id < 0:
	case id < workerCap:
		if id < len(d.workers) {
			w = d.workers[id]
		}
	case id-workerCap < taskCap:
		if id-workerCap < len(d.tasks) {
			w = d.tasks[id-workerCap]
		}
	case id-workerCap-taskCap < len(d.procs):
		w = d.procs[id-workerCap-taskCap]
	}
	if w == nil || w.state == stateDead {
		return nil
	}
	return w
}
