package plane

import (
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/internal/accesslog"
	"github.com/drover-dev/drover/reactor"
)

// The access log (access_log): one line per HTTP request and per stream
// connection closed, formatted on the connection's loop into that loop's
// buffer and written off the loop in batches (internal/accesslog). The
// loop hands its buffer over when it is nearly full and at every tick
// (OnTick, at most 100 ms with the access log on: Tick), so a line waits
// at most that long; a loop never waits for the file.

// accessLog is the access log's writer and one buffer per reactor loop.
// Set by OpenAccessLog before the loops start, then read-only; bufs[i] is
// owned by loop i.
type accessLog struct {
	w      *accesslog.Writer
	bufs   []*accesslog.Buffer
	closed atomic.Bool // CloseAccessLog ran
}

// observed is what the access and slow-request logs note of an HTTP
// connection's current request, in httpState.obs (its loop's alone):
// the head's protocol, Referer and User-Agent (access log on only; they
// alias the parser's copy of the head, made for this request), and the
// worker it went to and when (the slow log counts from then).
type observed struct {
	proto, referer, agent string
	w                     *Worker
	sentAt                time.Time
	slowSaid              bool // logged as slow (slowlog.go)
}

// OpenAccessLog opens access_log when the config has one. Runs on the
// control plane, after Start and before the reactor runs.
func (p *Plane) OpenAccessLog() error {
	a := p.cfg.AccessLog
	if !a.On() {
		return nil
	}
	w, err := accesslog.Open(accesslog.Options{Path: a.Path, JSON: a.Format == "json", Log: p.log})
	if err != nil {
		return err
	}
	acc := &accessLog{w: w, bufs: make([]*accesslog.Buffer, len(p.rx.Loops()))}
	for i := range acc.bufs {
		acc.bufs[i] = w.NewBuffer()
	}
	p.acc = acc
	return nil
}

// ReopenAccessLog opens the access log's file anew (reopen-logs, after
// logrotate renamed it). path is "" when there is no file to reopen (the
// access log is off, or on stdout). Safe from any goroutine.
func (p *Plane) ReopenAccessLog() (path string, err error) {
	if p.acc == nil || p.acc.w.Path() == accesslog.Stdout {
		return "", nil
	}
	return p.acc.w.Path(), p.acc.w.Reopen()
}

// CloseAccessLog writes the lines the loops still hold and closes the
// file, waiting a bounded time for a writer that is stuck. Runs on the
// control plane once the reactor has stopped; once.
func (p *Plane) CloseAccessLog() {
	if p.acc != nil && p.acc.closed.CompareAndSwap(false, true) {
		if err := p.acc.w.Close(p.acc.bufs); err != nil {
			p.log.WithError(err).Warn("access log not closed cleanly")
		}
	}
}

// flushAccess hands loop l's access log lines to the writer. Runs on l,
// at each tick.
func (p *Plane) flushAccess(l *reactor.Loop) {
	if p.acc != nil {
		p.acc.bufs[l.Index()].Flush()
	}
}

// noteRequest keeps what the access log needs of a request's head. Runs
// on hc's loop (HTTPPrepare).
func (p *Plane) noteRequest(h *httpState, req *reactor.HTTPRequest) {
	h.obs = observed{}
	if p.acc == nil {
		return
	}
	h.obs.proto = req.Proto
	for i := 0; i+1 < len(req.Headers); i += 2 {
		switch name := req.Headers[i]; {
		case len(name) == 7 && equalFold(name, "Referer"):
			h.obs.referer = req.Headers[i+1]
		case len(name) == 10 && equalFold(name, "User-Agent"):
			h.obs.agent = req.Headers[i+1]
		}
	}
}

// equalFold is strings.EqualFold for the ASCII header names above.
func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x|0x20 != y|0x20 {
			return false
		}
	}
	return true
}

// noteDispatch notes the worker the request went to, and when. Runs on
// the connection's loop (HTTPDispatch).
func (p *Plane) noteDispatch(h *httpState, w *Worker, now time.Time) {
	h.obs.w, h.obs.sentAt, h.obs.slowSaid = w, now, false
}

// logRequest writes the access log line of an HTTP request that is over.
// Runs on its loop.
func (p *Plane) logRequest(hc *reactor.HTTPConn, status int, bytes int64) {
	h := stateOf(hc).http
	if p.acc == nil {
		h.obs = observed{}
		return
	}
	l := hc.Conn().Loop()
	r := accesslog.Request{Time: l.Now(), Remote: hc.Remote(), Listener: hc.Conn().Listener().Name,
		Method: hc.Method(), Target: hc.Target(), Proto: h.obs.proto, Status: status, Bytes: bytes,
		Duration: l.Now().Sub(hc.Start()), Worker: -1, Referer: h.obs.referer, UserAgent: h.obs.agent}
	if w := h.obs.w; w != nil {
		r.Worker, r.PID = w.slot, w.pid
	}
	p.acc.bufs[l.Index()].Request(&r)
	// The next request may be refused before its head is noted: nothing
	// of this one's may show in its line.
	h.obs = observed{}
}

// logClose writes the access log line of a stream connection that closed
// (an HTTP connection's requests have theirs). Runs on its loop.
func (p *Plane) logClose(c *reactor.Conn, st *connState, err error) {
	if p.acc == nil || st.http != nil {
		return
	}
	l := c.Loop()
	r := accesslog.Stream{Time: l.Now(), Remote: c.RemoteAddr(), Listener: c.Listener().Name,
		Duration: l.Now().Sub(c.Opened()), BytesIn: c.BytesIn(), BytesOut: c.BytesOut(), Worker: -1, Reason: closeReason(st, err)}
	if w := st.w; w != nil {
		r.Worker, r.PID = w.slot, w.pid
	}
	p.acc.bufs[l.Index()].Stream(&r)
}

// closeReason says why a stream connection closed: its access log line,
// and the close event its worker gets in the binding dispatch modes.
func closeReason(st *connState, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case st.byWorker:
		return "closed by worker"
	case st.eof:
		return "closed by client"
	}
	return "closed by server"
}
