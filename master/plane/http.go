package plane

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// HTTP in the master: the reactor hands an HTTP connection's bytes to
// OnStream, which parses request heads and bodies with reactor's parser,
// sends each request to a worker as one event (TypeRequest, body frames),
// and writes the worker's response frames back as HTTP/1.1. One request of
// a connection is at a worker at a time; pipelined requests wait, unread,
// in the connection's input and are answered in order.
//
// Slow clients pin no worker, as behind nginx (client_body_buffer_size,
// proxy_buffering, send_timeout), Swoole or RoadRunner:
//
//   - A request body that is not in the head's read is buffered by the
//     master (phBuffer) and the request dispatched once it is whole, within
//     http_body_timeout from the end of the head (a total deadline, not
//     reset by each byte; 408 past it). To a pool whose workers take
//     concurrent requests (hello concurrency > 1, the Go SDK) a body larger
//     than http_body_buffer_size is dispatched when that much is buffered
//     and the rest streamed under the same deadline, at most
//     http_body_buffer_size ahead of the worker: one slow upload then holds
//     one of many slots, and the master's memory per connection stays
//     bounded. Workers of concurrency 1 (PHP) get a request only with its
//     whole body, held in memory up to package_max_length (as Swoole does):
//     spooling to a temp file (nginx's client_body_temp) would put blocking
//     file I/O in the reactor loop, or a thread pool beside it, for bodies
//     the default package_max_length (2 MiB) keeps small; the global bound
//     below keeps the total in check instead.
//   - Answers are buffered by the master: a flow-control worker is credited
//     as its body frames arrive while the connection's unwritten output
//     stays under buffer_output_size less a window, so a normal-sized
//     answer ends at once however slowly its client reads; beyond that the
//     handler is held back by flow control. While output waits for the
//     client, it must take at least http_send_timeout×http_send_min_rate
//     bytes (one at least) in every http_send_timeout, or the connection is
//     closed and the handler cancelled: nginx's send_timeout alone lets a
//     client reading a byte a second hold a connection for ever.
//   - Bodies and answers held by the master count against
//     http_max_buffered across all connections: past it, body bytes are
//     refused (503, the connection closed) and answers are held back by
//     flow control as for a slow reader, each with a logged reason.

// httpPhase is where a connection is in its current request.
type httpPhase uint8

const (
	phHead   httpPhase = iota // reading a request head (or idle between requests)
	phBuffer                  // head read, the master buffers the body before dispatch
	phQueued                  // head read, waiting for a worker with a free slot
	phBody                    // at a worker, forwarding the request body
	phWait                    // at a worker, body done, waiting for the response to end
)

// drainIdleGrace is how long a draining master keeps an idle keep-alive
// connection open, in case a request is already on its way.
const drainIdleGrace = 200 * time.Millisecond

// pipelineMax bounds the unread bytes of requests pipelined behind the one
// in progress before the connection stops being read.
const pipelineMax = 256 << 10

// httpState is an HTTP connection's state, in connState.http.
type httpState struct {
	p      *reactor.HTTPParser
	phase  httpPhase
	w      *Worker // the worker serving the current request
	method string
	target string
	head   bool // HEAD: the response body is not sent
	// bodyFollows: body frames go after the request; expect100: the
	// client waits for 100 Continue before it sends the body.
	bodyFollows bool
	expect100   bool
	cancelled   bool      // TypeCancel sent for the current request
	closedSent  bool      // … with FlagEnd: the connection is closed
	sentAt      time.Time // when the current request went to its worker
	keep        bool      // the connection stays open after this response
	http10      bool
	// pending is the encoded Request while it waits for a worker; retry
	// keeps a copy (canRetry) while it waits at a worker that prefetches,
	// which may hand it back unstarted (ipc.FlagRetry). retry's buffer is
	// reused from request to request.
	pending  []byte
	retry    []byte
	canRetry bool
	// headSince is when the current head's first byte arrived (zero while
	// idle); idleSince when the connection became idle.
	headSince time.Time
	idleSince time.Time
	queuedAt  time.Time
	remote    string // the client's address, formatted once per connection
	// Response state.
	started bool // status line written
	chunked bool
	close   bool // close once the response is written
	// Framing owned by the master: noBody drops the handler's body (HEAD,
	// 204, 304) and warned says it was logged; declared is the handler's
	// Content-Length (-1 none) and sent the body bytes written against it;
	// cut: the declared bytes are all out and the connection closes.
	noBody   bool
	warned   bool
	cut      bool
	declared int64
	sent     int64
	// Flow control (ipc.FlowWindow) with a worker whose hello set Flow:
	// request body bytes forwarded and credited, response body bytes
	// received and credited.
	reqSent, reqCredit   int64
	respBody, respCredit int64
	windowWait           bool      // forwarding the body waits for the worker's credit
	waitFrom             time.Time // … since then
	bodyAt               time.Time // when the client last sent body bytes
	lastFrom             time.Time // when the worker last sent a response frame
	// The request body buffered by the master: body[bodyOff:] is not yet
	// forwarded; bodyDone: the parser has read its end; bodyStart: when
	// the head ended (http_body_timeout), moved on by the time the worker
	// held the body back.
	body      []byte
	bodyOff   int
	bodyDone  bool
	bodyStart time.Time
	// Output: outTotal bytes handed to c.Write; the send timeout's period
	// began at sendSince (zero while nothing waits for the client), with
	// sendBase bytes written by then. acctBody and acctOut are this
	// connection's bytes counted in Master.httpBuffered.
	outTotal  int64
	respStart int64 // outTotal when the current response began
	bigOut    bool  // a response over untrackedOut was written: the kernel may hold some of it (Conn.Unsent)
	sendSince time.Time
	sendBase  int64
	acctBody  int64
	acctOut   int64
	// holdW is the worker whose answer the master holds back for this
	// slow client (worker.heldBack counts it), nil if none.
	holdW *Worker
}

// setHeld records whether the handler of h's response waits for credit
// the master withholds because the client is slow: no request is sent
// ahead (prefetch) to a worker held so.
func (h *httpState) setHeld(on bool) {
	switch {
	case on && h.holdW == nil && h.w != nil:
		h.holdW = h.w
		h.holdW.heldBack.Add(1)
	case !on && h.holdW != nil:
		h.holdW.heldBack.Add(-1)
		h.holdW = nil
	}
}

func (p *Plane) newHTTPState(c *reactor.Conn) *httpState {
	p.httpConns.Add(1)
	l := c.Loop()
	c.NotifyWritten(httpWritten)
	return &httpState{
		remote: c.RemoteAddr(),
		p: reactor.NewHTTPParser(reactor.HTTPLimits{MaxHeaderBytes: int(p.cfg.HTTPMaxHeaderSize),
			MaxBodyBytes: int64(p.cfg.PackageMaxLength)}),
		keep:      true,
		idleSince: l.Now(),
	}
}

// httpWritten runs after each flush of an HTTP connection that wrote
// (reactor.Conn.NotifyWritten): the master's count of buffered answers
// follows what left, and a streaming worker gets credit for it.
func httpWritten(c *reactor.Conn) {
	st := c.Ctx.(*connState)
	if h := st.http; h != nil {
		st.p.syncOut(c, h, true)
		st.p.creditResponse(c, h)
	}
}

// OnStream implements reactor.StreamHandler for HTTP connections.
func (p *Plane) OnStream(c *reactor.Conn, data []byte) int {
	st := c.Ctx.(*connState)
	h := st.http
	used := 0
	for !c.Closed() {
		switch h.phase {
		case phHead:
			if used == len(data) {
				return used
			}
			if h.headSince.IsZero() {
				h.headSince = c.Loop().Now()
			}
			n, req, err := h.p.ParseHead(data[used:])
			if err != nil {
				p.httpReject(c, h, err)
				return len(data)
			}
			if n == 0 {
				return used
			}
			used += n
			h.headSince = time.Time{}
			used += p.startRequest(c, st, req, data[used:])
		case phBuffer, phBody:
			n, ok := p.takeBody(c, h, data[used:])
			used += n
			if !ok || c.Closed() {
				return len(data)
			}
			if h.phase == phBuffer && (h.bodyDone || len(h.body) >= int(p.cfg.HTTPBodyBufferSize) && p.disp.takesConcurrent()) {
				if !p.dispatchBody(c, st) {
					continue // queued: what follows stays unread
				}
			}
			if h.phase == phBody {
				p.pumpBody(c, h)
			}
			if h.phase == phWait || h.phase == phQueued {
				continue
			}
			if used < len(data) {
				// The buffer is full: the rest waits in the client's socket
				// until the worker takes some.
				c.PauseRead()
			}
			return used
		default: // queued or waiting: what follows stays unread for now
			if len(data)-used > pipelineMax {
				c.PauseRead()
			}
			return used
		}
	}
	return len(data)
}

// startRequest turns a parsed head into a Request event and dispatches it;
// it returns how many bytes of rest (the body) it consumed inline.
func (p *Plane) startRequest(c *reactor.Conn, st *connState, req *reactor.HTTPRequest, rest []byte) int {
	h := st.http
	h.method, h.target = req.Method, req.Target
	h.head = req.Method == http.MethodHead
	h.keep = req.KeepAlive && !p.stopping.Load()
	h.http10 = req.Proto == "HTTP/1.0"
	h.started, h.chunked, h.close, h.cancelled, h.closedSent = false, false, !h.keep, false, false
	h.noBody, h.warned, h.cut, h.declared, h.sent = false, false, false, -1, 0
	h.respStart = h.outTotal
	h.reqSent, h.reqCredit, h.respBody, h.respCredit, h.windowWait = 0, 0, 0, 0, false
	r := ipc.Request{Method: req.Method, Target: req.Target, Proto: req.Proto, Headers: req.Headers,
		ContentLength: req.ContentLength, Remote: h.remote, Listener: c.Listener().Index}
	used := 0
	switch {
	case req.ContentLength == 0 && !req.Chunked:
		h.phase = phWait
	case !req.Chunked && req.ContentLength <= ipc.MaxInlineBody && int64(len(rest)) >= req.ContentLength:
		// The whole body is here: it travels inside the request.
		n, body, done, err := h.p.Body(rest)
		if err != nil || !done {
			p.httpReject(c, h, fmt.Errorf("%w: body", errBadBody))
			return len(rest)
		}
		r.Body, used = body, n
		h.phase = phWait
	default:
		// The body is buffered first (see the top of this file).
		r.BodyFollows = true
		h.phase = phBuffer
	}
	// The payload is built in a per-loop buffer: dispatching copies it into
	// the worker's output, and a queued request keeps its own copy.
	ls := &p.loops[c.Loop().Index()]
	ls.reqBuf = ipc.AppendRequest(ls.reqBuf[:0], &r)
	payload := ls.reqBuf
	h.bodyFollows, h.expect100 = r.BodyFollows, req.Expect100
	if h.phase == phBuffer {
		h.pending = append(h.pending[:0], payload...)
		h.body, h.bodyOff, h.bodyDone = h.body[:0], 0, false
		h.bodyStart, h.bodyAt = c.Loop().Now(), c.Loop().Now()
		if h.expect100 {
			// As nginx: the client is asked for the body when the master
			// starts reading it.
			h.expect100 = false
			p.write(c, h, continue100)
		}
		return used
	}
	if !p.sendRequest(c, st, payload) {
		// No worker with a free slot: wait, body unread, up to dispatch_timeout.
		h.pending = append([]byte(nil), payload...)
		h.phase = phQueued
		h.queuedAt = c.Loop().Now()
		ls.waiting = append(ls.waiting, c.ID())
		p.httpWaiting.Add(1)
		return used
	}
	p.requestSent(c, h, payload)
	return used
}

// requestSent follows a dispatched request: the body is forwarded next,
// after a 100 Continue when the client waits for one.
func (p *Plane) requestSent(c *reactor.Conn, h *httpState, payload []byte) {
	h.canRetry = h.w.prefetch > 0 && !h.bodyFollows
	if h.canRetry {
		h.retry = append(h.retry[:0], payload...)
	}
	h.pending = nil
	h.sentAt = c.Loop().Now()
	h.bodyAt = h.sentAt
	if !h.bodyFollows {
		h.phase = phWait
		return
	}
	h.phase = phBody
	if h.expect100 {
		p.write(c, h, continue100)
	}
}

// write hands b to c and keeps the output accounting (send timeout,
// http_max_buffered).
func (p *Plane) write(c *reactor.Conn, h *httpState, b []byte) {
	c.Write(b)
	p.wrote(c, h, len(b))
}

// wrote keeps the output accounting after n bytes were handed to c.
func (p *Plane) wrote(c *reactor.Conn, h *httpState, n int) {
	h.outTotal += int64(n)
	if !h.bigOut && h.outTotal-h.respStart > untrackedOut {
		h.bigOut = true
	}
	p.syncOut(c, h, false)
}

// untrackedOut is how much unwritten output a connection may hold before
// Master.httpBuffered counts it at each write (a flush that leaves output
// behind always counts it): a small answer is usually written within the
// loop iteration that made it, and counting it would cost two atomic
// additions per request.
const untrackedOut = 64 << 10

// syncOut brings c's unwritten output into Master.httpBuffered.
func (p *Plane) syncOut(c *reactor.Conn, h *httpState, flushed bool) {
	out := int64(c.Buffered())
	if d := out - h.acctOut; d != 0 && (flushed || h.acctOut != 0 || out > untrackedOut) {
		h.acctOut = out
		p.noteBuffered(p.httpBuffered.Add(d))
	}
}

// noteBuffered logs when the bytes the master holds for HTTP connections
// reach http_max_buffered, and when they are back under half of it.
func (p *Plane) noteBuffered(total int64) {
	lim := int64(p.cfg.HTTPMaxBuffered)
	switch {
	case total >= lim && p.httpOver.CompareAndSwap(false, true):
		p.log.WithFields(logrus.Fields{"buffered": total, "http_max_buffered": lim}).
			Warn("HTTP buffers full: request bodies are refused with 503 and answers held back until clients take them")
	case total < lim/2 && p.httpOver.Load() && p.httpOver.CompareAndSwap(true, false):
		p.log.WithFields(logrus.Fields{"buffered": total, "http_max_buffered": lim}).Info("HTTP buffers back under half of http_max_buffered")
	}
}

// releaseHTTP takes a closed connection's bytes out of Master.httpBuffered.
func (p *Plane) releaseHTTP(h *httpState) {
	h.setHeld(false)
	if n := h.acctBody + h.acctOut; n != 0 {
		h.acctBody, h.acctOut = 0, 0
		p.noteBuffered(p.httpBuffered.Add(-n))
	}
	putBody(h.body)
	h.body = nil
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

// takeBody reads body bytes from data into h.body while the buffer has
// room: up to http_body_buffer_size not yet forwarded once the request is
// at a worker (or about to go to one that takes concurrent requests),
// otherwise the whole body (the parser stops it at package_max_length).
// It returns what it consumed, and false when the connection was answered
// (malformed body, http_max_buffered).
func (p *Plane) takeBody(c *reactor.Conn, h *httpState, data []byte) (int, bool) {
	used := 0
	limit := int(p.cfg.HTTPBodyBufferSize)
	if h.phase == phBuffer && !p.disp.takesConcurrent() {
		limit = int(p.cfg.PackageMaxLength) + 1
	}
	for !h.bodyDone && used < len(data) {
		room := limit - (len(h.body) - h.bodyOff)
		if room <= 0 {
			break
		}
		// Decoded bytes never outnumber the input; a little more than
		// room lets a chunk header through when room is smaller.
		in := data[used:]
		if cut := max(room, 16<<10); len(in) > cut {
			in = in[:cut]
		}
		n, piece, done, err := h.p.Body(in)
		if err != nil {
			p.httpReject(c, h, err)
			return len(data), false
		}
		used += n
		if n > 0 {
			h.bodyAt = c.Loop().Now()
		}
		if len(piece) > 0 {
			total := p.httpBuffered.Add(int64(len(piece)))
			p.noteBuffered(total)
			if total > int64(p.cfg.HTTPMaxBuffered) {
				p.httpBuffered.Add(-int64(len(piece)))
				p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "method": h.method, "target": h.target,
					"http_max_buffered": int64(p.cfg.HTTPMaxBuffered)}).
					Warn("request refused with 503: the master holds http_max_buffered bytes of bodies and answers")
				p.cancelHTTP(c, h, true)
				p.httpError(c, h, http.StatusServiceUnavailable, "the server is busy; retry shortly", "Retry-After: 1\r\n")
				return len(data), false
			}
			h.acctBody += int64(len(piece))
			if cap(h.body) == 0 {
				h.body = getBody()
			}
			h.body = append(h.body, piece...)
		}
		if done {
			h.bodyDone = true
		}
		if n == 0 && !done {
			break
		}
	}
	return used, true
}

// dispatchBody sends a request whose body the master buffered to a worker,
// then what it has of the body; false when it waits for a free worker.
func (p *Plane) dispatchBody(c *reactor.Conn, st *connState) bool {
	h := st.http
	if !p.sendRequest(c, st, h.pending) {
		h.phase = phQueued
		h.queuedAt = c.Loop().Now()
		ls := &p.loops[c.Loop().Index()]
		ls.waiting = append(ls.waiting, c.ID())
		p.httpWaiting.Add(1)
		return false
	}
	p.requestSent(c, h, h.pending)
	return true
}

// maxBodyFrame is the largest request body frame the master forwards.
const maxBodyFrame = 64 << 10

// pumpBody forwards the buffered body to the worker, within its
// flow-control window, and ends it (FlagEnd) once the parser has read the
// body's end: the request then waits for its answer (phWait). Runs on c's
// loop.
func (p *Plane) pumpBody(c *reactor.Conn, h *httpState) {
	// The frames of one call go out together (worker.writeBodies).
	var batch [8][]byte
	pieces := batch[:0]
	var flags uint8
	for h.phase == phBody {
		pend := h.body[h.bodyOff:]
		if len(pend) == 0 && !h.bodyDone {
			break
		}
		piece := pend[:min(len(pend), maxBodyFrame)]
		if h.w.flow {
			room := ipc.FlowWindow - (h.reqSent - h.reqCredit)
			if room <= 0 && len(pend) > 0 {
				if !h.windowWait {
					h.windowWait, h.waitFrom = true, c.Loop().Now()
				}
				break
			}
			piece = piece[:min(int64(len(piece)), max(room, 0))]
		}
		if h.bodyDone && len(piece) == len(pend) {
			flags = ipc.FlagEnd
			h.phase = phWait
		}
		pieces = append(pieces, piece)
		h.bodyOff += len(piece)
		h.reqSent += int64(len(piece))
		h.acctBody -= int64(len(piece))
		p.noteBuffered(p.httpBuffered.Add(-int64(len(piece))))
	}
	if len(pieces) > 0 {
		h.w.writeBodies(c.Loop(), flags, c.ID(), pieces)
	}
	switch {
	case h.phase != phBody:
		putBody(h.body) // an idle connection pins no buffer
		h.body, h.bodyOff = nil, 0
	case h.bodyOff == len(h.body):
		if cap(h.body) > maxBodyFrame {
			putBody(h.body)
			h.body = nil
		}
		h.body, h.bodyOff = h.body[:0], 0
	}
}

// bodyPool holds request body buffers (*[]byte) between requests: a body
// buffered by the master is then written into memory already mapped, not
// into a buffer grown by copies from 64 KiB and cleared by the runtime
// each time. The garbage collector empties it when the buffers go unused.
var bodyPool sync.Pool

// getBody returns an empty body buffer, from the pool when it has one.
func getBody() []byte {
	if bp, ok := bodyPool.Get().(*[]byte); ok {
		return (*bp)[:0]
	}
	return nil
}

// putBody gives a body buffer no longer referenced back to the pool; small
// ones are left to the collector.
func putBody(b []byte) {
	if cap(b) >= maxBodyFrame && cap(b) <= maxPooledBody {
		b = b[:0]
		bodyPool.Put(&b)
	}
}

// maxPooledBody is the largest request body buffer kept in bodyPool: a
// body of package_max_length's default (2 MiB) and some growth room.
const maxPooledBody = 4 << 20

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// lastChunk ends a chunked response.
var lastChunk = []byte("0\r\n\r\n")

var errBadBody = errors.New("malformed request body")

// sendRequest dispatches an encoded Request to a worker with a free slot.
func (p *Plane) sendRequest(c *reactor.Conn, st *connState, payload []byte) bool {
	w := p.disp.dispatchHTTP(c, st, payload)
	if w == nil {
		return false
	}
	st.http.w = w
	return true
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
		c := l.Conn(id)
		if c != nil {
			st := c.Ctx.(*connState)
			h := st.http
			if h.phase == phQueued {
				if !p.sendRequest(c, st, h.pending) {
					if !binds(p.disp.httpMode) {
						return
					}
					kept = append(kept, id)
					ls.waiting = ls.waiting[1:]
					continue
				}
				if !h.bodyDone && h.bodyFollows {
					// Waiting for a worker is not the client's time.
					h.bodyStart = h.bodyStart.Add(l.Now().Sub(h.queuedAt))
				}
				p.requestSent(c, h, h.pending)
				if h.phase == phBody {
					p.pumpBody(c, h)
				}
				c.ResumeRead()
				c.Kick() // forward the body that waited
			}
		}
		ls.waiting = ls.waiting[1:]
		p.httpWaiting.Add(-1)
	}
	ls.waiting = kept
}

// OnTick implements reactor.Ticker: dispatch_timeout, header and idle
// timeouts of HTTP connections.
func (p *Plane) OnTick(l *reactor.Loop) {
	now := l.Now()
	ls := &p.loops[l.Index()]
	if len(ls.waiting) > 0 {
		keep := ls.waiting[:0]
		for _, id := range ls.waiting {
			c := l.Conn(id)
			if c == nil {
				p.httpWaiting.Add(-1)
				continue
			}
			h := c.Ctx.(*connState).http
			if h.phase != phQueued {
				p.httpWaiting.Add(-1)
				continue
			}
			if now.Sub(h.queuedAt) < p.cfg.DispatchTimeout.D() {
				keep = append(keep, id)
				continue
			}
			p.httpWaiting.Add(-1)
			p.log.WithFields(logrus.Fields{"conn": id, "remote": c.RemoteAddr(), "method": h.method, "target": h.target,
				"dispatch_timeout": p.cfg.DispatchTimeout.D().String()}).
				Warn("request refused with 503: no worker free within dispatch_timeout")
			p.httpError(c, h, http.StatusServiceUnavailable, "no worker free; retry shortly", "Retry-After: 1\r\n")
		}
		ls.waiting = keep
	}
	if now.Sub(ls.swept) < time.Second && !p.stopping.Load() {
		return
	}
	ls.swept = now
	if l.Index() == 0 {
		p.checkStuck(now) // once a second, for every worker
	}
	l.EachConn(func(c *reactor.Conn) {
		st, ok := c.Ctx.(*connState)
		if !ok {
			return
		}
		if st.http == nil {
			if rt := p.cfg.Worker.RequestTimeout.D(); rt > 0 && !st.busySince.IsZero() && now.Sub(st.busySince) > rt {
				p.streamTimedOut(c, st)
			}
			return
		}
		h := st.http
		if p.sendTimedOut(c, h, now) {
			return
		}
		if c.Lingering() {
			// Answered and closing: the reactor bounds the lingering close;
			// a draining master does not wait for it.
			if p.stopping.Load() {
				c.Close(nil)
			}
			return
		}
		reading := h.phase == phBuffer || h.phase == phBody && !h.bodyDone && !h.windowWait
		switch {
		case reading && now.Sub(h.bodyStart) > p.cfg.HTTPBodyTimeout.D():
			p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "method": h.method, "target": h.target,
				"received": h.reqSent + int64(len(h.body)-h.bodyOff), "http_body_timeout": p.cfg.HTTPBodyTimeout.D().String()}).
				Info("request refused with 408: its body was not complete within http_body_timeout; connection closed")
			p.cancelHTTP(c, h, true)
			p.httpError(c, h, http.StatusRequestTimeout, "the request body took too long", "")
		case h.phase == phHead && !h.headSince.IsZero() && now.Sub(h.headSince) > p.cfg.HTTPHeaderTimeout.D():
			p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "http_header_timeout": p.cfg.HTTPHeaderTimeout.D().String()}).
				Info("connection closed: request headers not complete within http_header_timeout")
			p.httpError(c, h, http.StatusRequestTimeout, "request headers took too long", "")
		case h.phase == phHead && h.headSince.IsZero() && c.Pending() == 0 && now.Sub(h.idleSince) > p.cfg.HTTPIdleTimeout.D():
			c.Close(nil)
		case p.stopping.Load() && h.phase == phHead && h.headSince.IsZero() && c.Pending() == 0 && now.Sub(h.idleSince) > drainIdleGrace:
			// Draining: an idle keep-alive connection had its chance to
			// send one more request (answered with Connection: close).
			c.Close(nil)
		case reading && now.Sub(h.bodyAt) > p.cfg.HTTPHeaderTimeout.D():
			p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "method": h.method, "target": h.target,
				"http_header_timeout": p.cfg.HTTPHeaderTimeout.D().String()}).
				Info("connection closed: the request body stalled for longer than http_header_timeout; the handler's context is cancelled")
			p.cancelHTTP(c, h, true)
			p.httpError(c, h, http.StatusRequestTimeout, "the request body stalled", "")
		case h.w != nil && p.cfg.Worker.RequestTimeout > 0 && p.workerLate(c, h, now) > p.cfg.Worker.RequestTimeout.D():
			p.requestTimedOut(c, h)
		}
	})
}

// sendTimedOut closes c when its client does not take what was written
// for it: at least http_send_timeout×http_send_min_rate bytes (and one)
// in every http_send_timeout while output waits, in the master's buffer or
// (after a large answer) unacknowledged in the kernel's, where a whole
// answer of a few MiB can sit unread. The handler, if still at it, is
// cancelled. Runs on c's loop, once a second.
func (p *Plane) sendTimedOut(c *reactor.Conn, h *httpState, now time.Time) bool {
	pending := c.Buffered()
	if h.bigOut {
		k := c.Unsent()
		if k == 0 && pending == 0 {
			h.bigOut = false
		}
		pending += k
	}
	if pending == 0 {
		h.sendSince = time.Time{}
		return false
	}
	wrote := h.outTotal - int64(pending)
	timeout := p.cfg.HTTPSendTimeout.D()
	switch {
	case h.sendSince.IsZero():
		h.sendSince, h.sendBase = now, wrote
		return false
	case now.Sub(h.sendSince) < timeout:
		return false
	case wrote-h.sendBase >= max(1, int64(p.cfg.HTTPSendMinRate)*int64(timeout/time.Second)):
		h.sendSince, h.sendBase = now, wrote
		return false
	}
	f := p.respFields(c, h)
	f["unwritten"], f["taken"] = pending, wrote-h.sendBase
	f["http_send_timeout"], f["http_send_min_rate"] = timeout.String(), int64(p.cfg.HTTPSendMinRate)
	p.log.WithFields(f).Info("connection closed: the client did not take its answer at http_send_min_rate within http_send_timeout; the handler's context is cancelled")
	p.cancelHTTP(c, h, true)
	c.Abort(nil) // what the kernel holds for it is dropped too
	return true
}

// workerLate is how long the worker serving c's request has kept the client
// waiting through no fault of the client: since it had the whole request
// (or, while its body window is full, since it last got a piece), or,
// once the response started, since its last frame — unless it waits for
// the client to take what it sent (flow control). Like nginx's
// proxy_read_timeout, a streamed response may last as long as it keeps
// sending.
func (p *Plane) workerLate(c *reactor.Conn, h *httpState, now time.Time) time.Duration {
	switch {
	case h.phase == phBody && !h.windowWait:
		return 0 // the worker waits for the client's body
	case !h.started:
		start := h.bodyAt
		if h.w.prefetch > 0 {
			// Sent ahead, it waited for the event before it to end.
			if end := time.Unix(0, h.w.lastEnd.Load()); end.After(start) {
				start = end
			}
		}
		return now.Sub(start)
	case h.w.flow && h.respBody-h.respCredit >= ipc.FlowWindow || c.Buffered() > 0 && !h.w.flow:
		return 0 // the client is slow to read
	}
	return now.Sub(h.lastFrom)
}

// httpReject answers a request the parser refused and closes.
func (p *Plane) httpReject(c *reactor.Conn, h *httpState, err error) {
	status := http.StatusBadRequest
	var he *reactor.HTTPError
	if errors.As(err, &he) {
		status = he.Status
	}
	p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "status": status, "reason": err.Error()}).
		Info("bad request refused")
	if h.started {
		c.Close(err)
		return
	}
	p.httpError(c, h, status, err.Error(), "")
}

// httpError writes a short plain-text error response and closes the
// connection once it is written. The close lingers (Conn.CloseLingering):
// a client still sending what the master refused reads the answer and a
// clean end of stream instead of a reset. A 408 does not linger: its
// client is the slow one, and has had http_header_timeout or
// http_body_timeout already.
func (p *Plane) httpError(c *reactor.Conn, h *httpState, status int, msg, extra string) {
	if h.started {
		c.Close(fmt.Errorf("%d %s", status, msg))
		return
	}
	h.started = true
	body := strconv.Itoa(status) + " " + http.StatusText(status) + ": " + msg + "\n"
	ls := &p.loops[c.Loop().Index()]
	b := appendStatusLine(ls.scratch[:0], status)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nConnection: close\r\n"...)
	b = append(b, extra...)
	b = p.appendDateHeader(b, c.Loop())
	b = append(b, "\r\n"...)
	if !h.head {
		b = append(b, body...)
	}
	ls.scratch = b
	p.write(c, h, b)
	if status == http.StatusRequestTimeout {
		c.CloseWhenFlushed()
		return
	}
	c.CloseLingering()
}

// handedBack dispatches again a request a dying worker handed back
// unstarted (ipc.FlagRetry), or answers 503 when its body was already
// forwarded to that worker. Runs on c's loop.
func (p *Plane) handedBack(c *reactor.Conn, h *httpState) {
	log := p.log.WithFields(logrus.Fields{"conn": c.ID(), "method": h.method, "target": h.target})
	if h.w != nil {
		log = log.WithFields(logrus.Fields{"worker_id": h.w.slot, "pid": h.w.pid})
	}
	if !h.canRetry || h.phase != phWait {
		log.Warn("request handed back unstarted by an exiting worker after its body went there; answered 503")
		p.httpError(c, h, http.StatusServiceUnavailable, "the worker left before it started the request; retry", "Retry-After: 1\r\n")
		return
	}
	log.Info("request handed back unstarted by an exiting worker; sending it to another")
	h.pending, h.canRetry = append([]byte(nil), h.retry...), false
	h.phase = phQueued
	h.queuedAt = c.Loop().Now()
	ls := &p.loops[c.Loop().Index()]
	ls.waiting = append(ls.waiting, c.ID())
	p.httpWaiting.Add(1)
	p.retrySoon(c.Loop())
}

// httpResponse writes a TypeResponse from a worker. Runs on c's loop.
func (p *Plane) httpResponse(c *reactor.Conn, flags uint8, payload []byte) {
	st := c.Ctx.(*connState)
	h := st.http
	if h == nil || h.started || h.phase < phBody {
		return // nothing asked for it (a late answer after a 503, or garbage)
	}
	if flags&ipc.FlagRetry != 0 {
		p.handedBack(c, h)
		return
	}
	h.canRetry = false
	// Decoded in place: header names, values and the body alias payload.
	ls := &p.loops[c.Loop().Index()]
	resp := &ls.resp
	if err := resp.Decode(payload); err != nil {
		p.log.WithFields(logrus.Fields{"conn": c.ID(), "error": err.Error()}).Warn("undecodable response from a worker; answering 502")
		p.httpError(c, h, http.StatusBadGateway, "the worker sent an undecodable response", "")
		return
	}
	end := flags&ipc.FlagEnd != 0
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 999 {
		// A 1xx is interim (the master sends 100 Continue itself): as the
		// final answer it would leave the client waiting for another.
		p.log.WithFields(p.respFields(c, h)).WithField("status", status).
			Warn("response refused with 502: the handler's status is not a final one")
		h.close = true
		p.httpError(c, h, http.StatusBadGateway, "the handler answered with status "+strconv.Itoa(status), "")
		return
	}
	if h.phase == phBody {
		// Answered before the body was read: the rest of it cannot be told
		// from a next request cheaply, so the connection closes afterwards.
		h.close = true
	}
	if p.stopping.Load() {
		h.close = true
	}
	h.started = true
	h.lastFrom = c.Loop().Now()
	noBody := h.head || status == http.StatusNoContent || status == http.StatusNotModified
	h.noBody = noBody
	b := appendStatusLine(ls.scratch[:0], status)
	contentLength := int64(-1)
	hasDate := false
	for i := 0; i+1 < len(resp.Headers); i += 2 {
		name, value := resp.Headers[i], resp.Headers[i+1]
		if !validHeader(name, value) {
			continue
		}
		switch {
		case asciiEqualFold(name, "Connection"):
			// Hop-by-hop, managed here; a handler asking to close is obeyed.
			if asciiEqualFold(value, "close") {
				h.close = true
			}
			continue
		case asciiEqualFold(name, "Keep-Alive"), asciiEqualFold(name, "Transfer-Encoding"):
			continue // hop-by-hop: the master manages them
		case asciiEqualFold(name, "Content-Length"):
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 {
				contentLength = n
			}
			continue
		case asciiEqualFold(name, "Date"):
			hasDate = true
		}
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}
	if !noBody && contentLength >= 0 {
		h.declared = contentLength
	}
	switch {
	case end && !h.head && contentLength < 0:
		contentLength = int64(len(resp.Body))
	case contentLength >= 0:
	case noBody:
	case h.http10:
		h.close = true // the end of the body is the end of the connection
	default:
		h.chunked = true
	}
	if contentLength >= 0 && status != http.StatusNoContent && status != http.StatusNotModified {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, contentLength, 10)
		b = append(b, "\r\n"...)
	}
	if h.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if h.close {
		b = append(b, "Connection: close\r\n"...)
	} else if h.http10 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	if !hasDate {
		b = p.appendDateHeader(b, c.Loop())
	}
	b = append(b, "\r\n"...)
	p.writeBody(c, h, ls, b, p.trimBody(c, h, resp.Body), h.chunked, nil)
	p.cutAfterWrite(c, h, end)
	if end {
		p.checkLength(c, h)
		if flags&ipc.FlagAbort != 0 {
			p.abortResponse(c, h)
		}
		p.endResponse(c, h)
		return
	}
	if h.w != nil && h.w.flow {
		h.respBody = int64(len(resp.Body))
		p.creditResponse(c, h)
	}
}

// creditResponse credits the worker streaming c's response with the body
// bytes the master took, once they reach half a window (ipc.FlowWindow):
// on receipt while c's unwritten output stays under buffer_output_size
// less a window and a margin for framing (proxy buffering: the handler
// ends a normal-sized answer at once, whoever reads it), and beyond that,
// or while http_max_buffered is reached, as they leave the master's
// buffer: a client that reads slowly then holds the handler back instead
// of filling the master's memory. Runs on c's loop as body frames arrive
// and after each flush of c that wrote.
func (p *Plane) creditResponse(c *reactor.Conn, h *httpState) {
	if h.w == nil || !h.w.flow || !h.started {
		return
	}
	// Head and chunk framing still buffered count as body: the estimate
	// errs on the side of crediting late.
	held := int64(c.Buffered())
	if !p.httpOver.Load() {
		held = max(0, held-max(0, int64(p.cfg.BufferOutputSize)-ipc.FlowWindow-64<<10))
	}
	out := h.respBody - held
	if out-h.respCredit < ipc.FlowWindow/2 {
		h.setHeld(h.respBody-h.respCredit >= ipc.FlowWindow)
		return
	}
	var b [4]byte
	h.w.writeFlags(c.Loop(), ipc.TypeWindow, 0, c.ID(), ipc.AppendWindow(b[:0], uint32(out-h.respCredit)))
	h.respCredit = out
	h.setHeld(h.respBody-h.respCredit >= ipc.FlowWindow)
}

// requestCredit takes the worker's credit for c's request body and
// resumes reading it when it was waiting for that. Runs on c's loop.
func (p *Plane) requestCredit(c *reactor.Conn, w *Worker, n int) {
	h := c.Ctx.(*connState).http
	if h == nil || h.w != w || h.phase != phBody {
		return // late: the request has moved on
	}
	h.reqCredit += int64(n)
	if h.windowWait && h.reqSent-h.reqCredit < ipc.FlowWindow {
		// The time the worker held the body back is not the client's.
		now := c.Loop().Now()
		h.windowWait = false
		h.bodyAt = now
		h.bodyStart = h.bodyStart.Add(now.Sub(h.waitFrom))
		p.pumpBody(c, h)
		c.ResumeRead()
		c.Kick()
	}
}

// httpResponseBody writes a TypeResponseBody from a worker. Runs on c's loop.
func (p *Plane) httpResponseBody(c *reactor.Conn, flags uint8, payload []byte) {
	h := c.Ctx.(*connState).http
	if h == nil || !h.started || h.phase < phBody {
		return
	}
	ls := &p.loops[c.Loop().Index()]
	h.lastFrom = c.Loop().Now()
	h.respBody += int64(len(payload))
	body, chunked := p.trimBody(c, h, payload), h.chunked
	end := flags&ipc.FlagEnd != 0
	if end && flags&ipc.FlagAbort != 0 {
		p.abortResponse(c, h)
	} else if end {
		p.checkLength(c, h)
	}
	var last []byte
	if end && h.chunked && !h.cut {
		last = lastChunk
	}
	p.writeBody(c, h, ls, ls.scratch[:0], body, chunked, last)
	p.cutAfterWrite(c, h, end)
	if end {
		p.endResponse(c, h)
		return
	}
	p.creditResponse(c, h)
}

// abortResponse makes an incomplete response end with the connection, not
// with framing that would make it look whole.
func (p *Plane) abortResponse(c *reactor.Conn, h *httpState) {
	h.chunked = false
	h.close = true
	p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "method": h.method, "target": h.target}).
		Warn("response aborted by the handler; closing the connection so the client sees it incomplete")
}

// directBody is the size from which a piece of a response body is written
// to the client from the worker's frame (Conn.WriteDirect) instead of
// being copied after its head into the loop's scratch buffer and from
// there into the connection's output: below it, the copies cost less than
// a system call, and small answers of one iteration go out in one write.
const directBody = 16 << 10

// writeBody writes head (status line and headers, or nothing), then body,
// a piece of the handler's body that trimBody let through, as a chunk if
// chunked, then end (the last chunk, or nothing): a large piece with
// Conn.WriteDirect, the rest in the loop's scratch buffer.
func (p *Plane) writeBody(c *reactor.Conn, h *httpState, ls *loopState, head, body []byte, chunked bool, end []byte) {
	if len(body) < directBody {
		b := head
		if len(body) > 0 && chunked {
			b = strconv.AppendInt(b, int64(len(body)), 16)
			b = append(b, "\r\n"...)
			b = append(b, body...)
			b = append(b, "\r\n"...)
		} else {
			b = append(b, body...)
		}
		b = append(b, end...)
		ls.scratch = b
		if len(b) > 0 {
			p.write(c, h, b)
		}
		return
	}
	tail := end
	if chunked {
		head = strconv.AppendInt(head, int64(len(body)), 16)
		head = append(head, "\r\n"...)
		tail = append(append(ls.tail[:0], "\r\n"...), end...)
		ls.tail = tail
	}
	ls.scratch = head
	c.WriteDirect(head, body, tail)
	p.wrote(c, h, len(head)+len(body)+len(tail))
}

// trimBody is the part of a piece of the handler's body that the
// response's framing allows: none after HEAD, 204 or 304 (dropped, logged once, the
// connection stays framed), and no byte beyond a declared Content-Length:
// the excess is dropped, logged with the worker, and the connection
// closes after the declared bytes, as net/http and nginx do, so that what
// follows can never read as another response.
func (p *Plane) trimBody(c *reactor.Conn, h *httpState, body []byte) []byte {
	if len(body) == 0 || h.cut {
		return nil
	}
	if h.noBody {
		if !h.head && !h.warned {
			h.warned = true
			p.log.WithFields(p.respFields(c, h)).Warn("response body dropped: none is allowed after 204 or 304")
		}
		return nil
	}
	if h.declared >= 0 {
		if rest := h.declared - h.sent; int64(len(body)) > rest {
			p.log.WithFields(p.respFields(c, h)).WithField("content_length", h.declared).
				Warn("response cut: the handler sent more than its Content-Length; the excess is dropped and the connection closed after the declared bytes")
			body = body[:rest]
			h.cut, h.close = true, true
		}
		h.sent += int64(len(body))
	}
	return body
}

// cutAfterWrite closes, once the declared bytes are written, a connection
// whose handler overran its Content-Length, and tells the handler that
// whatever more it sends is dropped (unless its response has ended).
func (p *Plane) cutAfterWrite(c *reactor.Conn, h *httpState, end bool) {
	if !h.cut {
		return
	}
	if !end {
		p.cancelHTTP(c, h, true)
	}
	c.CloseWhenFlushed()
}

// checkLength closes, at the end of a response, the connection whose
// handler sent fewer body bytes than its Content-Length declared: the
// client sees the answer incomplete instead of waiting for the rest or
// reading the next answer as its end.
func (p *Plane) checkLength(c *reactor.Conn, h *httpState) {
	if h.declared < 0 || h.cut || h.sent >= h.declared {
		return
	}
	p.log.WithFields(p.respFields(c, h)).WithFields(logrus.Fields{"content_length": h.declared, "sent": h.sent}).
		Warn("response cut: the handler sent less than its Content-Length; closing the connection so the client sees it incomplete")
	h.close, h.chunked = true, false
}

// respFields names a response's connection, request and worker in a log line.
func (p *Plane) respFields(c *reactor.Conn, h *httpState) logrus.Fields {
	f := logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "method": h.method, "target": h.target}
	if h.w != nil {
		f["worker_id"], f["pid"] = h.w.slot, h.w.pid
	}
	return f
}

// endResponse finishes the current request: the connection closes, or the
// next pipelined request is read.
func (p *Plane) endResponse(c *reactor.Conn, h *httpState) {
	h.setHeld(false)
	h.w = nil
	if h.close {
		c.CloseWhenFlushed()
		return
	}
	h.phase = phHead
	h.started, h.chunked = false, false
	h.idleSince = c.Loop().Now()
	h.p.Reset()
	c.ResumeRead()
	c.Kick()
}

// appendDateHeader appends "Date: …\r\n", formatted once a second per loop.
func (p *Plane) appendDateHeader(b []byte, l *reactor.Loop) []byte {
	ls := &p.loops[l.Index()]
	if len(ls.date) == 0 || l.Now().Unix() != ls.dateSec {
		ls.date = appendDate(ls.date[:0], l.Now())
		ls.dateSec = l.Now().Unix()
	}
	b = append(b, "Date: "...)
	b = append(b, ls.date...)
	return append(b, "\r\n"...)
}

func appendDate(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, http.TimeFormat)
}

// validHeader refuses what would split a response: CR, LF or NUL, and
// names that are not tokens.
func validHeader[S ~string | ~[]byte](name, value S) bool {
	if len(name) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch <= ' ' || ch >= 0x7f || ch == ':' {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if ch := value[i]; ch == '\r' || ch == '\n' || ch == 0 {
			return false
		}
	}
	return true
}

// asciiEqualFold reports whether a and b are equal ignoring ASCII case.
func asciiEqualFold[S ~string | ~[]byte](a S, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// failHTTP answers 502 to a request whose worker went away before it
// answered, and closes; it reports false for connections that are not
// waiting for an HTTP answer. Runs on c's loop.
func (p *Plane) failHTTP(c *reactor.Conn, err error) bool {
	st := c.Ctx.(*connState)
	h := st.http
	if h == nil || h.phase < phBody {
		return false
	}
	fields := logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "method": h.method, "target": h.target, "reason": err.Error()}
	var gone *errWorkerGone
	if errors.As(err, &gone) {
		fields["worker_id"], fields["pid"] = gone.slot, gone.pid
	}
	if h.started {
		p.log.WithFields(fields).Warn("response cut: the worker went away while streaming it")
		c.Close(err)
		return true
	}
	p.log.WithFields(fields).Warn("request answered 502: the worker went away before answering")
	h.close = true
	p.httpError(c, h, http.StatusBadGateway, "the worker handling this request went away", "")
	return true
}

// cancelHTTP tells the worker handling c's request that the client went
// away: it shut down its side (once per request), or the connection is
// closed (closed; FlagEnd says so, and that anything more is dropped,
// which releases a handler waiting for flow-control credit).
func (p *Plane) cancelHTTP(c *reactor.Conn, h *httpState, closed bool) {
	if h.w == nil || h.phase != phBody && h.phase != phWait || h.cancelled && !closed || h.closedSent {
		return
	}
	var flags uint8
	if closed {
		flags = ipc.FlagEnd
		h.closedSent = true
		h.setHeld(false) // released: what it sends is dropped
	}
	h.cancelled = true
	h.w.writeFlags(c.Loop(), ipc.TypeCancel, flags, c.ID(), nil)
}

// requestTimedOut answers 504 to a request its worker has held longer than
// worker.request_timeout, and replaces the worker: a handler that hangs
// would hold its slot (and maybe others) for ever. Runs on c's loop.
func (p *Plane) requestTimedOut(c *reactor.Conn, h *httpState) {
	w := h.w
	timeout := p.cfg.Worker.RequestTimeout.D()
	p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "method": h.method, "target": h.target,
		"worker_id": w.slot, "pid": w.pid, "request_timeout": timeout.String()}).
		Error("request answered 504: worker.request_timeout exceeded; replacing the worker")
	// This request is answered here, not failed with the worker's others.
	p.disp.done(c.Loop(), w, c.ID())
	h.w = nil
	h.close = true
	p.httpError(c, h, http.StatusGatewayTimeout, "the handler did not answer within worker.request_timeout", "")
	p.takeOut(w, fmt.Sprintf("request_timeout (%s) exceeded by %s %s", timeout, h.method, h.target), true,
		"worker killed: a request exceeded worker.request_timeout; starting a successor")
}

// appendStatusLine appends "HTTP/1.1 <status> <reason>\r\n". Responses are
// HTTP/1.1 whatever the request's version, as RFC 9110 allows.
func appendStatusLine(b []byte, status int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	return append(b, "\r\n"...)
}
