// Package plane is the master's data plane: what runs on the reactor
// loops between a client and a worker. It keeps each connection's state
// (conns.go, http.go), chooses a worker for each event and request under
// one set of dispatch rules (dispatch.go), owns the master's end of every
// worker's socket pair (worker.go), and routes tasks and messages between
// workers (tasks.go).
//
// Its face to the control plane (package master, which owns the process
// table, the manager, signals, reloads and upgrades) is small and written
// down here:
//
//   - Commands in, called by the control plane's loop: Attach a worker the
//     manager started, Retire it (no new work; it keeps its requests in
//     flight), Claim and Unclaim it for a replacement, Exited when its
//     process is gone, Stop it, Drain (stop taking work), and Snapshot and
//     Counters for status.
//   - Events out, through the Events function given to New, never blocking
//     a reactor loop: Ready (a worker said hello), Recycle (it reached
//     max_request), RetireAsked (it asked to be replaced, and gets no new
//     work meanwhile), Kill (the data plane took it out of service for a
//     fault the manager must end: a protocol violation, a timeout, a
//     socket pair that does not drain).
//
// The plane never names the control plane: imports point from master to
// plane, never back (arch_test.go).
//
// Owners. Each connection's state (connState, httpState) is touched only
// on the connection's loop; loopState i only on loop i. A worker's socket
// pair is read by one loop (its owner) and written by any loop under the
// worker's outMu; its dispatch accounting is under the dispatcher's mutex;
// the task router has its own. Counters are atomics written by the loops
// and read by Counters. Each struct says which of these applies to which
// field.
package plane

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// Events the data plane sends to the control plane. Each is a value,
// written once by its sender and read by the control plane's loop.
type (
	// Ready: W said hello and takes work.
	Ready struct{ W *Worker }
	// Recycle: W reached max_request (task_max_request) and is claimed
	// for its replacement; the control plane replaces it or Unclaims it.
	Recycle struct {
		W     *Worker
		Cause string
	}
	// RetireAsked: W asked to be replaced (its Retire frame), is claimed
	// and retired (no new work); if no successor can start, the control
	// plane gives it work again with Unclaim and Resume.
	RetireAsked struct {
		W     *Worker
		Cause string
	}
	// Kill: the data plane took W out of service (its connections are
	// failed); its process must end. Reason says why.
	Kill struct {
		W      *Worker
		Reason string
	}
)

// Plane is the data plane. Build it with New, hand it to reactor.New as
// the handler, then Start it with the reactor.
type Plane struct {
	// Set by New and Start, then read-only.
	cfg      *config.Config
	log      *logrus.Entry
	events   func(any) // the control plane's post: never blocks
	rx       *reactor.Reactor
	disp     *dispatcher         // its own mutex guards it (dispatch.go)
	tasks    *taskRouter         // its own mutex guards it (tasks.go)
	maxFrame int                 // the largest frame a worker may send
	loops    []loopState         // loops[i] is owned by reactor loop i (the slice is read-only)
	wake     chan struct{}       // a connection or task ended while stopping (Wake)
	http     *reactor.HTTPServer // what the HTTP connections share (its counters are atomics)
	arena    *reqArena           // the request arena (arena.go); nil: none. Its own mutex guards its pages
	acc      *accessLog          // the access log, nil when off (access.go)

	// stopping: Drain writes it (the control plane's loop), the loops read
	// it: no new work is taken.
	stopping atomic.Bool

	// Written by the reactor loops, read by Counters and the drain.
	accepted atomic.Uint64
	// httpWaiting counts HTTP requests waiting for a worker slot, so that a
	// finished response wakes the loops only when someone waits.
	httpWaiting atomic.Int64
	ipc         ipcCounters
	// met: the counters of /metrics (metrics.go), nil when not counted;
	// set by Metrics before the loops start.
	met  *metrics
	pool poolWatch // a dynamic pool's signals (pool.go)
}

// New builds the data plane for cfg. events receives the events listed in
// the package doc, from any goroutine; it must not block.
func New(cfg *config.Config, log *logrus.Entry, events func(any)) *Plane {
	mode := cfg.DispatchMode
	if mode == 0 {
		mode = modeFixed
	}
	p := &Plane{cfg: cfg, log: log, events: events, wake: make(chan struct{}, 1)}
	// A worker's frame carries at most a packet's worth of stream data, or
	// an HTTP response head with up to MaxInlineBody of body.
	p.maxFrame = max(int(cfg.PackageMaxLength), ipc.MaxInlineBody) + 64<<10
	p.disp = newDispatcher(mode, cfg.WorkerNum, cfg.TaskWorkerNum, cfg.DispatchQueueMax)
	p.disp.procs = make([]*Worker, len(cfg.Processes))
	if cfg.DispatchMode != 0 {
		p.disp.httpMode = cfg.DispatchMode // else newDispatcher's default, 3
	}
	p.tasks = newTaskRouter(p)
	p.newArena()
	p.http = p.newHTTPServer()
	if cfg.Pool.Dynamic {
		p.pool.queueWait = cfg.Pool.QueueWait.D()
	}
	return p
}

// Start ties the plane to the reactor it handles; before rx starts.
func (p *Plane) Start(rx *reactor.Reactor) {
	p.rx = rx
	p.loops = make([]loopState, len(rx.Loops()))
}

// Tick is the reactor tick the plane needs: HTTP listeners need one for
// their timeouts, stream listeners for worker.request_timeout, and
// worker_send_timeout for the socket pairs that stop draining; the access
// log hands its lines over at each tick, and the slow-request log is
// checked once a second.
func Tick(cfg *config.Config) time.Duration {
	for _, l := range cfg.Listeners {
		if l.Protocol == "http" {
			return 100 * time.Millisecond
		}
	}
	if cfg.AccessLog.On() {
		return 100 * time.Millisecond
	}
	if cfg.Worker.RequestTimeout > 0 || cfg.WorkerSendTimeout > 0 || cfg.Worker.SlowRequestLog > 0 {
		return time.Second
	}
	return 0
}

// Attach takes a worker the manager started, with its end of the socket
// pair; it serves once it says hello (Ready). Runs on the control plane.
// answers, if not nil, is its answer arena (arena.go), which Attach maps
// and closes.
func (p *Plane) Attach(ev ipc.WorkerEvent, f *os.File, answers *os.File) *Worker {
	w := &Worker{p: p, role: ev.Role, slot: ev.Slot, gen: ev.Gen, pid: ev.PID, launch: ev.Launch, file: f,
		fd: int(f.Fd()), started: time.Now(), owed: make(map[uint64]int32),
		marked: make([]bool, len(p.rx.Loops()))}
	w.log = p.log.WithFields(logrus.Fields{"role": ev.Role, "worker_id": ev.Slot, "pid": ev.PID, "gen": ev.Gen})
	unix.SetNonblock(w.fd, true)
	w.mapAnswers(answers)
	w.owner = p.rx.Loops()[ev.Slot%len(p.rx.Loops())]
	p.disp.add(w)
	w.owner.Post(reactor.Task{Fn: func(l *reactor.Loop, _ *reactor.Task) {
		if err := l.Watch(w.fd, w); err != nil {
			p.workerGone(w, err.Error(), true)
		}
	}})
	return w
}

// Exited takes out a worker whose process is gone, after what it wrote
// before exiting went out: a retiring worker's last answers, a PHP
// worker's 500 for a fatal error and the request it hands back. Reading
// stops at the pair's end or, when a process the worker left behind keeps
// the pair open, once it is empty. exit is the reason logged.
func (p *Plane) Exited(gen uint64, exit string) {
	w := p.disp.byGen(gen)
	if w == nil {
		return
	}
	w.owner.Post(reactor.Task{Fn: func(l *reactor.Loop, _ *reactor.Task) {
		w.drain(l, exit)
		p.workerGone(w, exit, false)
		w.dropBodies() // its process can no longer read them
	}})
}

// workerGone takes an incarnation out of service, fails the connections
// that had events there, and (kill) asks for its process to be killed.
// Safe from any goroutine; idempotent.
func (p *Plane) workerGone(w *Worker, reason string, kill bool) {
	p.takeOut(w, reason, kill, "worker broke the frame protocol; killing it and starting a successor")
}

// takeOut is workerGone with the log message of a kill.
func (p *Plane) takeOut(w *Worker, reason string, kill bool, killMsg string) {
	ids, was := p.disp.remove(w)
	if was == stateDead {
		return
	}
	p.tasks.gone(w, reason)
	fields := logrus.Fields{"reason": reason, "connections_failed": len(ids)}
	switch {
	case kill:
		w.log.WithFields(fields).Error(killMsg)
		p.events(Kill{W: w, Reason: reason})
	case was == stateRetiring && len(ids) == 0:
		w.log.WithFields(fields).Info("replaced worker left")
	case was == stateRetiring:
		w.log.WithFields(fields).Warn("replaced worker left with requests unanswered (max_wait_time reached?); their connections are closed")
	case !p.stopping.Load():
		w.log.WithFields(fields).Warn("worker left")
	}
	w.owner.Post(reactor.Task{Fn: func(l *reactor.Loop, _ *reactor.Task) {
		l.Unwatch(w.fd)
		// Under outMu: another loop flushing frames for this worker must not
		// write to the number once it is reused.
		w.outMu.Lock()
		w.closed = true
		w.file.Close()
		w.dropOut() // body buffers lent to it go back to the pool
		w.outMu.Unlock()
		ipc.Unmap(w.ans) // only this loop reads it, and it reads no more frames
		w.ans = nil
		if !kill {
			// Its channel ended: its process is gone (a killed one may
			// read its requests' bodies until it is: Exited drops them).
			w.dropBodies()
		}
	}})
	cause := &errWorkerGone{slot: w.slot, pid: w.pid, reason: reason}
	for _, id := range ids {
		if l := p.rx.LoopOf(id); l != nil {
			l.Post(reactor.Task{Fn: closeWithTask, ID: id, Err: cause})
		}
	}
}

// Retire stops sending new events to w, whose successor has taken its
// slot, and returns how many it still has in flight (dispatcher.retire).
func (p *Plane) Retire(w *Worker) int { return p.disp.retire(w) }

// Claim marks for replacement, and returns, the ready workers want
// accepts that no replacement has claimed yet.
func (p *Plane) Claim(want func(*Worker) bool) []*Worker { return p.disp.claim(want) }

// Unclaim makes w claimable again (its replacement failed or was not
// started).
func (p *Plane) Unclaim(w *Worker) { p.disp.unmarkRecycling(w) }

// Resume gives a retired worker new work again (its successor failed).
func (p *Plane) Resume(w *Worker) { p.disp.resume(w) }

// ByGen returns the incarnation of generation gen, or nil.
func (p *Plane) ByGen(gen uint64) *Worker { return p.disp.byGen(gen) }

// ReadyCount is how many workers and task workers said hello.
func (p *Plane) ReadyCount() (workers, tasks int) { return p.disp.readyCount() }

// Stop sends w the graceful-stop frame. Safe from any goroutine.
func (p *Plane) Stop(w *Worker) { w.write(nil, ipc.TypeStop, 0, nil) }

// Drain stops the plane taking work: stream connections stop being read,
// HTTP connections end with the response to their current or next
// request. Runs on the control plane.
func (p *Plane) Drain() {
	p.stopping.Store(true)
	for _, l := range p.rx.Loops() {
		l.Post(reactor.Task{Fn: pauseStreamsTask})
	}
}

// Stopping marks the plane as stopping without pausing anything (a stop
// that does not drain).
func (p *Plane) Stopping() { p.stopping.Store(true) }

// Outstanding is how many events are in flight or queued at workers.
func (p *Plane) Outstanding() int { return p.disp.outstanding() }

// Idle is closed once no event is in flight or queued at a worker.
func (p *Plane) Idle() <-chan struct{} { return p.disp.idleCh() }

// Wake receives a value when, while stopping, an HTTP connection closed
// or a task ended: a drain waiting for them counts again.
func (p *Plane) Wake() <-chan struct{} { return p.wake }

// HTTPConns is how many HTTP connections are open.
func (p *Plane) HTTPConns() int64 { return p.http.Conns() }

// TasksLeft is how many tasks wait for a task worker and how many run.
func (p *Plane) TasksLeft() (queued, running int) { return p.tasks.left() }

// wakeDrain tells a drain waiting for HTTP connections and tasks to end
// that one ended. Safe from any goroutine; never blocks (one wake pending
// is enough: the drain counts again when it wakes).
func (p *Plane) wakeDrain() {
	if !p.stopping.Load() {
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// WorkerInfo is a snapshot of one incarnation, for status.
type WorkerInfo struct {
	W           *Worker
	State       string // starting, ready, retiring, dead
	Dead        bool
	Ready       bool
	InFlight    int // events, requests or (task workers) tasks in flight
	Queued      int
	Served      uint64
	Concurrency int
	SDK         string
}

// Snapshot describes every incarnation the plane knows.
func (p *Plane) Snapshot() []WorkerInfo {
	ws := p.disp.snapshot()
	out := make([]WorkerInfo, len(ws))
	for i, wi := range ws {
		out[i] = WorkerInfo{W: wi.w, State: wi.state.String(), Dead: wi.state == stateDead, Ready: wi.state == stateReady,
			InFlight: wi.inflight, Queued: wi.queued, Served: wi.served, Concurrency: wi.concurrency, SDK: wi.sdk}
		if wi.w.role == ipc.RoleTaskWorker {
			out[i].InFlight = p.tasks.inFlight(wi.w)
		}
	}
	return out
}

// Counters are the data plane's totals, for status.
type Counters struct {
	Accepted          uint64
	Connections       int64
	HTTPBuffered      int64
	TasksQueued       int
	FramesToWorkers   uint64
	Writes            uint64
	FramesFromWorkers uint64
	Reads             uint64
}

// Counters sums the loops' counters.
func (p *Plane) Counters() Counters {
	return Counters{Accepted: p.accepted.Load(), Connections: p.rx.Conns(), HTTPBuffered: p.http.Buffered(),
		TasksQueued:     p.tasks.queued(),
		FramesToWorkers: p.ipc.framesOut.Load(), Writes: p.ipc.writes.Load(),
		FramesFromWorkers: p.ipc.framesIn.Load(), Reads: p.ipc.reads.Load()}
}

// Worker accessors: set at Attach, read-only after.

func (w *Worker) Role() string       { return w.role }
func (w *Worker) Slot() int          { return w.slot }
func (w *Worker) Gen() uint64        { return w.gen }
func (w *Worker) PID() int           { return w.pid }
func (w *Worker) Launch() string     { return w.launch }
func (w *Worker) Started() time.Time { return w.started }
func (w *Worker) Log() *logrus.Entry { return w.log }
func (w *Worker) String() string     { return fmt.Sprintf("%s %d (pid %d)", w.role, w.slot, w.pid) }

// recycleLimit is the number of events after which a worker of role is
// replaced: max_request plus a random 0..max_request_grace for workers,
// task_max_request for task workers, or 0 (never).
func (p *Plane) recycleLimit(role string) uint64 {
	switch {
	case role == ipc.RoleWorker && p.cfg.MaxRequest > 0:
		return uint64(p.cfg.MaxRequest + rand.IntN(p.cfg.MaxRequestGrace+1))
	case role == ipc.RoleTaskWorker && p.cfg.TaskMaxRequest > 0:
		return uint64(p.cfg.TaskMaxRequest)
	}
	return 0
}

// retireAsked handles a worker's Retire frame: it gets no new work from
// now on (it is at its limit) and the control plane replaces it the
// graceful way (RetireAsked). Runs on the worker's loop.
func (p *Plane) retireAsked(w *Worker, reason string) {
	cause := "the worker asked to be replaced"
	if reason != "" {
		cause += ": " + reason
	}
	if len(p.disp.claim(func(x *Worker) bool { return x == w })) == 0 {
		w.log.WithField("cause", cause).Info("worker asked to be replaced; it is being replaced already")
		return
	}
	if p.stopping.Load() {
		p.disp.unmarkRecycling(w)
		return
	}
	p.disp.retire(w)
	p.events(RetireAsked{W: w, Cause: cause})
}

// streamTimedOut closes a stream connection whose worker has held an event
// longer than worker.request_timeout, and replaces that worker: a handler
// that hangs would hold its slot for ever. Runs on c's loop.
func (p *Plane) streamTimedOut(c *reactor.Conn, st *connState) {
	timeout := p.cfg.Worker.RequestTimeout.D()
	w := p.disp.owing(c.ID())
	fields := logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "request_timeout": timeout.String()}
	if w != nil {
		fields["worker_id"], fields["pid"] = w.slot, w.pid
	}
	p.log.WithFields(fields).Error("connection closed: its event exceeded worker.request_timeout; replacing the worker")
	c.Close(fmt.Errorf("worker.request_timeout (%s) exceeded", timeout))
	if w != nil {
		p.takeOut(w, fmt.Sprintf("request_timeout (%s) exceeded by an event of conn %d", timeout, c.ID()), true,
			"worker killed: an event exceeded worker.request_timeout; starting a successor")
	}
}
