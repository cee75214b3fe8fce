package plane

import (
	"errors"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// A connection stops being read while this many of its events are in
// flight or queued, and resumes below resumeAt: a client that sends faster
// than its worker answers meets TCP backpressure, not a growing queue.
const (
	pauseAt  = 64
	resumeAt = 16
	// pendingMax bounds, per loop, events waiting while no worker is ready.
	pendingMax = 4096
)

// connState is the master's per-connection state, kept in reactor.Conn.Ctx
// and touched only on the connection's loop.
type connState struct {
	p           *Plane
	w           *Worker // the worker of its last event or request; bound to it in dispatch modes 2, 4 and 5
	home        uint64  // places it in those modes (home), set at open
	info        []byte  // msgpack ConnInfo, for connect events
	outstanding int     // events dispatched, queued or pending, not yet done
	pending     int     // of which waiting in the loop's pending list
	eof         bool    // the client shut down its side
	byWorker    bool    // a worker asked to close it (CloseConn)
	http        *httpState
	// busySince is when the connection's oldest unanswered event went to a
	// worker, or the worker last answered one of several (stream
	// listeners, for worker.request_timeout); zero when none is in flight.
	busySince time.Time
	slowAt    time.Time // the busySince logged as slow (slowlog.go)
	// uid, once uidBound, places the connection's events (dispatch_mode 5).
	uid      uint64
	uidBound bool
}

// loopState is the data plane's state per reactor loop, touched only on it.
type loopState struct {
	pending []pendingEvent   // events waiting for any worker to be ready
	waiting []uint64         // HTTP connections whose request waits for a worker slot
	resp    ipc.ResponseView // the TypeResponse being handed to its connection, aliasing its payload
	swept   time.Time        // last sweep for the connections' timeouts
	retry   bool             // retryHTTP is deferred to the end of this iteration
}

// errPendingFull closes a connection whose event found no worker ready
// and its loop's pending list full (pendingMax).
var errPendingFull = errors.New("no worker ready and the pending queue is full")

// pendingEvent is a value: written once by whoever queues it, then moved
// between lists of the loop that owns it.
type pendingEvent struct {
	id      uint64
	t       ipc.Type
	payload []byte
	handoff bool // taken back from a retiring worker's queue
}

// OnOpen implements reactor.Handler.
func (p *Plane) OnOpen(c *reactor.Conn) {
	st := &connState{p: p}
	c.Ctx = st
	p.accepted.Add(1)
	p.countOpen(c)
	if p.cfg.Listeners[c.Listener().Index].Protocol == "http" {
		st.http = &httpState{hc: p.http.NewConn(c)}
		st.home = home(p.disp.httpMode, c)
		return
	}
	st.home = home(p.disp.mode, c)
	if p.disp.bound() {
		ln := p.cfg.Listeners[c.Listener().Index]
		st.info, _ = ipc.Marshal(ipc.ConnInfo{Listener: c.Listener().Index, Remote: c.RemoteAddr(), Local: ln.Addr})
		p.event(c, st, ipc.TypeConnect, st.info)
	}
}

// OnPacket implements reactor.Handler.
func (p *Plane) OnPacket(c *reactor.Conn, pkt []byte) {
	p.countPacket(c)
	p.event(c, c.Ctx.(*connState), ipc.TypeData, pkt)
}

// OnReadEOF implements reactor.Handler: a client that half-closed still
// gets the answers to what it sent, then the connection closes.
func (p *Plane) OnReadEOF(c *reactor.Conn) {
	st := c.Ctx.(*connState)
	st.eof = true
	if h := st.http; h != nil {
		h.hc.ReadEOF()
		return
	}
	if st.outstanding == 0 {
		c.CloseWhenFlushed()
	}
}

// OnClose implements reactor.Handler.
func (p *Plane) OnClose(c *reactor.Conn, err error) {
	st := c.Ctx.(*connState)
	p.countClose(c, st, err)
	p.logClose(c, st, err)
	if h := st.http; h != nil {
		h.hc.Closed()
		p.wakeDrain()
	} else if p.disp.bound() && !p.stopping.Load() {
		p.disp.sendClose(c, st, []byte(closeReason(st, err)))
	}
	if err == nil || errors.Is(err, reactor.ErrServerClosed) {
		return
	}
	fields := logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "listener": c.Listener().Name, "reason": err.Error()}
	var gone *errWorkerGone
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		p.log.WithFields(fields).Debug("connection reset by peer")
	case errors.Is(err, reactor.ErrIdleTimeout):
		p.log.WithFields(fields).Info("connection closed")
	case errors.Is(err, reactor.ErrLingerLimit):
		p.log.WithFields(fields).Info("connection closed after its error answer: the client went on sending past the lingering close's bounds (unread input gets a reset)")
	case errors.As(err, &gone):
		fields["worker_id"], fields["pid"] = gone.slot, gone.pid
		p.log.WithFields(fields).Warn("connection closed")
	default:
		p.log.WithFields(fields).Warn("connection closed")
	}
}

// event sends one event of c to a worker, or keeps it pending while no
// worker is ready.
func (p *Plane) event(c *reactor.Conn, st *connState, t ipc.Type, payload []byte) {
	if st.pending > 0 {
		p.pend(c, st, t, payload)
		return
	}
	ok, err := p.disp.dispatch(c, st, t, payload)
	switch {
	case err != nil:
		c.Close(err)
		return
	case !ok:
		p.pend(c, st, t, payload)
	case st.busySince.IsZero():
		st.busySince = c.Loop().Now()
	}
	if st.outstanding >= pauseAt {
		c.PauseRead()
	}
}

func (p *Plane) pend(c *reactor.Conn, st *connState, t ipc.Type, payload []byte) {
	ls := &p.loops[c.Loop().Index()]
	if len(ls.pending) >= pendingMax {
		c.Close(errPendingFull)
		return
	}
	ls.pending = append(ls.pending, pendingEvent{id: c.ID(), t: t, payload: append([]byte(nil), payload...)})
	st.pending++
	st.outstanding++
	if st.outstanding >= pauseAt {
		c.PauseRead()
	}
}

// retryPending dispatches the loop's pending events, in order, now that a
// worker is ready. Runs on l.
func (p *Plane) retryPending(l *reactor.Loop, _ *reactor.Task) {
	ls := &p.loops[l.Index()]
	list := ls.pending
	ls.pending = nil
	for i, pe := range list {
		c := l.Conn(pe.id)
		if c == nil {
			continue
		}
		st := c.Ctx.(*connState)
		if pe.handoff && pe.t == ipc.TypeConnect {
			// The retiring worker never got this connect: the next worker
			// gets it as the connection's first event, not a second one.
			st.w = nil
		}
		ok, err := p.disp.dispatch(c, st, pe.t, pe.payload)
		if err != nil {
			st.pending--
			st.outstanding--
			c.Close(err)
			continue
		}
		if !ok {
			// Still no worker: keep the rest, in order.
			ls.pending = append(ls.pending, list[i:]...)
			return
		}
		st.pending--
		st.outstanding-- // dispatch counted it again
		if st.busySince.IsZero() {
			st.busySince = l.Now()
		}
	}
}

// takeBack puts events handed back by a retiring worker (dispatcher.retire)
// at the head of l's pending list, before any later event of their
// connections, and dispatches them again. Events of a connection closed
// meanwhile are dropped: nobody is left to serve. Runs on l.
func (p *Plane) takeBack(l *reactor.Loop, evs []pendingEvent) {
	ls := &p.loops[l.Index()]
	counts := make(map[uint64]int)
	keep := make([]pendingEvent, 0, len(evs)+len(ls.pending))
	for _, pe := range evs {
		counts[pe.id]++
		if c := l.Conn(pe.id); c != nil {
			c.Ctx.(*connState).pending++ // still counted in outstanding
			keep = append(keep, pe)
		}
	}
	ls.pending = append(keep, ls.pending...)
	for id, n := range counts {
		p.disp.handedBack(id, n)
	}
	p.retryPending(l, nil)
}

// connDone accounts one finished event of c. Runs on c's loop.
func (p *Plane) connDone(c *reactor.Conn) {
	st := c.Ctx.(*connState)
	if st.outstanding > 0 {
		st.outstanding--
	}
	if st.outstanding > st.pending {
		st.busySince = c.Loop().Now()
	} else {
		st.busySince = time.Time{}
	}
	if st.outstanding <= resumeAt && !p.stopping.Load() {
		c.ResumeRead()
	}
	if st.eof && st.outstanding == 0 {
		c.CloseWhenFlushed()
	}
}

// pauseStreamsTask stops reading the stream connections of l for a
// drain; HTTP connections go on to the end of their next response.
func pauseStreamsTask(l *reactor.Loop, _ *reactor.Task) {
	l.EachConn(func(c *reactor.Conn) {
		if st, ok := c.Ctx.(*connState); !ok || st.http == nil {
			c.PauseRead()
		}
	})
}
