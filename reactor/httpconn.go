package reactor

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// The HTTP/1.1 connection, next to its parser: HTTPConn reads request
// heads and bodies from a connection's byte stream, hands each request to
// an HTTPBackend (the master's data plane, which sends it to a worker) and
// writes the backend's answers back as HTTP/1.1, owning their framing. One
// request of a connection is at the backend at a time; pipelined requests
// wait, unread, in the connection's input and are answered in order.
//
// Slow clients pin no worker, as behind nginx (client_body_buffer_size,
// proxy_buffering, send_timeout), Swoole or RoadRunner:
//
//   - A request body that is not in the head's read is buffered here
//     (HTTPBuffer) and the request dispatched once it is whole, within
//     BodyTimeout from the end of the head (a total deadline, not reset by
//     each byte; 408 past it). When every worker takes concurrent requests
//     (HTTPBackend.HTTPConcurrent, the Go SDK), a body larger than
//     BodyBufferSize is dispatched when that much is buffered and the rest
//     streamed under the same deadline, at most BodyBufferSize ahead of the
//     worker: one slow upload then holds one of many slots, and memory per
//     connection stays bounded. Workers of concurrency 1 (PHP) get a
//     request only with its whole body, held in memory up to MaxBodyBytes
//     (package_max_length, as Swoole does): spooling to a temp file
//     (nginx's client_body_temp) would put blocking file I/O in the loop,
//     or a thread pool beside it, for bodies the default
//     package_max_length (2 MiB) keeps small; the global bound below keeps
//     the total in check instead.
//   - Answers are buffered: a flow-control backend (a window at dispatch)
//     is credited as its body frames arrive while the connection's
//     unwritten output stays under OutputBuffer less a window, so a
//     normal-sized answer ends at once however slowly its client reads;
//     beyond that the handler is held back by flow control. While output
//     waits for the client, it must take at least SendTimeout×SendMinRate
//     bytes (one at least) in every SendTimeout, or the connection is
//     closed and the handler cancelled: nginx's send_timeout alone lets a
//     client reading a byte a second hold a connection for ever.
//   - Bodies and answers held count against MaxBuffered across all
//     connections of the server: past it, body bytes are refused (503, the
//     connection closed) and answers are held back by flow control as for
//     a slow reader, each with a logged reason.

// HTTPPhase is where a connection is in its current request.
type HTTPPhase uint8

const (
	HTTPHead   HTTPPhase = iota // reading a request head (or idle between requests)
	HTTPBuffer                  // head read, the body is buffered before dispatch
	HTTPQueued                  // head read, waiting for a worker with a free slot
	HTTPBody                    // at the backend, forwarding the request body
	HTTPWait                    // at the backend, body done, waiting for the response to end
)

// HTTPConfig bounds an HTTP server's connections. Zero values are not
// defaults: the data plane fills every field from drover's config.
type HTTPConfig struct {
	MaxHeaderBytes  int           // http_max_header_size
	MaxBodyBytes    int64         // package_max_length
	MaxInlineBody   int64         // a body up to this size that came with its head travels inside the request
	BodyBufferSize  int           // http_body_buffer_size
	MaxBuffered     int64         // http_max_buffered, over all connections
	OutputBuffer    int64         // buffer_output_size
	HeaderTimeout   time.Duration // http_header_timeout
	BodyTimeout     time.Duration // http_body_timeout
	IdleTimeout     time.Duration // http_idle_timeout
	SendTimeout     time.Duration // http_send_timeout
	SendMinRate     int64         // http_send_min_rate, bytes per second
	DrainIdleGrace  time.Duration // how long a stopping server keeps an idle keep-alive connection
	PipelineMax     int           // unread bytes of pipelined requests before reading pauses
	MaxForwardPiece int           // the largest piece of a request body handed to HTTPBody
}

// HTTPBackend is what an HTTP connection asks of whoever serves its
// requests. Every method runs on the connection's loop.
type HTTPBackend interface {
	// HTTPPrepare: a request head was read. The backend encodes the
	// request for a worker, with body when the whole body came with the
	// head, or saying that the body follows (bodyFollows). req and body
	// alias the connection's input: copy what is kept.
	HTTPPrepare(hc *HTTPConn, req *HTTPRequest, body []byte, bodyFollows bool)
	// HTTPDispatch sends the prepared request to a worker with a free
	// slot. ok false: none is free. window > 0: the worker takes the
	// body within that flow-control window, credited by RequestCredit, and
	// grants credit for the response's body (HTTPCredit); 0: no flow
	// control.
	HTTPDispatch(hc *HTTPConn) (ok bool, window int64)
	// HTTPQueued: the request waits for a worker (HTTPQueued phase); the
	// backend calls Redispatch once one may be free, or Error after its
	// dispatch timeout.
	HTTPQueued(hc *HTTPConn)
	// HTTPConcurrent reports whether every worker takes concurrent
	// requests: then a request may be dispatched before its body is whole.
	HTTPConcurrent() bool
	// HTTPBody forwards pieces of the request body; end: the last. The
	// pieces alias the connection's body buffer: a backend that keeps
	// them past the call takes a LendBody reference.
	HTTPBody(hc *HTTPConn, pieces [][]byte, end bool)
	// HTTPCancel tells the worker its client went away: shut down its side
	// (once per request) or closed (closed: whatever more it sends is
	// dropped).
	HTTPCancel(hc *HTTPConn, closed bool)
	// HTTPCredit grants the worker n more bytes of response body.
	HTTPCredit(hc *HTTPConn, n int64)
	// HTTPHeld: the worker's answer is held back (on) for a slow client,
	// or no longer (off).
	HTTPHeld(hc *HTTPConn, on bool)
	// HTTPEnd: the response ended (or the request was answered here): the
	// worker is no longer this connection's.
	HTTPEnd(hc *HTTPConn)
	// HTTPFields adds who serves the request (worker id, pid) to a log
	// line's fields.
	HTTPFields(hc *HTTPConn, f logrus.Fields)
	// HTTPDone: the request is over, once per request: answered with
	// status (0: the connection closed before any answer), bytes written
	// for it (head and body). Method, Target, Start and Remote describe it
	// (a request refused by the parser has no method or target).
	HTTPDone(hc *HTTPConn, status int, bytes int64)
}

// BodyArena lends HTTPConn memory for request bodies that a worker can
// read in place: the data plane's request arena (HTTPServer.Arena).
type BodyArena interface {
	// ArenaAlloc returns n bytes (len and cap n) for the body of hc's
	// request, or nil: none free, or no worker would read it there.
	ArenaAlloc(hc *HTTPConn, n int) []byte
	// ArenaFree gives back what ArenaAlloc returned. It runs once per
	// ArenaAlloc, on any goroutine, when neither the connection nor a
	// worker needs the memory any more.
	ArenaFree(buf []byte)
}

// HTTPServer is what every HTTP connection of a server shares: its bounds,
// backend and log, set before the loops start and read-only after, and
// counters that the loops write.
type HTTPServer struct {
	Config  HTTPConfig
	Backend HTTPBackend
	Log     *logrus.Entry
	// Arena, if set, lends memory for request bodies that a worker reads
	// in place (the request arena); nil: bodies are buffered in memory of
	// the connections' own.
	Arena BodyArena
	// Stopping reports a stop in progress: keep-alive ends, idle
	// connections close after DrainIdleGrace. Safe from any goroutine.
	Stopping func() bool

	// Written by the loops, read from any goroutine.
	conns atomic.Int64 // open connections
	// buffered counts the request bodies and answers held for the
	// server's connections (MaxBuffered); over: it reached the bound and
	// has not yet come back under half of it.
	buffered atomic.Int64
	over     atomic.Bool
	// refused counts requests refused with 503 at MaxBuffered.
	refused atomic.Uint64
}

// Conns is how many HTTP connections are open.
func (s *HTTPServer) Conns() int64 { return s.conns.Load() }

// Buffered is how many bytes of bodies and answers are held.
func (s *HTTPServer) Buffered() int64 { return s.buffered.Load() }

// Refused is how many requests were refused with 503 because the bodies
// and answers held reached MaxBuffered.
func (s *HTTPServer) Refused() uint64 { return s.refused.Load() }

// HTTPConn is one HTTP connection's state, touched only on its loop.
type HTTPConn struct {
	s *HTTPServer
	c *Conn
	p *HTTPParser

	phase  HTTPPhase
	method string
	target string
	head   bool // HEAD: the response body is not sent
	// bodyFollows: the body goes after the request; expect100: the client
	// waits for 100 Continue before it sends the body.
	bodyFollows bool
	expect100   bool
	keep        bool // the connection stays open after this response
	http10      bool
	// headSince is when the current head's first byte arrived (zero while
	// idle); idleSince when the connection became idle; queuedAt when the
	// request began to wait for a worker.
	headSince time.Time
	idleSince time.Time
	queuedAt  time.Time
	remote    string // the client's address, formatted once per connection
	// start is when the current request's head was read; status the
	// answer's (0 none yet); open: HTTPDone is due for it.
	start  time.Time
	status int
	open   bool
	// Response state.
	started bool // status line written
	chunked bool
	close   bool // close once the response is written
	// Framing owned here: noBody drops the handler's body (HEAD, 204,
	// 304) and warned says it was logged; declared is the handler's
	// Content-Length (-1 none) and sent the body bytes written against it;
	// cut: the declared bytes are all out and the connection closes.
	noBody   bool
	warned   bool
	cut      bool
	declared int64
	sent     int64
	// Flow control with the worker (window > 0, from HTTPDispatch):
	// request body bytes forwarded and credited, response body bytes
	// received and credited.
	window               int64
	reqSent, reqCredit   int64
	respBody, respCredit int64
	windowWait           bool      // forwarding the body waits for the worker's credit
	waitFrom             time.Time // … since then
	bodyAt               time.Time // when the client last sent body bytes
	lastFrom             time.Time // when the worker last sent a response frame
	held                 bool      // HTTPHeld(on) is in force
	// The request body buffered here: body[bodyOff:] is not yet forwarded;
	// bodyDone: the parser has read its end; bodyStart: when the head
	// ended (BodyTimeout), moved on by the time the worker held the body
	// back or the request waited for a worker.
	body      []byte
	bodyOff   int
	bodyDone  bool
	bodyStart time.Time
	// loan is set while the backend holds pieces of body's memory
	// (LendBody), and while body is in the request arena: that memory is
	// not written again, and it goes to the loan (not the pool) when the
	// connection is done with it. byRef: the backend sent the whole body
	// by reference (BodyTaken): nothing is forwarded.
	loan  *BodyLoan
	byRef bool
	// Output: outTotal bytes handed to c.Write; the send timeout's period
	// began at sendSince (zero while nothing waits for the client), with
	// sendBase bytes written by then. acctBody and acctOut are this
	// connection's bytes counted in HTTPServer.buffered.
	outTotal  int64
	respStart int64 // outTotal when the current response began
	bigOut    bool  // a response over untrackedOut was written: the kernel may hold some of it (Conn.Unsent)
	sendSince time.Time
	sendBase  int64
	acctBody  int64
	acctOut   int64
}

// httpLoop is a loop's scratch for HTTP answers, touched only on it.
type httpLoop struct {
	scratch []byte // response heads are built here
	tail    []byte // … and the end of a chunk written with Conn.WriteDirect
	date    []byte // the Date header's value, formatted once a second
	dateSec int64
}

// NewConn makes c an HTTP connection of s.
func (s *HTTPServer) NewConn(c *Conn) *HTTPConn {
	s.conns.Add(1)
	h := &HTTPConn{s: s, c: c, remote: c.RemoteAddr(), keep: true, idleSince: c.Loop().Now(),
		p: NewHTTPParser(HTTPLimits{MaxHeaderBytes: s.Config.MaxHeaderBytes, MaxBodyBytes: s.Config.MaxBodyBytes})}
	c.NotifyWritten(func(*Conn) {
		h.syncOut(true)
		h.creditResponse()
	})
	c.ReadInto(h)
	return h
}

// Conn is the connection.
func (h *HTTPConn) Conn() *Conn { return h.c }

// Remote is the client's address, formatted once per connection.
func (h *HTTPConn) Remote() string { return h.remote }

// BodyFollows reports whether the current request's body goes to the
// worker after the request (HTTPBody), not inside it.
func (h *HTTPConn) BodyFollows() bool { return h.bodyFollows }

// Method and Target are the current request's; Start is when its head
// was read.
func (h *HTTPConn) Method() string   { return h.method }
func (h *HTTPConn) Target() string   { return h.target }
func (h *HTTPConn) Start() time.Time { return h.start }

// done reports the current request over to the backend (HTTPDone), once.
func (h *HTTPConn) done() {
	if h.open {
		h.open = false
		h.s.Backend.HTTPDone(h, h.status, h.outTotal-h.respStart)
	}
}

// Phase is where the connection is in its current request.
func (h *HTTPConn) Phase() HTTPPhase { return h.phase }

// Started reports whether the current response's status line is written.
func (h *HTTPConn) Started() bool { return h.started }

// QueuedAt is when the current request began to wait for a worker.
func (h *HTTPConn) QueuedAt() time.Time { return h.queuedAt }

// Fields names the connection and its current request in a log line.
func (h *HTTPConn) Fields() logrus.Fields {
	return logrus.Fields{"conn": h.c.ID(), "remote": h.remote, "method": h.method, "target": h.target}
}

// respFields names a response's connection, request and worker.
func (h *HTTPConn) respFields() logrus.Fields {
	f := h.Fields()
	h.s.Backend.HTTPFields(h, f)
	return f
}

func (h *HTTPConn) stopping() bool { return h.s.Stopping != nil && h.s.Stopping() }

// OnStream consumes the connection's input (StreamHandler's contract):
// request heads, bodies, and what waits behind them.
func (h *HTTPConn) OnStream(data []byte) int {
	c := h.c
	used := 0
	for !c.Closed() {
		switch h.phase {
		case HTTPHead:
			if used == len(data) {
				return used
			}
			if h.headSince.IsZero() {
				h.headSince = c.Loop().Now()
			}
			n, req, err := h.p.ParseHead(data[used:])
			if err != nil {
				h.reject(err)
				return len(data)
			}
			if n == 0 {
				return used
			}
			used += n
			h.headSince = time.Time{}
			used += h.startRequest(req, data[used:])
		case HTTPBuffer, HTTPBody:
			n, ok := h.takeBody(data[used:])
			used += n
			if !ok || c.Closed() {
				return len(data)
			}
			if h.phase == HTTPBuffer && (h.bodyDone || len(h.body) >= h.s.Config.BodyBufferSize && h.s.Backend.HTTPConcurrent()) {
				if !h.dispatch() {
					continue // queued: what follows stays unread
				}
			}
			if h.phase == HTTPBody {
				h.pumpBody()
			}
			if h.phase == HTTPWait || h.phase == HTTPQueued {
				continue
			}
			if used < len(data) {
				// The buffer is full: the rest waits in the client's socket
				// until the worker takes some.
				c.PauseRead()
			}
			return used
		default: // queued or waiting: what follows stays unread for now
			if len(data)-used > h.s.Config.PipelineMax {
				c.PauseRead()
			}
			return used
		}
	}
	return len(data)
}

// startRequest starts a request from its parsed head and dispatches it;
// it returns how many bytes of rest (the body) it consumed inline.
func (h *HTTPConn) startRequest(req *HTTPRequest, rest []byte) int {
	c := h.c
	h.method, h.target = req.Method, req.Target
	h.start, h.status, h.open = c.Loop().Now(), 0, true
	h.head = req.Method == http.MethodHead
	h.keep = req.KeepAlive && !h.stopping()
	h.http10 = req.Proto == "HTTP/1.0"
	h.started, h.chunked, h.close = false, false, !h.keep
	h.noBody, h.warned, h.cut, h.declared, h.sent = false, false, false, -1, 0
	h.respStart = h.outTotal
	h.window, h.reqSent, h.reqCredit, h.respBody, h.respCredit, h.windowWait = 0, 0, 0, 0, 0, false
	var body []byte
	used := 0
	switch {
	case req.ContentLength == 0 && !req.Chunked:
		h.phase = HTTPWait
	case !req.Chunked && req.ContentLength <= h.s.Config.MaxInlineBody && int64(len(rest)) >= req.ContentLength:
		// The whole body is here: it travels inside the request.
		n, b, done, err := h.p.Body(rest)
		if err != nil || !done {
			h.reject(fmt.Errorf("%w: body", errBadBody))
			return len(rest)
		}
		body, used = b, n
		h.phase = HTTPWait
	default:
		// The body is buffered first (see the top of this file).
		h.phase = HTTPBuffer
	}
	h.bodyFollows, h.expect100, h.byRef = h.phase == HTTPBuffer, req.Expect100, false
	if h.phase == HTTPBuffer {
		h.resetBody()
		h.bodyDone = false
		h.arenaBody(req)
	}
	h.s.Backend.HTTPPrepare(h, req, body, h.bodyFollows)
	if h.phase == HTTPBuffer {
		h.bodyStart, h.bodyAt = c.Loop().Now(), c.Loop().Now()
		if h.expect100 {
			// As nginx: the client is asked for the body when reading it
			// starts.
			h.expect100 = false
			h.write(continue100)
		}
		return used
	}
	h.dispatch()
	return used
}

// dispatch sends the prepared request to a worker, then what is buffered
// of the body; false when it waits for a free worker (HTTPQueued).
func (h *HTTPConn) dispatch() bool {
	ok, window := h.s.Backend.HTTPDispatch(h)
	if !ok {
		h.phase = HTTPQueued
		h.queuedAt = h.c.Loop().Now()
		h.s.Backend.HTTPQueued(h)
		return false
	}
	h.requestSent(window)
	return true
}

// Redispatch tries again to send a request that waits for a worker; it
// reports whether the request no longer waits (sent, or moved on: answered
// or closed), for the backend's list of waiting connections.
func (h *HTTPConn) Redispatch() bool {
	if h.phase != HTTPQueued || h.c.Closed() {
		return true
	}
	ok, window := h.s.Backend.HTTPDispatch(h)
	if !ok {
		return false
	}
	now := h.c.Loop().Now()
	if !h.bodyDone && h.bodyFollows {
		// Waiting for a worker is not the client's time.
		h.bodyStart = h.bodyStart.Add(now.Sub(h.queuedAt))
	}
	h.requestSent(window)
	if h.phase == HTTPBody {
		h.pumpBody()
	}
	h.c.ResumeRead()
	h.c.Kick() // forward the body that waited
	return true
}

// Requeue makes a request the worker handed back unstarted wait for
// another worker (the backend dispatches it again).
func (h *HTTPConn) Requeue() {
	h.phase = HTTPQueued
	h.queuedAt = h.c.Loop().Now()
}

// requestSent follows a dispatched request: the body is forwarded next,
// after a 100 Continue when the client waits for one.
func (h *HTTPConn) requestSent(window int64) {
	h.window = window
	h.bodyAt = h.c.Loop().Now()
	if h.byRef {
		// The worker reads the body where it is: it counts as forwarded.
		n := len(h.body) - h.bodyOff
		h.reqSent += int64(n)
		h.acctBody -= int64(n)
		h.s.noteBuffered(h.s.buffered.Add(-int64(n)))
		h.releaseBody()
	}
	if !h.bodyFollows || h.byRef {
		h.phase = HTTPWait
		return
	}
	h.phase = HTTPBody
	if h.expect100 {
		h.write(continue100)
	}
}

// write hands b to c and keeps the output accounting (send timeout,
// MaxBuffered).
func (h *HTTPConn) write(b []byte) {
	h.c.Write(b)
	h.wrote(len(b))
}

// wrote keeps the output accounting after n bytes were handed to c.
func (h *HTTPConn) wrote(n int) {
	h.outTotal += int64(n)
	if !h.bigOut && h.outTotal-h.respStart > untrackedOut {
		h.bigOut = true
	}
	h.syncOut(false)
}

// untrackedOut is how much unwritten output a connection may hold before
// HTTPServer.buffered counts it at each write (a flush that leaves output
// behind always counts it): a small answer is usually written within the
// loop iteration that made it, and counting it would cost two atomic
// additions per request.
const untrackedOut = 64 << 10

// syncOut brings c's unwritten output into HTTPServer.buffered.
func (h *HTTPConn) syncOut(flushed bool) {
	out := int64(h.c.Buffered())
	if d := out - h.acctOut; d != 0 && (flushed || h.acctOut != 0 || out > untrackedOut) {
		h.acctOut = out
		h.s.noteBuffered(h.s.buffered.Add(d))
	}
}

// noteBuffered logs when the bytes held for HTTP connections reach
// MaxBuffered, and when they are back under half of it.
func (s *HTTPServer) noteBuffered(total int64) {
	lim := s.Config.MaxBuffered
	switch {
	case total >= lim && s.over.CompareAndSwap(false, true):
		s.Log.WithFields(logrus.Fields{"buffered": total, "http_max_buffered": lim}).
			Warn("HTTP buffers full: request bodies are refused with 503 and answers held back until clients take them")
	case total < lim/2 && s.over.Load() && s.over.CompareAndSwap(true, false):
		s.Log.WithFields(logrus.Fields{"buffered": total, "http_max_buffered": lim}).Info("HTTP buffers back under half of http_max_buffered")
	}
}

// takeBody reads body bytes from data into h.body while the buffer has
// room (bodyRoom). It returns what it consumed, and false when the
// connection was answered (malformed body, MaxBuffered).
func (h *HTTPConn) takeBody(data []byte) (int, bool) {
	c := h.c
	used := 0
	for !h.bodyDone && used < len(data) {
		room := h.bodyRoom()
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
			h.reject(err)
			return len(data), false
		}
		used += n
		if n > 0 {
			h.bodyAt = c.Loop().Now()
		}
		if len(piece) > 0 {
			if !h.holdBody(len(piece)) {
				return len(data), false
			}
			h.reserve(len(piece))
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

// bodyRoom is how many more body bytes h.body may take: up to
// BodyBufferSize not yet forwarded once the request is at a worker (or
// about to go to one that takes concurrent requests), otherwise the whole
// body (the parser stops it at MaxBodyBytes).
func (h *HTTPConn) bodyRoom() int {
	limit := h.s.Config.BodyBufferSize
	if h.phase == HTTPBuffer && !h.s.Backend.HTTPConcurrent() {
		limit = int(h.s.Config.MaxBodyBytes) + 1
	}
	return limit - (len(h.body) - h.bodyOff)
}

// holdBody counts n more body bytes held here against MaxBuffered; past
// it the request is refused with 503 and holdBody reports false.
func (h *HTTPConn) holdBody(n int) bool {
	total := h.s.buffered.Add(int64(n))
	h.s.noteBuffered(total)
	if total > h.s.Config.MaxBuffered {
		h.s.buffered.Add(-int64(n))
		h.s.refused.Add(1)
		h.s.Log.WithFields(h.Fields()).WithField("http_max_buffered", h.s.Config.MaxBuffered).
			Warn("request refused with 503: the master holds http_max_buffered bytes of bodies and answers")
		h.cancel(true)
		h.Error(http.StatusServiceUnavailable, "the server is busy; retry shortly", "Retry-After: 1\r\n")
		return false
	}
	h.acctBody += int64(n)
	return true
}

// reserve makes room in h.body for n more bytes: a buffer from the pool,
// or a larger one (at least twice the size) that takes the bytes not yet
// forwarded; the old memory goes back to the pool, or to its loan.
func (h *HTTPConn) reserve(n int) {
	if cap(h.body)-len(h.body) >= n {
		return
	}
	if cap(h.body) == 0 {
		h.body, h.bodyOff = getBody(), 0
		if cap(h.body) >= n {
			return
		}
	}
	pend := h.body[h.bodyOff:]
	nb := make([]byte, len(pend), max(len(pend)+n, 2*cap(h.body), minPooledBody))
	copy(nb, pend)
	h.releaseBody()
	h.body = nb
}

// releaseBody lets h.body's memory go: back to the pool, or to the
// backend that holds pieces of it (the last Release pools it).
func (h *HTTPConn) releaseBody() {
	if h.loan != nil {
		h.loan.Release()
		h.loan = nil
	} else {
		putBody(h.body)
	}
	h.body, h.bodyOff = nil, 0
}

// resetBody empties h.body for the next bytes: in place, unless pieces of
// it are lent.
func (h *HTTPConn) resetBody() {
	if h.loan != nil {
		h.releaseBody()
		return
	}
	h.body, h.bodyOff = h.body[:0], 0
}

// BodyLoan keeps a request body's buffer for an HTTPBackend that holds
// pieces of it past HTTPBody (HTTPConn.LendBody): the connection writes
// no more into the bytes it lent, and the buffer goes back to the pool at
// the last Release (the connection holds one reference until it is done
// with the buffer).
type BodyLoan struct {
	buf   []byte
	refs  atomic.Int32
	arena BodyArena // the buffer is the arena's (ArenaFree), not the pool's
}

// Release gives back one reference taken by LendBody. Safe from any
// goroutine; each LendBody's reference is released once.
func (b *BodyLoan) Release() {
	if b.refs.Add(-1) == 0 {
		if b.arena != nil {
			b.arena.ArenaFree(b.buf)
		} else {
			putBody(b.buf)
		}
	}
}

// arenaBody buffers the body of req, a Content-Length body read whole
// before it is dispatched, in the request arena when the backend lends a
// range of it (HTTPServer.Arena): a worker that maps the arena then reads
// it there. The range goes back to the arena through the loan.
func (h *HTTPConn) arenaBody(req *HTTPRequest) {
	a := h.s.Arena
	if a == nil || req.Chunked || req.ContentLength <= 0 || req.ContentLength > int64(h.s.Config.BodyBufferSize) {
		return
	}
	buf := a.ArenaAlloc(h, int(req.ContentLength))
	if buf == nil {
		return
	}
	h.releaseBody()
	h.body = buf[:0]
	h.loan = &BodyLoan{buf: buf[:0], arena: a}
	h.loan.refs.Store(1)
}

// BodyInArena reports whether the current request's body is buffered in
// the request arena (HTTPServer.Arena).
func (h *HTTPConn) BodyInArena() bool { return h.loan != nil && h.loan.arena != nil }

// ArenaBody returns the current request's body when it is whole in the
// request arena and none of it was forwarded, else nil.
func (h *HTTPConn) ArenaBody() []byte {
	if !h.BodyInArena() || !h.bodyDone || h.bodyOff != 0 || h.byRef {
		return nil
	}
	return h.body
}

// BodyTaken tells the connection, within HTTPDispatch, that the request
// names its whole body (ArenaBody) for the worker to read where it is:
// nothing is forwarded, and the backend holds the memory (LendBody) until
// the worker has done with it.
func (h *HTTPConn) BodyTaken() { h.byRef = true }

// LendBody lets the backend keep the pieces of the body HTTPBody passed
// it beyond the call (until it has written them), or the whole body it
// took by reference (BodyTaken): it returns a reference to release then.
// Call it only within HTTPBody or HTTPDispatch.
func (h *HTTPConn) LendBody() *BodyLoan {
	if h.loan == nil {
		h.loan = &BodyLoan{buf: h.body[:0]}
		h.loan.refs.Store(1)
	}
	h.loan.refs.Add(1)
	return h.loan
}

// ReadBuffer implements Reader: while a Content-Length body is read, the
// connection's reads go straight into h.body, each as large as the rest of
// the body and the room left (bodyRoom), the buffer at most doubling at a
// time so that a declared length alone reserves no more than what came.
// At MaxBuffered (reached, or that a read could pass), reads go to the
// loop's buffer and takeBody refuses the request as it does for any body.
func (h *HTTPConn) ReadBuffer() []byte {
	if h.phase != HTTPBuffer && h.phase != HTTPBody || h.bodyDone {
		return nil
	}
	n := min(h.p.LengthRemaining(), int64(h.bodyRoom()))
	if n <= 0 || n > h.s.Config.MaxBuffered-h.s.buffered.Load() {
		return nil
	}
	if cap(h.body) == 0 {
		h.body, h.bodyOff = getBody(), 0
	}
	if avail := int64(cap(h.body) - len(h.body)); n > avail {
		n = min(n, max(avail, int64(cap(h.body)), readBufSize))
		h.reserve(int(n))
	}
	return h.body[len(h.body) : len(h.body)+int(n)]
}

// ReadDone implements Reader: n body bytes were read into place. The
// request moves on as in OnStream: dispatched once buffered enough, its
// body forwarded; reading pauses while the buffer is full.
func (h *HTTPConn) ReadDone(n int) {
	at := len(h.body)
	_, _, done, _ := h.p.Body(h.body[at : at+n]) // a Content-Length body: taken in place, whole
	h.bodyAt = h.c.Loop().Now()
	if !h.holdBody(n) {
		return
	}
	h.body = h.body[:at+n]
	h.bodyDone = done
	if h.phase == HTTPBuffer && (h.bodyDone || len(h.body) >= h.s.Config.BodyBufferSize && h.s.Backend.HTTPConcurrent()) {
		if !h.dispatch() {
			return
		}
	}
	if h.phase == HTTPBody {
		h.pumpBody()
	}
	if (h.phase == HTTPBuffer || h.phase == HTTPBody) && !h.bodyDone && h.bodyRoom() <= 0 {
		// Full: the rest waits in the client's socket until the worker
		// takes some (RequestCredit resumes).
		h.c.PauseRead()
	}
}

// pumpBody forwards the buffered body to the worker, within its
// flow-control window, and ends it once the parser has read the body's
// end: the request then waits for its answer (HTTPWait).
func (h *HTTPConn) pumpBody() {
	// The pieces of one call go out together (HTTPBody).
	var batch [8][]byte
	pieces := batch[:0]
	end := false
	for h.phase == HTTPBody {
		pend := h.body[h.bodyOff:]
		if len(pend) == 0 && !h.bodyDone {
			break
		}
		piece := pend[:min(len(pend), h.s.Config.MaxForwardPiece)]
		if h.window > 0 {
			room := h.window - (h.reqSent - h.reqCredit)
			if room <= 0 && len(pend) > 0 {
				if !h.windowWait {
					h.windowWait, h.waitFrom = true, h.c.Loop().Now()
				}
				break
			}
			piece = piece[:min(int64(len(piece)), max(room, 0))]
		}
		if h.bodyDone && len(piece) == len(pend) {
			end = true
			h.phase = HTTPWait
		}
		pieces = append(pieces, piece)
		h.bodyOff += len(piece)
		h.reqSent += int64(len(piece))
		h.acctBody -= int64(len(piece))
		h.s.noteBuffered(h.s.buffered.Add(-int64(len(piece))))
	}
	if len(pieces) > 0 {
		h.s.Backend.HTTPBody(h, pieces, end)
	}
	switch {
	case h.phase != HTTPBody:
		h.releaseBody() // an idle connection pins no buffer
	case h.bodyOff == len(h.body):
		if h.loan != nil || cap(h.body) > h.s.Config.MaxForwardPiece {
			h.releaseBody()
		} else {
			h.body, h.bodyOff = h.body[:0], 0
		}
	}
}

// RequestCredit takes the worker's credit for the request body and
// resumes reading it when it was waiting for that.
func (h *HTTPConn) RequestCredit(n int64) {
	if h.phase != HTTPBody {
		return // late: the request has moved on
	}
	h.reqCredit += n
	if h.windowWait && h.reqSent-h.reqCredit < h.window {
		// The time the worker held the body back is not the client's.
		now := h.c.Loop().Now()
		h.windowWait = false
		h.bodyAt = now
		h.bodyStart = h.bodyStart.Add(now.Sub(h.waitFrom))
		h.pumpBody()
		h.c.ResumeRead()
		h.c.Kick()
	}
}

// bodyPool holds request body buffers (*[]byte) between requests: a body
// buffered here is then written into memory already mapped, not into a
// buffer grown by copies from 64 KiB and cleared by the runtime each
// time. The garbage collector empties it when the buffers go unused.
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
	if cap(b) >= minPooledBody && cap(b) <= maxPooledBody {
		b = b[:0]
		bodyPool.Put(&b)
	}
}

// minPooledBody and maxPooledBody bound the request body buffers kept in
// bodyPool: from a forwarded piece's size to a body of
// package_max_length's default (2 MiB) and some growth room.
const minPooledBody, maxPooledBody = 64 << 10, 4 << 20

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// lastChunk ends a chunked response.
var lastChunk = []byte("0\r\n\r\n")

var errBadBody = errors.New("malformed request body")

// Sweep applies the connection's timeouts as of now: the send timeout,
// the body and header timeouts, the idle timeout, and a stopping server's
// grace for idle keep-alive connections. It reports whether it acted (the
// connection was answered, closed, or is closing). Runs once a second.
func (h *HTTPConn) Sweep(now time.Time) bool {
	c, cfg := h.c, &h.s.Config
	if h.sendTimedOut(now) {
		return true
	}
	if c.Lingering() {
		// Answered and closing: the reactor bounds the lingering close; a
		// stopping server does not wait for it.
		if h.stopping() {
			c.Close(nil)
		}
		return true
	}
	reading := h.phase == HTTPBuffer || h.phase == HTTPBody && !h.bodyDone && !h.windowWait
	switch {
	case reading && now.Sub(h.bodyStart) > cfg.BodyTimeout:
		h.s.Log.WithFields(h.Fields()).WithFields(logrus.Fields{"received": h.reqSent + int64(len(h.body)-h.bodyOff),
			"http_body_timeout": cfg.BodyTimeout.String()}).
			Info("request refused with 408: its body was not complete within http_body_timeout; connection closed")
		h.cancel(true)
		h.Error(http.StatusRequestTimeout, "the request body took too long", "")
	case h.phase == HTTPHead && !h.headSince.IsZero() && now.Sub(h.headSince) > cfg.HeaderTimeout:
		h.s.Log.WithFields(logrus.Fields{"conn": c.ID(), "remote": h.remote, "http_header_timeout": cfg.HeaderTimeout.String()}).
			Info("connection closed: request headers not complete within http_header_timeout")
		h.Error(http.StatusRequestTimeout, "request headers took too long", "")
	case h.phase == HTTPHead && h.headSince.IsZero() && c.Pending() == 0 && now.Sub(h.idleSince) > cfg.IdleTimeout:
		c.Close(nil)
	case h.stopping() && h.phase == HTTPHead && h.headSince.IsZero() && c.Pending() == 0 && now.Sub(h.idleSince) > cfg.DrainIdleGrace:
		// Stopping: an idle keep-alive connection had its chance to send
		// one more request (answered with Connection: close).
		c.Close(nil)
	case reading && now.Sub(h.bodyAt) > cfg.HeaderTimeout:
		h.s.Log.WithFields(h.Fields()).WithField("http_header_timeout", cfg.HeaderTimeout.String()).
			Info("connection closed: the request body stalled for longer than http_header_timeout; the handler's context is cancelled")
		h.cancel(true)
		h.Error(http.StatusRequestTimeout, "the request body stalled", "")
	default:
		return false
	}
	return true
}

// sendTimedOut closes c when its client does not take what was written
// for it: at least SendTimeout×SendMinRate bytes (and one) in every
// SendTimeout while output waits, in the connection's buffer or (after a
// large answer) unacknowledged in the kernel's, where a whole answer of a
// few MiB can sit unread. The handler, if still at it, is cancelled.
func (h *HTTPConn) sendTimedOut(now time.Time) bool {
	c := h.c
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
	timeout := h.s.Config.SendTimeout
	switch {
	case h.sendSince.IsZero():
		h.sendSince, h.sendBase = now, wrote
		return false
	case now.Sub(h.sendSince) < timeout:
		return false
	case wrote-h.sendBase >= max(1, h.s.Config.SendMinRate*int64(timeout/time.Second)):
		h.sendSince, h.sendBase = now, wrote
		return false
	}
	f := h.respFields()
	f["unwritten"], f["taken"] = pending, wrote-h.sendBase
	f["http_send_timeout"], f["http_send_min_rate"] = timeout.String(), h.s.Config.SendMinRate
	h.s.Log.WithFields(f).Info("connection closed: the client did not take its answer at http_send_min_rate within http_send_timeout; the handler's context is cancelled")
	h.cancel(true)
	c.Abort(nil) // what the kernel holds for it is dropped too
	return true
}

// WorkerLate is how long the worker serving the request has kept the
// client waiting through no fault of the client: since it had the whole
// request (or, while its body window is full, since it last got a piece;
// not before floor, when it could start), or, once the response started,
// since its last frame — unless it waits for the client to take what it
// sent (flow control). Like nginx's proxy_read_timeout, a streamed
// response may last as long as it keeps sending.
func (h *HTTPConn) WorkerLate(now, floor time.Time) time.Duration {
	switch {
	case h.phase == HTTPBody && !h.windowWait:
		return 0 // the worker waits for the client's body
	case !h.started:
		start := h.bodyAt
		if floor.After(start) {
			start = floor
		}
		return now.Sub(start)
	case h.window > 0 && h.respBody-h.respCredit >= h.window || h.c.Buffered() > 0 && h.window == 0:
		return 0 // the client is slow to read
	}
	return now.Sub(h.lastFrom)
}

// reject answers a request the parser refused and closes.
func (h *HTTPConn) reject(err error) {
	status := http.StatusBadRequest
	var he *HTTPError
	if errors.As(err, &he) {
		status = he.Status
	}
	h.s.Log.WithFields(logrus.Fields{"conn": h.c.ID(), "remote": h.remote, "status": status, "reason": err.Error()}).
		Info("bad request refused")
	if h.phase == HTTPHead && !h.open {
		// Refused before it began: reported with no method or target.
		h.method, h.target = "", ""
		h.start, h.status, h.open, h.respStart = h.c.Loop().Now(), 0, true, h.outTotal
	}
	if h.started {
		h.c.Close(err)
		return
	}
	h.Error(status, err.Error(), "")
}

// Error writes a short plain-text error response and closes the
// connection once it is written (or, when a response has started, closes
// at once). The close lingers (Conn.CloseLingering): a client still
// sending what was refused reads the answer and a clean end of stream
// instead of a reset. A 408 does not linger: its client is the slow one,
// and has had HeaderTimeout or BodyTimeout already. extra is more header
// lines ("Retry-After: 1\r\n").
func (h *HTTPConn) Error(status int, msg, extra string) {
	c := h.c
	if h.started {
		c.Close(fmt.Errorf("%d %s", status, msg))
		return
	}
	h.started = true
	h.close = true
	h.status = status
	body := strconv.Itoa(status) + " " + http.StatusText(status) + ": " + msg + "\n"
	hl := &c.Loop().http
	b := appendStatusLine(hl.scratch[:0], status)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nConnection: close\r\n"...)
	b = append(b, extra...)
	b = h.appendDateHeader(b)
	b = append(b, "\r\n"...)
	if !h.head {
		b = append(b, body...)
	}
	hl.scratch = b
	h.write(b)
	h.done()
	if status == http.StatusRequestTimeout {
		c.CloseWhenFlushed()
		return
	}
	c.CloseLingering()
}

// Respond writes the head of the worker's response, and body, the first
// piece of its body (all of it when end). abort: the handler gave up
// (its client sees the answer incomplete). The head is checked and framed
// here: hop-by-hop headers are managed, headers that would split the
// response are dropped, and a non-final status is refused with 502.
// headers are name, value, name, value….
func (h *HTTPConn) Respond(status int, headers [][]byte, body []byte, end, abort bool) {
	if h.started || h.phase < HTTPBody {
		return // nothing asked for it (a late answer after a 503, or garbage)
	}
	c := h.c
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 999 {
		// A 1xx is interim (100 Continue is sent here): as the final
		// answer it would leave the client waiting for another.
		h.s.Log.WithFields(h.respFields()).WithField("status", status).
			Warn("response refused with 502: the handler's status is not a final one")
		h.Error(http.StatusBadGateway, "the handler answered with status "+strconv.Itoa(status), "")
		return
	}
	if h.phase == HTTPBody {
		// Answered before the body was read: the rest of it cannot be told
		// from a next request cheaply, so the connection closes afterwards.
		h.close = true
	}
	if h.stopping() {
		h.close = true
	}
	h.started = true
	h.status = status
	h.lastFrom = c.Loop().Now()
	noBody := h.head || status == http.StatusNoContent || status == http.StatusNotModified
	h.noBody = noBody
	hl := &c.Loop().http
	b := appendStatusLine(hl.scratch[:0], status)
	contentLength := int64(-1)
	hasDate := false
	for i := 0; i+1 < len(headers); i += 2 {
		name, value := headers[i], headers[i+1]
		if !validHeader(name, value) {
			continue
		}
		switch {
		case asciiEqualFold(name, "connection"):
			// Hop-by-hop, managed here; a handler asking to close is obeyed.
			if asciiEqualFold(value, "close") {
				h.close = true
			}
			continue
		case asciiEqualFold(name, "keep-alive"), asciiEqualFold(name, "transfer-encoding"):
			continue // hop-by-hop: managed here
		case asciiEqualFold(name, "content-length"):
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 {
				contentLength = n
			}
			continue
		case asciiEqualFold(name, "date"):
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
		contentLength = int64(len(body))
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
		b = h.appendDateHeader(b)
	}
	b = append(b, "\r\n"...)
	h.writeBody(hl, b, h.trimBody(body), h.chunked, nil)
	h.cutAfterWrite(end)
	if end {
		h.checkLength()
		if abort {
			h.abortResponse()
		}
		h.endResponse()
		return
	}
	if h.window > 0 {
		h.respBody = int64(len(body))
		h.creditResponse()
	}
}

// RespondBody writes a further piece of the worker's response body; end:
// the last, abort: the handler gave up.
func (h *HTTPConn) RespondBody(body []byte, end, abort bool) {
	if !h.started || h.phase < HTTPBody {
		return
	}
	hl := &h.c.Loop().http
	h.lastFrom = h.c.Loop().Now()
	h.respBody += int64(len(body))
	body, chunked := h.trimBody(body), h.chunked
	if end && abort {
		h.abortResponse()
	} else if end {
		h.checkLength()
	}
	var last []byte
	if end && h.chunked && !h.cut {
		last = lastChunk
	}
	h.writeBody(hl, hl.scratch[:0], body, chunked, last)
	h.cutAfterWrite(end)
	if end {
		h.endResponse()
		return
	}
	h.creditResponse()
}

// creditResponse credits the worker streaming the response with the body
// bytes taken, once they reach half a window: on receipt while the
// unwritten output stays under OutputBuffer less a window and a margin for
// framing (proxy buffering: the handler ends a normal-sized answer at
// once, whoever reads it), and beyond that, or while MaxBuffered is
// reached, as they leave the connection's buffer: a client that reads
// slowly then holds the handler back instead of filling memory. Runs as
// body frames arrive and after each flush that wrote.
func (h *HTTPConn) creditResponse() {
	if h.window == 0 || !h.started || h.phase < HTTPBody {
		return
	}
	// Head and chunk framing still buffered count as body: the estimate
	// errs on the side of crediting late.
	held := int64(h.c.Buffered())
	if !h.s.over.Load() {
		held = max(0, held-max(0, h.s.Config.OutputBuffer-h.window-64<<10))
	}
	out := h.respBody - held
	if out-h.respCredit < h.window/2 {
		h.setHeld(h.respBody-h.respCredit >= h.window)
		return
	}
	h.s.Backend.HTTPCredit(h, out-h.respCredit)
	h.respCredit = out
	h.setHeld(h.respBody-h.respCredit >= h.window)
}

// setHeld tells the backend whether the handler of the response waits for
// credit withheld because the client is slow.
func (h *HTTPConn) setHeld(on bool) {
	if on != h.held {
		h.held = on
		h.s.Backend.HTTPHeld(h, on)
	}
}

// abortResponse makes an incomplete response end with the connection, not
// with framing that would make it look whole.
func (h *HTTPConn) abortResponse() {
	h.chunked = false
	h.close = true
	h.s.Log.WithFields(h.Fields()).Warn("response aborted by the handler; closing the connection so the client sees it incomplete")
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
func (h *HTTPConn) writeBody(hl *httpLoop, head, body []byte, chunked bool, end []byte) {
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
		hl.scratch = b
		if len(b) > 0 {
			h.write(b)
		}
		return
	}
	tail := end
	if chunked {
		head = strconv.AppendInt(head, int64(len(body)), 16)
		head = append(head, "\r\n"...)
		tail = append(append(hl.tail[:0], "\r\n"...), end...)
		hl.tail = tail
	}
	hl.scratch = head
	h.c.WriteDirect(head, body, tail)
	h.wrote(len(head) + len(body) + len(tail))
}

// trimBody is the part of a piece of the handler's body that the
// response's framing allows: none after HEAD, 204 or 304 (dropped, logged
// once, the connection stays framed), and no byte beyond a declared
// Content-Length: the excess is dropped, logged with the worker, and the
// connection closes after the declared bytes, as net/http and nginx do, so
// that what follows can never read as another response.
func (h *HTTPConn) trimBody(body []byte) []byte {
	if len(body) == 0 || h.cut {
		return nil
	}
	if h.noBody {
		if !h.head && !h.warned {
			h.warned = true
			h.s.Log.WithFields(h.respFields()).Warn("response body dropped: none is allowed after 204 or 304")
		}
		return nil
	}
	if h.declared >= 0 {
		if rest := h.declared - h.sent; int64(len(body)) > rest {
			h.s.Log.WithFields(h.respFields()).WithField("content_length", h.declared).
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
func (h *HTTPConn) cutAfterWrite(end bool) {
	if !h.cut {
		return
	}
	if !end {
		h.cancel(true)
	}
	h.c.CloseWhenFlushed()
}

// checkLength closes, at the end of a response, the connection whose
// handler sent fewer body bytes than its Content-Length declared: the
// client sees the answer incomplete instead of waiting for the rest or
// reading the next answer as its end.
func (h *HTTPConn) checkLength() {
	if h.declared < 0 || h.cut || h.sent >= h.declared {
		return
	}
	h.s.Log.WithFields(h.respFields()).WithFields(logrus.Fields{"content_length": h.declared, "sent": h.sent}).
		Warn("response cut: the handler sent less than its Content-Length; closing the connection so the client sees it incomplete")
	h.close, h.chunked = true, false
}

// endResponse finishes the current request: the connection closes, or the
// next pipelined request is read.
func (h *HTTPConn) endResponse() {
	h.done()
	h.setHeld(false)
	h.s.Backend.HTTPEnd(h)
	h.window = 0 // no worker is this connection's any more
	if h.close {
		h.c.CloseWhenFlushed()
		return
	}
	h.phase = HTTPHead
	h.started, h.chunked = false, false
	h.idleSince = h.c.Loop().Now()
	h.p.Reset()
	h.c.ResumeRead()
	h.c.Kick()
}

// appendDateHeader appends "Date: …\r\n", formatted once a second per loop.
func (h *HTTPConn) appendDateHeader(b []byte) []byte {
	l := h.c.Loop()
	hl := &l.http
	if len(hl.date) == 0 || l.Now().Unix() != hl.dateSec {
		hl.date = l.Now().UTC().AppendFormat(hl.date[:0], http.TimeFormat)
		hl.dateSec = l.Now().Unix()
	}
	b = append(b, "Date: "...)
	b = append(b, hl.date...)
	return append(b, "\r\n"...)
}

// validHeader refuses what would split a response: CR, LF or NUL, and
// names that are not tokens.
func validHeader(name, value []byte) bool {
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

// WorkerGone answers 502 to a request whose worker went away before it
// answered, and closes (or cuts a response it was streaming); it reports
// false when the connection was not waiting for an answer. fields say
// which worker.
func (h *HTTPConn) WorkerGone(err error, fields logrus.Fields) bool {
	if h.phase < HTTPBody {
		return false
	}
	f := h.Fields()
	f["reason"] = err.Error()
	for k, v := range fields {
		f[k] = v
	}
	if h.started {
		h.s.Log.WithFields(f).Warn("response cut: the worker went away while streaming it")
		h.c.Close(err)
		return true
	}
	h.s.Log.WithFields(f).Warn("request answered 502: the worker went away before answering")
	h.Error(http.StatusBadGateway, "the worker handling this request went away", "")
	return true
}

// cancel tells the backend that the client went away while its request is
// at a worker: it shut down its side, or (closed) the connection is
// closed.
func (h *HTTPConn) cancel(closed bool) {
	if h.phase != HTTPBody && h.phase != HTTPWait {
		return
	}
	if closed {
		h.setHeld(false) // released: what it sends is dropped
	}
	h.s.Backend.HTTPCancel(h, closed)
}

// ReadEOF handles the client's shutdown of its side: it still gets the
// answer to what it sent, then the connection closes.
func (h *HTTPConn) ReadEOF() {
	switch h.phase {
	case HTTPHead, HTTPBuffer, HTTPQueued:
		h.c.CloseWhenFlushed() // nothing at a worker yet: nobody to answer
	default:
		// Like net/http: the handler's context is cancelled, and whatever
		// it still answers goes out (a half-closed client reads it), then
		// the connection closes.
		h.keep, h.close = false, true
		h.cancel(false)
	}
}

// Closed releases what the closed connection held and cancels its
// request at the worker, if any.
func (h *HTTPConn) Closed() {
	h.s.conns.Add(-1)
	h.done()
	h.cancel(true)
	h.setHeld(false)
	if n := h.acctBody + h.acctOut; n != 0 {
		h.acctBody, h.acctOut = 0, 0
		h.s.noteBuffered(h.s.buffered.Add(-n))
	}
	h.releaseBody()
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
