package plane

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// workerState is where an incarnation is in its life, as the master sees it.
type workerState int

const (
	stateStarting workerState = iota // socket pair received, no hello yet
	stateReady                       // said hello; takes events
	stateRetiring                    // sent stop; takes no new events
	stateDead                        // pair closed or process exited
)

func (s workerState) String() string {
	return [...]string{"starting", "ready", "retiring", "dead"}[s]
}

// worker is the master's side of one worker incarnation: its socket pair,
// the frames queued for it, and its dispatch accounting. One loop (owner)
// reads the pair; any loop may queue frames for it.
type Worker struct {
	p       *Plane
	role    string
	slot    int
	gen     uint64
	pid     int
	launch  string
	file    *os.File
	fd      int
	owner   *reactor.Loop
	started time.Time
	log     *logrus.Entry

	// Owned by the owner loop: in[inBeg:] is read and not yet handled.
	in    []byte
	inBeg int

	// marked[i] is touched only by loop i: the worker is deferred for
	// flushing in that loop's current iteration.
	marked []bool

	arenaFields // body arenas (arena.go)

	outMu  sync.Mutex
	out    []byte
	outOff int
	// refs are request body pieces queued by reference (writeBodies), in
	// order, each between out[:at] and out[at:]; iov is flushOut's
	// scratch. Guarded by outMu.
	refs   []outRef
	iov    [][]byte
	armed  bool
	closed bool // the descriptor was closed; guarded by outMu
	// outBytes is len(out)-outOff as the last flush left it: frames the
	// worker's socket pair did not take (it is full: the worker does not
	// read fast enough). Frames queued since, to go out at the end of a
	// loop iteration, do not count: a burst of one iteration is no sign of
	// a worker that does not read. Stored under outMu; read without it (by
	// the dispatcher, for worker_buffer_size).
	outBytes atomic.Int64
	// dropped counts messages refused because the worker's buffer was
	// full; the first and every 1000th are logged. Any goroutine.
	dropped atomic.Uint64
	// refusedAt is when something was last refused for this worker because
	// its buffer was full, and lastTook when its socket pair last took
	// bytes from the master, kept from the first refusal on (unix ns): a
	// refusal after the last bytes taken, worker_send_timeout ago, replaces
	// it (checkStuck).
	refusedAt, lastTook atomic.Int64

	// Guarded by dispatcher.mu.
	state       workerState
	concurrency int
	prefetch    int          // events sent ahead beyond concurrency (Hello.Prefetch)
	lastEnd     atomic.Int64 // with prefetch: when it last finished an event (unix ns); the next one started then
	heldBack    atomic.Int32 // its answers held back by flow control for slow clients (HTTP loops); nothing is sent ahead to it then
	inflight    int
	owed        map[uint64]int32 // connection id → events in flight or queued here
	queue       []queued         // events waiting for a free concurrency slot
	queueBytes  int64            // the payload bytes in queue
	served      uint64
	sdk         string
	flow        bool   // the worker grants and honours TypeWindow credit (set before it gets requests)
	cgi         bool   // it takes Requests in the CGI layout (hello cgi; set before it gets requests)
	recycleAt   uint64 // served count that triggers max_request recycling; 0 never
	recycling   bool   // a replacement for max_request was asked for
	readyAt     time.Time
	lastDone    time.Time // its hello, then its last answer (IdleSince)
}

// outRef is a piece of a request body queued for a worker where the
// connection buffered it: b goes after out[:at]. loan, if set, is released
// once b is written (or dropped): the connection's buffer is then free.
type outRef struct {
	at   int
	b    []byte
	loan *reactor.BodyLoan
}

// queued is an event waiting for a worker since at.
type queued struct {
	t       ipc.Type
	id      uint64
	payload []byte
	at      time.Time
}

// errWorkerGone is the close reason of connections whose events were in
// flight at a worker that died.
type errWorkerGone struct {
	slot   int
	pid    int
	reason string
}

func (e *errWorkerGone) Error() string {
	return fmt.Sprintf("worker %d (pid %d) went away with this connection's events in flight: %s", e.slot, e.pid, e.reason)
}

// write queues one frame to the worker and defers the flush to the end of
// l's iteration, where every frame queued meanwhile goes out in one write.
func (w *Worker) write(l *reactor.Loop, t ipc.Type, id uint64, payload []byte) {
	w.writeFlags(l, t, 0, id, payload)
}

// writeFlags is write with frame flags.
func (w *Worker) writeFlags(l *reactor.Loop, t ipc.Type, flags uint8, id uint64, payload []byte) {
	w.outMu.Lock()
	w.queueReleases()
	w.compactOut()
	w.out = ipc.AppendFrame(w.out, t, flags, id, payload)
	w.p.ipc.framesOut.Add(1)
	w.outMu.Unlock()
	w.deferFlush(l)
}

// writeRequest queues a TypeRequest frame for connection id with r encoded
// in place, in the worker's output: the request's only copy on its way
// there. keep, if set, gets a copy of the payload (a request that may be
// handed back). Flushed as write's frames are.
func (w *Worker) writeRequest(l *reactor.Loop, id uint64, r *ipc.Request, keep *[]byte) {
	w.outMu.Lock()
	w.queueReleases()
	w.compactOut()
	at := len(w.out)
	w.out = ipc.AppendHeader(w.out, ipc.TypeRequest, 0, id, 0)
	if w.cgi {
		w.out = ipc.AppendRequestCGI(w.out, r)
	} else {
		w.out = ipc.AppendRequest(w.out, r)
	}
	ipc.SetLength(w.out[at:], len(w.out)-at-ipc.HeaderSize)
	if keep != nil {
		*keep = append((*keep)[:0], w.out[at+ipc.HeaderSize:]...)
	}
	w.p.ipc.framesOut.Add(1)
	w.outMu.Unlock()
	w.deferFlush(l)
}

// deferFlush flushes the worker's output at the end of l's iteration, with
// every frame queued meanwhile (at once when l is nil: not on a loop).
func (w *Worker) deferFlush(l *reactor.Loop) {
	if l == nil {
		w.flushOut()
		return
	}
	if i := l.Index(); !w.marked[i] {
		w.marked[i] = true
		l.Defer(w)
	}
}

// compactOut starts the output over when all of it is written. Called
// with outMu held.
func (w *Worker) compactOut() {
	if w.outOff > 0 && w.outOff == len(w.out) && len(w.refs) == 0 {
		w.out, w.outOff = w.out[:0], 0
	}
}

// writeBodies queues TypeRequestBody frames for connection id, one per
// piece, the last with flags: the frame heads in the worker's output, the
// pieces by reference, where hc buffered them. When nothing is waiting for
// the worker's socket pair, they are written at once with one writev;
// otherwise at the end of the iteration or when the pair drains. Pieces
// still queued after the call are kept on a loan of hc's body buffer
// (reactor.HTTPConn.LendBody), released once they are written: a request
// body goes to the worker without being copied in the master.
func (w *Worker) writeBodies(l *reactor.Loop, flags uint8, id uint64, pieces [][]byte, hc *reactor.HTTPConn) {
	w.outMu.Lock()
	if w.closed {
		w.outMu.Unlock()
		return
	}
	idle := !w.armed && w.outOff == len(w.out) && len(w.refs) == 0
	w.queueReleases()
	w.compactOut()
	mine := 0
	for i, p := range pieces {
		var f uint8
		if i == len(pieces)-1 {
			f = flags
		}
		w.out = ipc.AppendHeader(w.out, ipc.TypeRequestBody, f, id, len(p))
		if len(p) > 0 {
			w.refs = append(w.refs, outRef{at: len(w.out), b: p})
			mine++
		}
	}
	w.p.ipc.framesOut.Add(uint64(len(pieces)))
	if idle {
		w.flushLocked()
	}
	if n := len(w.refs); n > 0 && mine > 0 {
		// What is left of the call's pieces is the end of the queue
		// (outMu is held), and pieces are written in order: the last
		// one's release frees them all.
		w.refs[n-1].loan = hc.LendBody()
	}
	w.outMu.Unlock()
	if !idle {
		w.deferFlush(l)
	}
}

// Flush implements reactor.Flusher.
func (w *Worker) Flush(l *reactor.Loop) {
	w.marked[l.Index()] = false
	w.flushOut()
}

func (w *Worker) flushOut() {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	w.flushLocked()
}

// flushLocked writes what the worker's output holds, frames and body
// pieces by reference in order, until its socket pair is full. Called with
// outMu held.
func (w *Worker) flushLocked() {
	defer func() { w.outBytes.Store(w.unwritten()) }()
	if w.closed {
		// The descriptor number may already belong to someone else.
		w.dropOut()
		return
	}
	for w.outOff < len(w.out) || len(w.refs) > 0 {
		var n int
		var err error
		if len(w.refs) == 0 {
			n, err = unix.Write(w.fd, w.out[w.outOff:])
		} else {
			n, err = unix.Writev(w.fd, w.pendingIov())
		}
		w.p.ipc.writes.Add(1)
		if n > 0 {
			w.advance(n)
			if w.refusedAt.Load() != 0 {
				w.lastTook.Store(time.Now().UnixNano())
			}
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if !w.armed {
				w.armed = true
				w.owner.WantWrite(w.fd, true)
			}
			return
		}
		// The pair is broken: the read side sees EOF and retires the worker.
		w.dropOut()
		return
	}
	if cap(w.out) > 1<<20 {
		w.out = nil
	} else {
		w.out = w.out[:0]
	}
	w.outOff = 0
	if w.armed {
		w.armed = false
		w.owner.WantWrite(w.fd, false)
	}
}

// maxIov bounds the pieces of one writev (IOV_MAX is 1024).
const maxIov = 1024

// pendingIov is the unwritten output in order, frames and pieces, for
// one writev. Called with outMu held.
func (w *Worker) pendingIov() [][]byte {
	iov := w.iov[:0]
	at := w.outOff
	for _, r := range w.refs {
		if len(iov) > maxIov-2 {
			w.iov = iov
			return iov // the rest goes with the next write
		}
		if r.at > at {
			iov = append(iov, w.out[at:r.at])
			at = r.at
		}
		iov = append(iov, r.b)
	}
	if at < len(w.out) {
		iov = append(iov, w.out[at:])
	}
	w.iov = iov
	return iov
}

// advance moves past n bytes written from the output, frames and pieces
// in order, releasing the loans of the pieces written. Called with outMu
// held.
func (w *Worker) advance(n int) {
	for n > 0 {
		if len(w.refs) > 0 && w.outOff == w.refs[0].at {
			r := &w.refs[0]
			k := min(n, len(r.b))
			r.b, n = r.b[k:], n-k
			if len(r.b) == 0 {
				if r.loan != nil {
					r.loan.Release()
				}
				w.popRef()
			}
			continue
		}
		end := len(w.out)
		if len(w.refs) > 0 {
			end = w.refs[0].at
		}
		k := min(n, end-w.outOff)
		w.outOff, n = w.outOff+k, n-k
	}
}

// popRef drops the first ref. Called with outMu held.
func (w *Worker) popRef() {
	n := copy(w.refs, w.refs[1:])
	w.refs[n] = outRef{}
	w.refs = w.refs[:n]
}

// dropOut drops the unwritten output, releasing the loans of its pieces.
// Called with outMu held.
func (w *Worker) dropOut() {
	for _, r := range w.refs {
		if r.loan != nil {
			r.loan.Release()
		}
	}
	w.out, w.outOff, w.refs = nil, 0, nil
	w.rel, w.relBytes = nil, 0
}

// unwritten is how many bytes the output holds unwritten, frames and
// pieces. Called with outMu held.
func (w *Worker) unwritten() int64 {
	n := len(w.out) - w.outOff
	for _, r := range w.refs {
		n += len(r.b)
	}
	return int64(n)
}

// HandleEvent implements reactor.FDHandler: it runs on the owner loop.
func (w *Worker) HandleEvent(l *reactor.Loop, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		w.flushOut()
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) == 0 {
		return
	}
	w.readOnce(l, "")
}

// drain handles every frame the worker wrote before it exited: they are
// all in the socket pair by the time the manager reports the exit, but the
// loop may not have read them yet. Its last answers then reach their
// clients (and requests it handed back are dispatched again) before
// workerGone fails the connections still owed. exit is the reason logged if
// the pair's end is reached. Runs on the owner loop l.
func (w *Worker) drain(l *reactor.Loop, exit string) {
	for w.p.disp.stateOf(w) != stateDead && w.readOnce(l, exit) {
	}
}

// readOnce reads what the socket pair holds, with one system call, and
// handles the whole frames. It returns false when nothing was read: the
// pair is empty for now, or the worker was taken out (at the pair's end,
// with reason gone, or "socket pair closed" when that is empty). Runs on
// the owner loop l.
func (w *Worker) readOnce(l *reactor.Loop, gone string) bool {
	w.roomIn()
	n, err := unix.Read(w.fd, w.in[len(w.in):cap(w.in)])
	w.p.ipc.reads.Add(1)
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return false
		}
		reason := cmp.Or(gone, "socket pair closed (worker exited)")
		if err != nil {
			reason = "socket pair: " + err.Error()
		}
		w.p.workerGone(w, reason, false)
		w.abandon(l)
		return false
	}
	w.in = w.in[:len(w.in)+n]
	off := w.inBeg
	for {
		limit := w.p.maxFrame
		if w.readyAt.IsZero() {
			// Before its hello a worker may write only a hello: no
			// package_max_length-sized frame is buffered for it.
			limit = ipc.MaxHelloSize
		}
		h, payload, k, err := ipc.Next(w.in[off:], limit)
		if err != nil {
			w.p.workerGone(w, fmt.Sprintf("malformed frame: %v", err), true)
			w.abandon(l)
			return false
		}
		if k == 0 {
			break
		}
		off += k
		w.p.ipc.framesIn.Add(1)
		if err := w.p.frame(l, w, h, payload); err != nil {
			w.p.workerGone(w, err.Error(), true)
			w.abandon(l)
			return false
		}
	}
	// A partial frame stays where it is: roomIn moves it only when the
	// rest of it would not fit behind it.
	w.inBeg = off
	if off == len(w.in) {
		w.in, w.inBeg = w.in[:0], 0
		if cap(w.in) > 1<<20 {
			w.in = nil
		}
	}
	return true
}

// inRoom is the free space roomIn makes behind the unread bytes before a
// read of the socket pair, and inFrameRoom the most of a large frame's
// rest it makes room for at once.
const inRoom, inFrameRoom = 16 << 10, 256 << 10

// roomIn makes room in w.in for the next read: inRoom bytes, or the rest
// of the partial frame there (up to inFrameRoom), so that a large frame is
// read into place instead of being moved to the front of the buffer after
// each read. Runs on the owner loop.
func (w *Worker) roomIn() {
	pending := len(w.in) - w.inBeg
	need, size := inRoom, 64<<10
	if pending >= ipc.HeaderSize {
		if h, err := ipc.ParseHeader(w.in[w.inBeg:], w.p.maxFrame); err == nil {
			frame := ipc.HeaderSize + int(h.Length)
			need = max(need, min(frame-pending, inFrameRoom))
			// Room for a few such frames: the partial one at the end
			// is moved once every few frames, not after each.
			size = max(size, min(4*frame, 1<<20))
		}
	}
	if cap(w.in)-len(w.in) >= need {
		return
	}
	if w.inBeg > 0 && cap(w.in)-pending >= need && cap(w.in) >= size {
		w.in = w.in[:copy(w.in, w.in[w.inBeg:])]
		w.inBeg = 0
		return
	}
	nb := make([]byte, pending, max(size, 2*cap(w.in), pending+need))
	copy(nb, w.in[w.inBeg:])
	w.in, w.inBeg = nb, 0
}

// abandon stops reading a worker taken out of service, at once: frames
// already read must not be handled a second time when more bytes wake the
// loop before workerGone's task unwatches the descriptor. Runs on l, the
// owner loop.
func (w *Worker) abandon(l *reactor.Loop) {
	l.Unwatch(w.fd)
	w.in, w.inBeg = nil, 0
}

var errProtocol = errors.New("protocol violation")

// ipcCounters count the master's traffic with its workers; frames per
// system call is the batching factor, shown by drover status.
type ipcCounters struct {
	framesOut, writes, framesIn, reads atomic.Uint64
	// foreign counts response frames refused because their worker does
	// not serve the connection they name; onHTTP, Send and CloseConn
	// frames dropped because they named an HTTP connection.
	foreign, onHTTP atomic.Uint64
}

// frame handles one frame from a worker on its owner loop l.
func (p *Plane) frame(l *reactor.Loop, w *Worker, h ipc.Header, payload []byte) error {
	if h.Type == ipc.TypeHello {
		// Decoded with the depth-limited reader: the msgpack library's
		// generic decoder recurses once per nesting level of an unknown
		// key's value, so a hostile hello could exhaust the stack.
		hello, err := ipc.DecodeHello(payload)
		if err != nil {
			return fmt.Errorf("%w: %v", errProtocol, err)
		}
		return p.hello(w, &hello)
	}
	if w.readyAt.IsZero() { // set by hello, on this same loop
		return fmt.Errorf("%w: %s frame before hello", errProtocol, h.Type)
	}
	switch h.Type {
	case ipc.TypeSend:
		p.toConnArg(l, h.ID, func(c *reactor.Conn) { sendByWorker(c, w.slot, payload) }, payload, w.slot, sendTask)
	case ipc.TypeCloseConn:
		p.toConnArg(l, h.ID, func(c *reactor.Conn) { closeByWorker(c, w.slot) }, nil, w.slot, closeConnTask)
	case ipc.TypeResponse, ipc.TypeResponseBody:
		// Only the worker holding a connection's request may answer it: a
		// conforming worker never answers another's (nor its own after
		// the end), so this one is broken or hostile. The last frame's
		// check is done's (one lock for both).
		end := h.Flags&ipc.FlagEnd != 0
		var body []byte
		var ref ipc.Ref
		var resp *ipc.ResponseView
		if h.Flags&ipc.FlagRef != 0 {
			// Checked before the request counts as answered: a bad
			// reference fails its client with the worker's others.
			var err error
			if body, ref, resp, err = p.refAnswer(l, w, h, payload); err != nil {
				return err
			}
		}
		if end && !p.disp.done(l, w, h.ID) || !end && !p.disp.serves(w, h.ID) {
			n := p.ipc.foreign.Add(1)
			return fmt.Errorf("%w: %s frame for connection %d, which this worker does not serve: no request of it in flight here (dropped; %d such frames so far)",
				errProtocol, h.Type, h.ID, n)
		}
		if end {
			w.dropBody(h.ID) // its body in the request arena, if any, is free
		}
		if end {
			if p.httpWaiting.Load() > 0 {
				// A slot freed up: requests waiting for one go now.
				for _, ll := range p.rx.Loops() {
					if ll == l {
						p.retrySoon(l)
					} else {
						ll.Post(reactor.Task{Fn: p.retryHTTP})
					}
				}
			}
		}
		flags := h.Flags
		if flags&ipc.FlagRef != 0 {
			p.deliverRef(l, w, h, payload, body, ref, resp)
			return nil
		}
		if h.Type == ipc.TypeResponse {
			p.toConnArg(l, h.ID, func(c *reactor.Conn) { p.httpResponse(c, flags, payload) }, payload, int(flags), responseTask)
		} else {
			p.toConnArg(l, h.ID, func(c *reactor.Conn) { p.httpResponseBody(c, flags, payload) }, payload, int(flags), responseBodyTask)
		}
	case ipc.TypeTask:
		if w.role != ipc.RoleWorker || p.tasks == nil {
			return fmt.Errorf("%w: a task from a %s (only workers send tasks)", errProtocol, w.role)
		}
		p.tasks.submit(l, w, h.ID, payload)
	case ipc.TypeTaskResult:
		if w.role != ipc.RoleTaskWorker || p.tasks == nil {
			return fmt.Errorf("%w: a task result from a %s", errProtocol, w.role)
		}
		return p.tasks.finish(l, w, h.ID, h.Flags, payload)
	case ipc.TypeBind:
		if len(payload) != 8 {
			return fmt.Errorf("%w: bind with a %d-byte payload (want an 8-byte uid)", errProtocol, len(payload))
		}
		p.toConnArg(l, h.ID, func(c *reactor.Conn) { bindConn(c, binary.BigEndian.Uint64(payload)) }, payload, 0, bindTask)
	case ipc.TypeMessage:
		p.routeMessage(l, w, int(h.ID), payload)
	case ipc.TypeRetire:
		if h.Flags&ipc.FlagEnd != 0 {
			// It is exiting (a fatal error): no new work; the manager
			// restarts the slot when it has gone, as after any crash.
			p.disp.retire(w)
			w.log.WithField("reason", string(payload)).Warn("worker is exiting; it gets no new work and the manager will start a new one")
			return nil
		}
		p.retireAsked(w, string(payload))
	case ipc.TypeWindow:
		n, err := ipc.ParseWindow(payload)
		if err != nil {
			return fmt.Errorf("%w: %v", errProtocol, err)
		}
		p.toConnArg(l, h.ID, func(c *reactor.Conn) { p.requestCredit(c, w, int(n)) }, nil, int(n), windowTask)
	case ipc.TypeDone:
		if !p.disp.done(l, w, h.ID) {
			return fmt.Errorf("%w: done for connection %d with no event in flight", errProtocol, h.ID)
		}
		p.toConn(l, h.ID, func(c *reactor.Conn) { p.connDone(c) }, nil, connDoneTask)
	default:
		return fmt.Errorf("%w: unexpected %s frame", errProtocol, h.Type)
	}
	return nil
}

func (p *Plane) hello(w *Worker, h *ipc.Hello) error {
	if h.Version != ipc.ProtocolVersion {
		return fmt.Errorf("%w: hello with protocol version %d (this drover speaks %d)", errProtocol, h.Version, ipc.ProtocolVersion)
	}
	if h.Prefetch < 0 || h.Prefetch > ipc.MaxPrefetch {
		return fmt.Errorf("%w: hello with prefetch %d (want 0 to %d)", errProtocol, h.Prefetch, ipc.MaxPrefetch)
	}
	if h.Concurrency < 1 {
		return fmt.Errorf("%w: hello with concurrency %d (want at least 1)", errProtocol, h.Concurrency)
	}
	if limit := p.maxConcurrency(); h.Concurrency > limit {
		w.log.WithFields(logrus.Fields{"concurrency": h.Concurrency, "max_concurrency": limit}).
			Warn("worker declared a concurrency above max_concurrency; it gets at most max_concurrency events at once")
		h.Concurrency = limit
	}
	if h.Role != "" && h.Role != w.role {
		return fmt.Errorf("%w: hello as %q from a %s slot (check worker.cmd and task_worker.cmd)", errProtocol, h.Role, w.role)
	}
	if !p.disp.ready(w, h, p.recycleLimit(w.role)) {
		return fmt.Errorf("%w: second hello", errProtocol)
	}
	w.readyAt = time.Now()
	w.log.WithFields(logrus.Fields{"concurrency": h.Concurrency, "sdk": h.SDK,
		"start_ms": w.readyAt.Sub(w.started).Milliseconds()}).Info("worker ready")
	p.events(Ready{W: w})
	if w.role == ipc.RoleTaskWorker {
		p.tasks.kick()
	}
	// Events and HTTP requests that waited for a worker go out now.
	for _, l := range p.rx.Loops() {
		l.Post(reactor.Task{Fn: p.retryPending})
		if p.httpWaiting.Load() > 0 {
			l.Post(reactor.Task{Fn: p.retryHTTP})
		}
	}
	return nil
}

// toConn runs fn on connection id's loop: directly when that is l, else by
// posting a task that carries a copy of data (and arg).
func (p *Plane) toConn(l *reactor.Loop, id uint64, fn func(c *reactor.Conn), data []byte, task func(*reactor.Loop, *reactor.Task)) {
	p.toConnArg(l, id, fn, data, 0, task)
}

// toConnArg is toConn with an integer for the task (frame flags).
func (p *Plane) toConnArg(l *reactor.Loop, id uint64, fn func(c *reactor.Conn), data []byte, arg int, task func(*reactor.Loop, *reactor.Task)) {
	target := p.rx.LoopOf(id)
	if target == nil {
		return
	}
	if target == l {
		if c := l.Conn(id); c != nil {
			fn(c)
		}
		return
	}
	var cp []byte
	if data != nil {
		cp = append([]byte(nil), data...)
	}
	target.Post(reactor.Task{Fn: task, ID: id, Data: cp, Arg: arg})
}

func responseTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		c.Ctx.(*connState).p.httpResponse(c, uint8(t.Arg), t.Data)
	}
}

func responseBodyTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		c.Ctx.(*connState).p.httpResponseBody(c, uint8(t.Arg), t.Data)
	}
}

func windowTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		st := c.Ctx.(*connState)
		if st.http != nil && st.http.w != nil {
			st.p.requestCredit(c, st.http.w, t.Arg)
		}
	}
}

func sendTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		sendByWorker(c, t.Arg, t.Data)
	}
}

// sendByWorker writes a worker's Send to c: a stream connection, which
// any worker may send to (Swoole's send($fd)). On an HTTP connection the
// bytes would bypass the master's framing (a response injected into
// someone else's keep-alive connection): dropped with a log line.
func sendByWorker(c *reactor.Conn, slot int, p []byte) {
	if st := c.Ctx.(*connState); st.http != nil {
		st.p.streamFrameOnHTTP(c, slot, ipc.TypeSend)
		return
	}
	c.Write(p)
}

// streamFrameOnHTTP logs a Send or CloseConn that named an HTTP
// connection: the first and every 1000th, with the count. It is not a
// protocol violation: the id may be a stream connection's that closed, its
// number reused.
func (p *Plane) streamFrameOnHTTP(c *reactor.Conn, slot int, t ipc.Type) {
	if n := p.ipc.onHTTP.Add(1); n == 1 || n%1000 == 0 {
		p.log.WithFields(logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "worker_id": slot, "frame": t.String(), "dropped": n}).
			Warn("stream frame for an HTTP connection dropped")
	}
}

func bindTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		bindConn(c, binary.BigEndian.Uint64(t.Data))
	}
}

// bindConn binds c to a uid (dispatch_mode 5): its next events go to the
// uid's worker.
func bindConn(c *reactor.Conn, uid uint64) {
	st := c.Ctx.(*connState)
	st.uid, st.uidBound = uid, true
}

func closeConnTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		closeByWorker(c, t.Arg)
	}
}

// closeByWorker closes c after its output, as worker slot's CloseConn
// asks; not an HTTP connection (see sendByWorker).
func closeByWorker(c *reactor.Conn, slot int) {
	st := c.Ctx.(*connState)
	if st.http != nil {
		st.p.streamFrameOnHTTP(c, slot, ipc.TypeCloseConn)
		return
	}
	st.byWorker = true
	c.CloseWhenFlushed()
}

func connDoneTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		c.Ctx.(*connState).p.connDone(c)
	}
}

func closeWithTask(l *reactor.Loop, t *reactor.Task) {
	if c := l.Conn(t.ID); c != nil {
		if !c.Ctx.(*connState).p.failHTTP(c, t.Err) {
			c.Close(t.Err)
		}
	}
}

// maxConcurrency is max_concurrency, with its default when unset (a Master
// built by hand in tests).
func (p *Plane) maxConcurrency() int {
	if p.cfg != nil && p.cfg.MaxConcurrency > 0 {
		return p.cfg.MaxConcurrency
	}
	return config.DefaultMaxConcurrency
}

// workerBufferSize is worker_buffer_size, with its default when unset.
func (p *Plane) workerBufferSize() int64 {
	if p.cfg != nil && p.cfg.WorkerBufferSize > 0 {
		return int64(p.cfg.WorkerBufferSize)
	}
	return int64(config.DefaultWorkerBufferSize)
}

// held is what the master holds for w: bytes its socket pair did not take
// at the last flush, and the payloads queued for it. Called with
// dispatcher.mu held.
func (w *Worker) held() int64 { return w.outBytes.Load() + w.queueBytes }

// full reports whether held has reached worker_buffer_size: w gets no new
// request, task or message until it reads. Called with dispatcher.mu held.
func (w *Worker) full() bool { return w.held() >= w.p.workerBufferSize() }

// free reports whether w has a free slot: fewer events or requests in
// flight than its declared concurrency, and room in its buffer. Called
// with dispatcher.mu held.
func (w *Worker) free() bool { return w.inflight < w.concurrency && !w.full() }

// ahead reports whether an HTTP request may be sent ahead to w, past its
// concurrency: it prefetches, has room for one more, is not held back by
// a slow client's answer, and has room in its buffer. Called with
// dispatcher.mu held.
func (w *Worker) ahead() bool {
	return w.inflight < w.concurrency+w.prefetch && w.heldBack.Load() == 0 && !w.full()
}

// refused notes that a stream event or a message was refused for w, its
// buffer being full: unless its socket pair takes bytes again,
// worker_send_timeout runs. (An HTTP request that merely goes to another
// worker does not count: a sequential worker busy with a long request may
// hold a large body it has not read yet.)
func (w *Worker) refused() {
	now := time.Now().UnixNano()
	if w.refusedAt.Load() == 0 {
		w.lastTook.Store(now) // from now on flushOut keeps it
	}
	w.refusedAt.Store(now)
}

// checkStuck replaces the workers whose socket pair has taken none of the
// bytes waiting for them for worker_send_timeout, as of now, while their
// full buffer made the master refuse work for them: they are stuck, or do
// not read at all, and their share of the clients would be refused for
// ever. Runs on reactor loop 0, once a second (OnTick).
func (p *Plane) checkStuck(now time.Time) {
	timeout := p.cfg.WorkerSendTimeout.D()
	if timeout <= 0 {
		return
	}
	for _, wi := range p.disp.snapshot() {
		w := wi.w
		refused, took := w.refusedAt.Load(), w.lastTook.Load()
		if refused == 0 || refused <= took || w.outBytes.Load() == 0 || wi.state == stateDead ||
			now.Sub(time.Unix(0, took)) < timeout {
			continue
		}
		p.takeOut(w, fmt.Sprintf("worker_send_timeout (%s) exceeded: its socket pair took none of the %d bytes waiting for it (worker_buffer_size %d)",
			timeout, w.outBytes.Load(), p.workerBufferSize()), true,
			"worker killed: it stopped reading its socket pair; starting a successor")
	}
}
