package worker

import (
	"sync"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// Concurrency > 1 uses a leader/follower scheme with a lazy hand-over of
// the reading. One goroutine at a time, the leader, reads fd 3. An event
// for a connection that is already busy joins that connection's queue and
// the leader reads on. An event for an idle connection, or an HTTP request,
// makes the leader that connection's drainer: it handles the event at once,
// on the goroutine that read it, then the events queued behind it. It does
// so without starting another reader first — it lends the reading role
// (lend) — and when it is done it takes the role back (reclaim) and reads
// on, so a request that is answered quickly costs no goroutine start and no
// cross-thread wake-up. A new leader is started (wakeReader) only when the
// role is still lent and: the same handler has held it for a whole check
// period (one Server-wide timer, see lend), or a handler waits for frames
// (a task result). The drainer whose role was taken exits once its queue
// is empty. So each connection has at most one goroutine, events of a
// connection run in order (one reader at a time, on one ipc.Reader), and
// no goroutine exists for an idle connection. The master bounds events in
// flight by the declared concurrency, which bounds drainers and queue
// lengths too.
//
// A handler that waits for a frame of its own request (the next piece of
// its body, credit for its response) while nobody reads takes the role
// and reads itself (readThrough) instead of starting a leader and waiting
// for it: a long body then costs no hand-over between goroutines per
// piece. It gives the role back (lent to itself, as to any handler) once
// a frame of its request arrived, and hands it to a new leader along with
// a frame only a leader handles (a new request, a message, the stop frame).

// lendThreshold is the check period for a goroutine that runs the event it
// read while nobody reads fd 3. A handler that blocks (on a lock, a
// database, a request of another connection) gets a reader after one to
// two periods; the Go runtime's own hand-off of a P stuck in a system call
// waits 20 µs. (Timers this short may fire up to about 1 ms late when every
// P is idle: the netpoller sleeps in whole milliseconds.)
const lendThreshold = 50 * time.Microsecond

// Reading role states (Server.role).
const (
	roleReading int32 = iota // a goroutine reads fd 3, or is about to
	roleLent                 // the last reader runs a handler; nobody reads
)

// lend hands the reading role to the handler that is about to run on the
// calling goroutine, which was the leader.
//
// A lend costs no timer operation while the timer is armed: resetting a
// runtime timer to fire sooner than every other wakes the thread that
// sleeps in the netpoller, and a reset per request cost the hello
// benchmark about 4 % of its requests/s. Instead each lend takes a number,
// and the timer, armed by the first lend of a busy period, checks every
// period whether the lend it saw last still holds the role (then that
// handler has run at least a period: start a reader), re-arms while lends
// go on, and disarms once the role is back with a reader.
func (s *Server) lend() {
	s.lendSeq.Add(1)
	s.role.Store(roleLent)
	s.armLendCheck()
}

// armLendCheck arms the lend timer for the latest lend unless it is armed.
func (s *Server) armLendCheck() {
	if s.lendArmed.CompareAndSwap(false, true) {
		s.lendSeen.Store(s.lendSeq.Load())
		s.lendTimer.Reset(s.opt.lendThreshold)
	}
}

// checkLend is the lend timer's function (see lend).
func (s *Server) checkLend() {
	if s.role.Load() == roleLent {
		seq := s.lendSeq.Load()
		if seq != s.lendSeen.Swap(seq) {
			s.lendTimer.Reset(s.opt.lendThreshold) // a newer lend: watch it
			return
		}
		s.wakeReader() // the same lend for a whole period
	}
	s.lendArmed.Store(false)
	// A lend between the role check and the store above saw the timer
	// armed and left it: arm it for that lend.
	if s.role.Load() == roleLent {
		s.armLendCheck()
	}
}

// reclaim takes the reading role back after the handler of lend returned;
// false means another goroutine reads now and the caller must exit.
func (s *Server) reclaim() bool {
	return s.role.CompareAndSwap(roleLent, roleReading)
}

// wakeReader starts a leader if the role is lent: the handler holding it
// ran too long or waits for a frame. Safe from any goroutine; a late call
// (the role was lent again since) only starts a reader early.
func (s *Server) wakeReader() {
	if s.role.CompareAndSwap(roleLent, roleReading) {
		if s.opt.onLeaderStart != nil {
			s.opt.onLeaderStart()
		}
		go s.leadFn()
	}
}

// event is one Connect, Data or Close whose payload was copied out of the
// read buffer.
type event struct {
	typ ipc.Type
	buf *[]byte // pooled copy of the payload; nil when it was empty
}

func (e event) payload() []byte {
	if e.buf == nil {
		return nil
	}
	return *e.buf
}

// maxPooled is the largest buffer kept for reuse; bigger packets are rare
// and their buffers go to the garbage collector.
const maxPooled = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func newEvent(t ipc.Type, payload []byte) event {
	if len(payload) == 0 {
		return event{typ: t}
	}
	bp := bufPool.Get().(*[]byte)
	*bp = append((*bp)[:0], payload...)
	return event{typ: t, buf: bp}
}

func (e event) release() {
	if e.buf != nil && cap(*e.buf) <= maxPooled {
		bufPool.Put(e.buf)
	}
}

// connQueue holds the events of one busy connection waiting for its drainer.
type connQueue struct {
	events []event
	head   int
}

var queuePool = sync.Pool{New: func() any { return new(connQueue) }}

func (q *connQueue) push(e event) { q.events = append(q.events, e) }

func (q *connQueue) pop() (event, bool) {
	if q.head == len(q.events) {
		q.events, q.head = q.events[:0], 0
		return event{}, false
	}
	e := q.events[q.head]
	q.events[q.head] = event{}
	q.head++
	return e, true
}

// lead reads frames until it lost the reading role or reading ends; in the
// latter case it reports Serve's verdict on s.result.
// After the stop frame it goes on reading only for the body and cancel
// frames of HTTP requests in flight (draining), until the last of them
// shuts the reading down.
func (s *Server) lead() {
	for {
		h, payload, err := s.ch.r.ReadFrame()
		// Answers wait while more frames are buffered: one write for a batch.
		s.ch.w.Hold(err == nil && s.ch.r.Ready())
		if !s.leadFrame(h, payload, err) {
			return
		}
	}
}

// leadFrom is lead for a goroutine started with a frame already read (err:
// the read's error) by a handler reading through (readThrough), which
// handed it the role.
func (s *Server) leadFrom(h ipc.Header, payload []byte, err error) {
	if s.leadFrame(h, payload, err) {
		s.lead()
	}
}

// leadFrame handles one frame the leader read (err: the read's error); false
// means the calling goroutine is no longer the leader and must return.
func (s *Server) leadFrame(h ipc.Header, payload []byte, err error) bool {
	if err != nil || s.stopping.Load() && !s.draining {
		s.httpReadEnded()
		s.result <- s.readEnded(err)
		return false
	}
	if s.draining && h.Type != ipc.TypeRequestBody && h.Type != ipc.TypeCancel && h.Type != ipc.TypeWindow &&
		h.Type != ipc.TypeTaskResult && h.Type != ipc.TypeRelease {
		return true
	}
	switch h.Type {
	case ipc.TypeStop:
		s.stopFrame()
		if s.draining = s.drainHTTP(); s.draining {
			return true
		}
		s.result <- nil
		return false
	case ipc.TypeRequest:
		x := s.startRequest(h.ID, payload)
		if x == nil {
			return true
		}
		s.lend()
		x.serve()
		return s.reclaim()
	case ipc.TypeTaskResult:
		s.taskResultFrame(h, payload)
	case ipc.TypeMessage:
		// On this goroutine, as a request: in order per sender. The
		// payload is copied: a new reader may reuse the buffer.
		data := append([]byte(nil), payload...)
		s.lend()
		s.message(int(h.ID), data)
		return s.reclaim()
	case ipc.TypeRequestBody, ipc.TypeCancel, ipc.TypeWindow:
		s.requestFrame(h, payload, s.ownedPiece())
	case ipc.TypeRelease:
		s.releaseFrame(payload)
	case ipc.TypeConnect, ipc.TypeData, ipc.TypeClose:
		ev := newEvent(h.Type, payload)
		s.mu.Lock()
		if q := s.busy[h.ID]; q != nil {
			q.push(ev)
			s.mu.Unlock()
			return true
		}
		q := queuePool.Get().(*connQueue)
		s.busy[h.ID] = q
		s.active.Add(1)
		s.mu.Unlock()
		s.lend()
		s.drain(h.ID, q, ev)
		return s.reclaim()
	}
	// Other types are newer than this SDK: ignored, without Done.
	return true
}

// takeRole takes the reading role for the calling goroutine if nobody
// reads (it is lent); readThrough then reads.
func (s *Server) takeRole() bool {
	return s.role.CompareAndSwap(roleLent, roleReading)
}

// readThrough reads frames on the goroutine of x's handler, which took the
// reading role (takeRole) because it waits for a frame of its request,
// until one arrives: then it lends the role to itself (the handler goes
// on, and the lend timer starts a reader if it runs long), or, at a frame
// only a leader handles, it starts a leader with that frame and the role.
// The caller rechecks what it waits for: the frame may not have brought it.
func (s *Server) readThrough(x *exchange) {
	for {
		h, payload, err := s.ch.r.ReadFrame()
		if err == nil && h.Type == ipc.TypeRelease {
			s.releaseFrame(payload)
			continue
		}
		if err != nil || s.stopping.Load() || h.Type != ipc.TypeRequestBody && h.Type != ipc.TypeCancel && h.Type != ipc.TypeWindow {
			s.ch.w.Hold(err == nil && s.ch.r.Ready())
			if s.opt.onLeaderStart != nil {
				s.opt.onLeaderStart()
			}
			go s.leadFrom(h, payload, err)
			return
		}
		s.requestFrame(h, payload, s.ownedPiece())
		if h.ID == x.conn {
			// The handler writes next: nothing waits behind a hold.
			s.ch.w.Hold(false)
			s.lend()
			return
		}
		s.ch.w.Hold(s.ch.r.Ready())
	}
}

// drain handles ev and then every event queued for conn, in order.
func (s *Server) drain(conn uint64, q *connQueue, ev event) {
	for {
		s.handle(ev.typ, conn, ev.payload())
		ev.release()
		s.done(conn)
		s.mu.Lock()
		next, ok := q.pop()
		if !ok {
			delete(s.busy, conn)
			s.mu.Unlock()
			queuePool.Put(q)
			s.active.Done()
			return
		}
		s.mu.Unlock()
		ev = next
	}
}
