package plane

import (
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// A pool that changes size while it serves. The control plane decides how
// many workers run (drover scale, SIGTTIN/SIGTTOU, a dynamic worker_num)
// and tells the data plane with Resize; the data plane tells it when
// requests wait too long (Waited) and answers how long a worker has been
// idle (IdleSince), so that the control plane's decisions need no poll of
// the loops.
//
// Slots. The dispatcher holds workers by slot in a table as long as the
// highest slot in use plus one; Resize grows it before a new slot's worker
// says hello and shrinks it once the slots above were retired (their
// workers, retiring, take no new work and finish what they have). Modes 2
// and 4 place a connection by its home modulo the table's length, mode 5 a
// bound uid likewise: when the pool changes size, connections already
// bound to a worker stay on it; new ones, and those whose worker retires,
// are placed by the new length (the worker that takes a connection over
// first receives its Connect).

// Waited: a request or stream event that began to wait for a worker after
// the newest worker said hello has waited longer than
// worker_num.queue_wait: a dynamic pool grows. Posted by the loops at most
// once per waitedEvery, and only for a dynamic pool.
type Waited struct {
	Wait time.Duration
}

// waitedEvery bounds how often the loops post Waited: the control plane
// starts one worker at a time anyway, and a storm of waiting requests must
// not become a storm of events.
const waitedEvery = 10 * time.Millisecond

// poolWatch is the data plane's part in a dynamic pool. queueWait is set
// by New, then read-only; the atomics are written by any loop (posted) and
// by the worker's owner loop at its hello (joined).
type poolWatch struct {
	queueWait time.Duration // worker_num.queue_wait; 0: a fixed pool, no Waited
	joined    atomic.Int64  // when the newest worker said hello (unix ns)
	posted    atomic.Int64  // when the last Waited was posted (unix ns)
}

// waited notes that an HTTP request or a stream event that began to wait
// at queuedAt still waited (or went to a worker) at now; past queue_wait
// it posts Waited, unless it began to wait before the newest worker said
// hello (that worker may be all it needed) or waitedEvery has not passed
// since the last one. Safe from any loop; allocates nothing.
func (p *Plane) waited(queuedAt, now time.Time) {
	pw := &p.pool
	if pw.queueWait == 0 || now.Sub(queuedAt) < pw.queueWait || queuedAt.UnixNano() <= pw.joined.Load() {
		return
	}
	last, n := pw.posted.Load(), now.UnixNano()
	if n-last < int64(waitedEvery) || !pw.posted.CompareAndSwap(last, n) {
		return
	}
	p.events(Waited{Wait: now.Sub(queuedAt)})
}

// Resize sets the number of slots of role the dispatcher holds (the
// highest slot in use plus one) and, for workers, over how many of the
// lowest slots the lead of HTTP mode 3 rotates: a dynamic pool keeps it on
// its min slots, so that requests fill the lowest workers first and those
// above go idle when the load drops. lead 0 is every slot. Runs on the
// control plane.
func (p *Plane) Resize(role string, slots, lead int) { p.disp.resize(role, slots, lead) }

// IdleSince returns since when w has had nothing in flight or queued (its
// hello, or its last answer), or false when it is busy.
func (p *Plane) IdleSince(w *Worker) (time.Time, bool) {
	since, idle := p.disp.idleSince(w)
	if idle && w.role == ipc.RoleTaskWorker && p.tasks.inFlight(w) > 0 {
		return time.Time{}, false
	}
	return since, idle
}

// BySlot returns the incarnation of role that takes new work at slot, or
// nil (none has said hello, or it is being replaced).
func (p *Plane) BySlot(role string, slot int) *Worker { return p.disp.bySlot(role, slot) }

// resize implements Resize.
func (d *dispatcher) resize(role string, n, lead int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	table := &d.workers
	if role == ipc.RoleTaskWorker {
		table = &d.tasks
	}
	if n > len(*table) {
		*table = append(*table, make([]*Worker, n-len(*table))...)
	} else {
		// Above n only retiring workers are left (the control plane retired
		// them first): they finish their work without being in the table.
		clear((*table)[n:])
		*table = (*table)[:n]
	}
	if role == ipc.RoleWorker {
		d.leadSlots = lead
		if d.lead >= d.rotate() {
			d.lead = 0
		}
	}
}

// rotate is how many of the lowest slots the lead of HTTP mode 3 rotates
// over. Called with mu held.
func (d *dispatcher) rotate() int {
	if n := len(d.workers); d.leadSlots <= 0 || d.leadSlots > n {
		return max(n, 1)
	}
	return d.leadSlots
}

// idleSince implements IdleSince for events and requests.
func (d *dispatcher) idleSince(w *Worker) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.state != stateReady || w.inflight > 0 || len(w.queue) > 0 {
		return time.Time{}, false
	}
	return w.lastDone, true
}

// bySlot implements BySlot.
func (d *dispatcher) bySlot(role string, slot int) *Worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	table := d.workers
	if role == ipc.RoleTaskWorker {
		table = d.tasks
	}
	if slot < 0 || slot >= len(table) || table[slot] == nil || table[slot].state != stateReady {
		return nil
	}
	return table[slot]
}
