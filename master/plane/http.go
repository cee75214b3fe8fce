package plane

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// HTTP in the data plane. The HTTP/1.1 connection itself (parsing, body
// buffering, timeouts, framing of answers, write-back) is reactor's
// HTTPConn; the plane is its HTTPBackend: it encodes each request for a
// worker, dispatches it under the dispatch mode of HTTP listeners (the
// same rules as stream listeners: dispatcher.choose), keeps the requests
// that wait for a free worker per loop, forwards request bodies and
// flow-control credit, and hands the worker's response frames to the
// connection.

// drainIdleGrace is how long a draining master keeps an idle keep-alive
// connection open, in case a request is already on its way.
const drainIdleGrace = 200 * time.Millisecond

// pipelineMax bounds the unread bytes of requests pipelined behind the one
// in progress before the connection stops being read.
const pipelineMax = 256 << 10

// maxBodyFrame is the largest request body frame the master forwards.
const maxBodyFrame = 64 << 10

// httpState is the plane's side of an HTTP connection, in connState.http,
// touched only on the connection's loop.
type httpState struct {
	hc *reactor.HTTPConn
	w  *Worker // the worker serving the current request
	// r is the request while its head's read is handled (lazy): it is
	// encoded straight into the worker's output when it goes at once, its
	// only copy on the way (the inline body in r.Body aliases the
	// connection's input until then). payload is the encoded request once
	// it waits (for its body or a worker). retry keeps a copy (canRetry)
	// while it waits at a worker that prefetches, which may hand it back
	// unstarted (ipc.FlagRetry); its buffer is reused from request to
	// request.
	r        ipc.Request
	lazy     bool
	payload  []byte
	retry    []byte
	canRetry bool
	// retryCGI: retry is in the CGI layout (it went to a worker that
	// takes it); payload is always in the default layout, which every
	// worker reads.
	retryCGI bool
	// cancelled: TypeCancel sent for the current request; closedSent: with
	// FlagEnd (the connection is closed).
	cancelled  bool
	closedSent bool
	// holdW is the worker whose answer is held back for this slow client
	// (Worker.heldBack counts it), nil if none.
	holdW *Worker
	// dispatched is when the current request went to its worker, for its
	// worker time (metrics.go); zero when none has it.
	dispatched time.Time
	// at is r.BodyAt's storage (a body in the request arena, arena.go).
	at  [2]uint64
	obs observed // for the access and slow-request logs (access.go)
}

// newHTTPServer is the HTTP server the plane's HTTP connections share.
func (p *Plane) newHTTPServer() *reactor.HTTPServer {
	cfg := p.cfg
	s := &reactor.HTTPServer{Backend: p, Log: p.log, Stopping: p.stopping.Load,
		Config: reactor.HTTPConfig{
			MaxHeaderBytes:  int(cfg.HTTPMaxHeaderSize),
			MaxBodyBytes:    int64(cfg.PackageMaxLength),
			MaxInlineBody:   ipc.MaxInlineBody,
			BodyBufferSize:  int(cfg.HTTPBodyBufferSize),
			MaxBuffered:     int64(cfg.HTTPMaxBuffered),
			OutputBuffer:    int64(cfg.BufferOutputSize),
			HeaderTimeout:   cfg.HTTPHeaderTimeout.D(),
			BodyTimeout:     cfg.HTTPBodyTimeout.D(),
			IdleTimeout:     cfg.HTTPIdleTimeout.D(),
			SendTimeout:     cfg.HTTPSendTimeout.D(),
			SendMinRate:     int64(cfg.HTTPSendMinRate),
			DrainIdleGrace:  drainIdleGrace,
			PipelineMax:     pipelineMax,
			MaxForwardPiece: maxBodyFrame,
		}}
	if p.arena != nil {
		s.Arena = p
	}
	return s
}

// stateOf is the plane's state of hc's connection.
func stateOf(hc *reactor.HTTPConn) *connState { return hc.Conn().Ctx.(*connState) }

// OnStream implements reactor.StreamHandler for HTTP connections.
func (p *Plane) OnStream(c *reactor.Conn, data []byte) int {
	return c.Ctx.(*connState).http.hc.OnStream(data)
}

// HTTPPrepare implements reactor.HTTPBackend: the request is kept as it
// is, to be encoded where it goes (lazy), unless its body follows: then it
// is encoded now, as it waits for the body.
func (p *Plane) HTTPPrepare(hc *reactor.HTTPConn, req *reactor.HTTPRequest, body []byte, bodyFollows bool) {
	c := hc.Conn()
	h := stateOf(hc).http
	h.cancelled, h.closedSent = false, false
	// The head's strings are the parser's copy of the head, made for this
	// request; only body aliases the connection's input.
	h.r = ipc.Request{Method: req.Method, Target: req.Target, Proto: req.Proto, Headers: req.Headers,
		ContentLength: req.ContentLength, Remote: hc.Remote(), Listener: c.Listener().Index,
		Body: body, BodyFollows: bodyFollows}
	h.lazy = true
	if bodyFollows && !hc.BodyInArena() {
		h.encode()
	}
	p.noteRequest(h, req)
}

// encode encodes the request kept lazily into a buffer of its own: it
// waits beyond the head's read.
func (h *httpState) encode() {
	if h.lazy {
		h.payload = ipc.AppendRequest(nil, &h.r)
		h.r, h.lazy = ipc.Request{}, false
	}
}

// HTTPDispatch implements reactor.HTTPBackend: the prepared request goes
// to a worker with a free slot (dispatcher.dispatchHTTP), unless requests
// of this loop wait already (first come, first served: behindWaiting).
func (p *Plane) HTTPDispatch(hc *reactor.HTTPConn) (bool, int64) {
	c := hc.Conn()
	st := stateOf(hc)
	h := st.http
	if p.behindWaiting(hc) {
		return false, 0
	}
	var w *Worker
	if h.lazy {
		// A body whole in the request arena is named, not sent, to a
		// worker that maps it (dispatchHTTP sends it in frames to one
		// that does not).
		if off, ok := p.arenaBody(hc); ok {
			h.r.BodyAt, h.r.BodyFollows = append(h.at[:0], uint64(off), uint64(len(hc.ArenaBody()))), false
		}
		w = p.disp.dispatchHTTP(c, st, &h.r, nil, &h.retry)
		if w != nil && h.r.BodyAt != nil {
			w.holdBody(c.ID(), hc.LendBody())
			hc.BodyTaken()
		}
		h.r.BodyAt, h.r.BodyFollows = nil, hc.BodyFollows()
	} else {
		w = p.disp.dispatchHTTP(c, st, nil, h.payload, nil)
	}
	if w == nil {
		return false, 0
	}
	if hc.Phase() == reactor.HTTPQueued {
		p.waited(hc.QueuedAt(), c.Loop().Now()) // a dynamic pool grows (pool.go)
	}
	h.w = w
	p.countDispatch(hc, h)
	p.noteDispatch(h, w, c.Loop().Now())
	h.canRetry = w.prefetch > 0 && !hc.BodyFollows()
	h.retryCGI = h.lazy && w.cgi // writeRequest encoded it for w
	if h.canRetry && !h.lazy {
		h.retry = append(h.retry[:0], h.payload...)
	}
	h.payload = nil
	h.r, h.lazy = ipc.Request{}, false
	if w.flow {
		return true, ipc.FlowWindow
	}
	return true, 0
}

// behindWaiting reports whether hc's new request must wait behind the
// requests of its loop that wait for a worker already, in modes 1 and 3
// (any worker serves any request): a slot that frees up in a loop
// iteration goes to the oldest of them (retryHTTP, at the end of the
// iteration), not to a request read later in that iteration. Without this,
// about 40 % of the requests at 256 connections with 2 PHP workers took a
// slot as soon as they came while the others waited for 5 to 25 ms, which
// put the p99 latency at several times the mean (docs/benchmarks.md). In
// the binding modes a request waits for its connection's worker anyway.
func (p *Plane) behindWaiting(hc *reactor.HTTPConn) bool {
	if hc.Phase() == reactor.HTTPQueued || binds(p.disp.httpMode) {
		return false
	}
	l := hc.Conn().Loop()
	if len(p.loops[l.Index()].waiting) == 0 {
		return false
	}
	p.retrySoon(l) // a slot may be free now: the oldest go at the end of this iteration
	return true
}

// HTTPQueued implements reactor.HTTPBackend: the request waits in its
// loop's list, in order, for a free worker (retryHTTP) or
// dispatch_timeout (OnTick).
func (p *Plane) HTTPQueued(hc *reactor.HTTPConn) {
	c := hc.Conn()
	if h := stateOf(hc).http; !hc.BodyInArena() && len(h.r.Body) > 0 {
		// Only an inline body aliases the connection's input. A request
		// without one, or whose body is in the arena, keeps nothing of it:
		// it waits as it is, to be encoded straight into its worker's
		// output as one that did not wait.
		h.encode()
	}
	ls := &p.loops[c.Loop().Index()]
	ls.waiting = append(ls.waiting, c.ID())
	p.httpWaiting.Add(1)
}

// HTTPConcurrent implements reactor.HTTPBackend.
func (p *Plane) HTTPConcurrent() bool { return p.disp.takesConcurrent() }

// HTTPBody implements reactor.HTTPBackend: the pieces go to the worker as
// TypeRequestBody frames, the last with FlagEnd when end.
func (p *Plane) HTTPBody(hc *reactor.HTTPConn, pieces [][]byte, end bool) {
	h := stateOf(hc).http
	if h.w == nil {
		return
	}
	var flags uint8
	if end {
		flags = ipc.FlagEnd
	}
	h.w.writeBodies(hc.Conn().Loop(), flags, hc.Conn().ID(), pieces, hc)
}

// HTTPCancel implements reactor.HTTPBackend: TypeCancel, once per request
// (and once more, with FlagEnd, when the connection closes, which also
// says that whatever more the worker sends is dropped and releases a
// handler waiting for flow-control credit).
func (p *Plane) HTTPCancel(hc *reactor.HTTPConn, closed bool) {
	h := stateOf(hc).http
	if h.w == nil || h.cancelled && !closed || h.closedSent {
		return
	}
	var flags uint8
	if closed {
		flags = ipc.FlagEnd
		h.closedSent = true
	}
	h.cancelled = true
	h.w.writeFlags(hc.Conn().Loop(), ipc.TypeCancel, flags, hc.Conn().ID(), nil)
}

// HTTPCredit implements reactor.HTTPBackend: a TypeWindow frame for the
// worker streaming the response.
func (p *Plane) HTTPCredit(hc *reactor.HTTPConn, n int64) {
	h := stateOf(hc).http
	if h.w == nil {
		return
	}
	var b [4]byte
	h.w.writeFlags(hc.Conn().Loop(), ipc.TypeWindow, 0, hc.Conn().ID(), ipc.AppendWindow(b[:0], uint32(n)))
}

// HTTPHeld implements reactor.HTTPBackend: no request is sent ahead
// (prefetch) to a worker whose answer is held back for a slow client.
func (p *Plane) HTTPHeld(hc *reactor.HTTPConn, on bool) {
	h := stateOf(hc).http
	switch {
	case on && h.holdW == nil && h.w != nil:
		h.holdW = h.w
		h.holdW.heldBack.Add(1)
	case !on && h.holdW != nil:
		h.holdW.heldBack.Add(-1)
		h.holdW = nil
	}
}

// HTTPEnd implements reactor.HTTPBackend.
func (p *Plane) HTTPEnd(hc *reactor.HTTPConn) {
	h := stateOf(hc).http
	p.HTTPHeld(hc, false)
	h.w = nil
}

// HTTPFields implements reactor.HTTPBackend.
func (p *Plane) HTTPFields(hc *reactor.HTTPConn, f logrus.Fields) {
	if w := stateOf(hc).http.w; w != nil {
		f["worker_id"], f["pid"] = w.slot, w.pid
	}
}

// takesConcurrent reports whether a worker is ready and every ready one
// takes concurrent requests (hello concurrency > 1): then a request may
// go to one before its body is whole.
func (d *dispatcher) takesConcurrent() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ok := false
	for _, w := range d.workers {
		if w == nil || w.state != stateReady {
			continue
		}
		if w.concurrency < 2 {
			return false
		}
		ok = true
	}
	return ok
}

// retrySoon runs retryHTTP on l at the end of its current iteration, once
// however many slots freed up in it. Runs on l: unlike Post, it costs no
// wake-up of the loop through its eventfd, which with workers of
// concurrency 1 (PHP) would be three system calls per request.
func (p *Plane) retrySoon(l *reactor.Loop) {
	if ls := &p.loops[l.Index()]; !ls.retry {
		ls.retry = true
		l.Defer(retryFlusher{p})
	}
}

type retryFlusher struct{ p *Plane }

func (f retryFlusher) Flush(l *reactor.Loop) {
	f.p.loops[l.Index()].retry = false
	f.p.retryHTTP(l, nil)
}

// retryHTTP dispatches, in order, the requests of this loop that wait for
// a worker. In modes 1 and 3 any worker with a free slot serves any
// request: the first that cannot go stops the rest. In the binding modes
// (2, 4, 5) each waits for its connection's worker: one that cannot go
// stays, and the next are tried. Runs on l.
func (p *Plane) retryHTTP(l *reactor.Loop, _ *reactor.Task) {
	ls := &p.loops[l.Index()]
	var kept []uint64 // waiting for a busy worker (binding modes)
	for len(ls.waiting) > 0 {
		id := ls.waiting[0]
		if c := l.Conn(id); c != nil && !c.Ctx.(*connState).http.hc.Redispatch() {
			if !binds(p.disp.httpMode) {
				return
			}
			kept = append(kept, id)
			ls.waiting = ls.waiting[1:]
			continue
		}
		ls.waiting = ls.waiting[1:]
		p.httpWaiting.Add(-1)
	}
	ls.waiting = kept
}

// OnTick implements reactor.Ticker: dispatch_timeout, the HTTP
// connections' timeouts (reactor.HTTPConn.Sweep), worker.request_timeout,
// and once a second the socket pairs that stopped draining.
func (p *Plane) OnTick(l *reactor.Loop) {
	now := l.Now()
	p.flushAccess(l)
	ls := &p.loops[l.Index()]
	if len(ls.waiting) > 0 {
		keep := ls.waiting[:0]
		for _, id := range ls.waiting {
			c := l.Conn(id)
			if c == nil {
				p.httpWaiting.Add(-1)
				continue
			}
			hc := c.Ctx.(*connState).http.hc
			if hc.Phase() != reactor.HTTPQueued {
				p.httpWaiting.Add(-1)
				continue
			}
			if now.Sub(hc.QueuedAt()) < p.cfg.DispatchTimeout.D() {
				keep = append(keep, id)
				p.waited(hc.QueuedAt(), now) // a dynamic pool grows (pool.go)
				continue
			}
			p.httpWaiting.Add(-1)
			p.countRejected(l, rejectDispatchTimeout)
			p.log.WithFields(hc.Fields()).WithField("dispatch_timeout", p.cfg.DispatchTimeout.D().String()).
				Warn("request refused with 503: no worker free within dispatch_timeout")
			hc.Error(http.StatusServiceUnavailable, "no worker free; retry shortly", "Retry-After: 1\r\n")
		}
		ls.waiting = keep
	}
	if now.Sub(ls.swept) < time.Second && !p.stopping.Load() {
		return
	}
	ls.swept = now
	if l.Index() == 0 {
		p.checkStuck(now) // once a second, for every worker
		p.flushReleases(l)
	}
	rt := p.cfg.Worker.RequestTimeout.D()
	l.EachConn(func(c *reactor.Conn) {
		st, ok := c.Ctx.(*connState)
		if !ok {
			return
		}
		p.checkSlow(c, st, now)
		if st.http == nil {
			if rt > 0 && !st.busySince.IsZero() && now.Sub(st.busySince) > rt {
				p.streamTimedOut(c, st)
			}
			return
		}
		h := st.http
		if h.hc.Sweep(now) || h.w == nil || rt <= 0 {
			return
		}
		var floor time.Time
		if h.w.prefetch > 0 {
			// Sent ahead, it waited for the event before it to end.
			floor = time.Unix(0, h.w.lastEnd.Load())
		}
		if h.hc.WorkerLate(now, floor) > rt {
			p.requestTimedOut(c, h)
		}
	})
}

// handedBack dispatches again a request a dying worker handed back
// unstarted (ipc.FlagRetry), or answers 503 when its body was already
// forwarded to that worker. Runs on c's loop.
func (p *Plane) handedBack(c *reactor.Conn, h *httpState) {
	log := p.log.WithFields(h.hc.Fields())
	if h.w != nil {
		log = log.WithFields(logrus.Fields{"worker_id": h.w.slot, "pid": h.w.pid})
	}
	if !h.canRetry || h.hc.Phase() != reactor.HTTPWait {
		log.Warn("request handed back unstarted by an exiting worker after its body went there; answered 503")
		p.countRejected(c.Loop(), rejectHandedBack)
		h.hc.Error(http.StatusServiceUnavailable, "the worker left before it started the request; retry", "Retry-After: 1\r\n")
		return
	}
	log.Info("request handed back unstarted by an exiting worker; sending it to another")
	h.payload, h.canRetry = append([]byte(nil), h.retry...), false
	if h.retryCGI {
		// The next worker may not take the CGI layout: back to the
		// default one, which every worker reads (header names come back
		// in canonical form; this happens only when a worker exits with
		// a request sent ahead to it).
		var r ipc.Request
		if err := ipc.DecodeRequestCGI(h.payload, &r); err != nil {
			log.WithError(err).Error("request handed back in a layout the master cannot read back; answered 503")
			p.countRejected(c.Loop(), rejectHandedBack)
			h.hc.Error(http.StatusServiceUnavailable, "the worker left before it started the request; retry", "Retry-After: 1\r\n")
			return
		}
		h.payload, h.retryCGI = ipc.AppendRequest(nil, &r), false
	}
	h.hc.Requeue()
	ls := &p.loops[c.Loop().Index()]
	ls.waiting = append(ls.waiting, c.ID())
	p.httpWaiting.Add(1)
	p.retrySoon(c.Loop())
}

// httpResponse hands a TypeResponse from a worker to the connection.
// Runs on c's loop.
func (p *Plane) httpResponse(c *reactor.Conn, flags uint8, payload []byte) {
	p.respond(c, flags, payload, nil)
}

// respond is httpResponse with the payload decoded already (resp, whose
// body may be in the worker's answer arena) or not (resp nil).
func (p *Plane) respond(c *reactor.Conn, flags uint8, payload []byte, resp *ipc.ResponseView) {
	h := c.Ctx.(*connState).http
	if h == nil || h.hc.Started() || h.hc.Phase() < reactor.HTTPBody {
		return // nothing asked for it (a late answer after a 503, or garbage)
	}
	if flags&ipc.FlagRetry != 0 {
		p.handedBack(c, h)
		return
	}
	h.canRetry = false
	if resp == nil {
		// Decoded in place: header names, values and the body alias payload.
		resp = &p.loops[c.Loop().Index()].resp
		if err := resp.Decode(payload); err != nil {
			p.log.WithFields(logrus.Fields{"conn": c.ID(), "error": err.Error()}).Warn("undecodable response from a worker; answering 502")
			h.hc.Error(http.StatusBadGateway, "the worker sent an undecodable response", "")
			return
		}
	}
	h.hc.Respond(resp.Status, resp.Headers, resp.Body, flags&ipc.FlagEnd != 0, flags&ipc.FlagAbort != 0)
}

// httpResponseBody hands a TypeResponseBody from a worker to the
// connection. Runs on c's loop.
func (p *Plane) httpResponseBody(c *reactor.Conn, flags uint8, payload []byte) {
	if h := c.Ctx.(*connState).http; h != nil {
		h.hc.RespondBody(payload, flags&ipc.FlagEnd != 0, flags&ipc.FlagAbort != 0)
	}
}

// requestCredit takes worker w's credit for c's request body. Runs on c's
// loop.
func (p *Plane) requestCredit(c *reactor.Conn, w *Worker, n int) {
	if h := c.Ctx.(*connState).http; h != nil && h.w == w {
		h.hc.RequestCredit(int64(n))
	}
}

// failHTTP answers 502 to a request whose worker went away before it
// answered, and closes; it reports false for connections that are not
// waiting for an HTTP answer. Runs on c's loop.
func (p *Plane) failHTTP(c *reactor.Conn, err error) bool {
	h := c.Ctx.(*connState).http
	if h == nil {
		return false
	}
	fields := logrus.Fields{}
	var gone *errWorkerGone
	if errors.As(err, &gone) {
		fields["worker_id"], fields["pid"] = gone.slot, gone.pid
	}
	return h.hc.WorkerGone(err, fields)
}

// requestTimedOut answers 504 to a request its worker has held longer than
// worker.request_timeout, and replaces the worker: a handler that hangs
// would hold its slot (and maybe others) for ever. Runs on c's loop.
func (p *Plane) requestTimedOut(c *reactor.Conn, h *httpState) {
	w := h.w
	timeout := p.cfg.Worker.RequestTimeout.D()
	f := h.hc.Fields()
	f["worker_id"], f["pid"], f["request_timeout"] = w.slot, w.pid, timeout.String()
	p.log.WithFields(f).Error("request answered 504: worker.request_timeout exceeded; replacing the worker")
	// This request is answered here, not failed with the worker's others.
	p.disp.done(c.Loop(), w, c.ID())
	p.HTTPEnd(h.hc)
	h.hc.Error(http.StatusGatewayTimeout, "the handler did not answer within worker.request_timeout", "")
	p.takeOut(w, fmt.Sprintf("request_timeout (%s) exceeded by %s %s", timeout, f["method"], f["target"]), true,
		"worker killed: a request exceeded worker.request_timeout; starting a successor")
}

// HTTPDone implements reactor.HTTPBackend: a request is over; the metrics
// count it (metrics.go) and the access log writes its line (access.go).
func (p *Plane) HTTPDone(hc *reactor.HTTPConn, status int, bytes int64) {
	p.countRequest(hc, status, bytes)
	p.logRequest(hc, status, bytes)
}
