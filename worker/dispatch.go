package worker

import (
	"sync"

	"github.com/drover-dev/drover/ipc"
)

// Concurrency > 1 uses a leader/follower scheme. One goroutine at a time,
// the leader, reads fd 3. An event for a connection that is already busy
// joins that connection's queue and the leader reads on. An event for an
// idle connection makes the leader start a new leader and become that
// connection's drainer: it handles the event at once, on the goroutine that
// read it, then the events queued behind it, and exits when the queue is
// empty. So each connection has at most one goroutine, events of a
// connection run in order, no goroutine exists for an idle connection, and
// the cost of waking a goroutine is paid by the next read rather than by
// the request that was just read. The master bounds events in flight by
// the declared concurrency, which bounds drainers and queue lengths too.

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

// lead reads frames until it hands the reading over or reading ends; in the
// latter case it reports Serve's verdict on s.result.
// After the stop frame it goes on reading only for the body and cancel
// frames of HTTP requests in flight (draining), until the last of them
// shuts the reading down.
func (s *Server) lead() {
	draining := false
	for {
		h, payload, err := s.ch.r.ReadFrame()
		if err != nil || s.stopping.Load() && !draining {
			s.httpReadEnded()
			s.result <- s.readEnded(err)
			return
		}
		if draining && h.Type != ipc.TypeRequestBody && h.Type != ipc.TypeCancel {
			continue
		}
		switch h.Type {
		case ipc.TypeStop:
			s.stopFrame()
			if draining = s.drainHTTP(); draining {
				continue
			}
			s.result <- nil
			return
		case ipc.TypeRequest:
			x := s.startRequest(h.ID, payload)
			if x == nil {
				continue
			}
			go s.leadFn()
			x.serve()
			return
		case ipc.TypeRequestBody, ipc.TypeCancel:
			s.requestFrame(h, payload)
			continue
		case ipc.TypeConnect, ipc.TypeData, ipc.TypeClose:
			ev := newEvent(h.Type, payload)
			s.mu.Lock()
			if q := s.busy[h.ID]; q != nil {
				q.push(ev)
				s.mu.Unlock()
				continue
			}
			q := queuePool.Get().(*connQueue)
			s.busy[h.ID] = q
			s.active.Add(1)
			s.mu.Unlock()
			go s.leadFn()
			s.drain(h.ID, q, ev)
			return
		}
		// Other types are newer than this SDK: ignored, without Done.
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
