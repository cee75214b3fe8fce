package plane

import (
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// Tasks: a worker sends TypeTask (its own task id), the master hands it to
// a task worker with a free slot under a master task id, or queues it (up
// to task_queue_max), and routes the task worker's TypeTaskResult back to
// the asking incarnation under the asker's id. A result for an incarnation
// that has left is dropped with a log line: a successor never receives its
// predecessor's results. A task queued when its asker leaves still runs
// (an async task is work someone counts on). Runs on reactor loops (the workers' frames) and
// the master's loop (task workers ready or gone); one mutex guards it.

// taskRec is a task in flight at a task worker.
type taskRec struct {
	asker   *Worker     // the incarnation that asked
	askerID uint64      // its id for the task
	at      *Worker     // the task worker running it
	timer   *time.Timer // task_timeout, if set
}

// queuedTask waits for a task worker with a free slot.
type queuedTask struct {
	asker   *Worker
	askerID uint64
	data    []byte
}

// taskRouter routes tasks between workers and task workers. p is
// read-only; every other field is guarded by mu: the workers' loops submit
// and finish tasks, timers time them out, and the control plane's calls
// (Attach, Exited, Snapshot) kick the queue and count.
type taskRouter struct {
	p      *Plane
	mu     sync.Mutex
	next   uint64
	flight map[uint64]*taskRec
	busy   map[*Worker]int // tasks in flight per task worker
	queue  []queuedTask
}

func newTaskRouter(p *Plane) *taskRouter {
	return &taskRouter{p: p, flight: make(map[uint64]*taskRec), busy: make(map[*Worker]int)}
}

// fail answers a task with an error at once.
func fail(l *reactor.Loop, asker *Worker, id uint64, msg string) {
	asker.writeFlags(l, ipc.TypeTaskResult, ipc.FlagAbort, id, []byte(msg))
}

// submit takes a worker's task: to a task worker with a free slot, or the
// queue, or an immediate error. Runs on l.
func (tr *taskRouter) submit(l *reactor.Loop, asker *Worker, id uint64, data []byte) {
	if tr.p.cfg.TaskWorkerNum == 0 {
		tr.p.countTask(taskRefused)
		fail(l, asker, id, "no task workers: set task_worker_num and task_worker.cmd in the config")
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tw := tr.idle(); tw != nil {
		tr.start(l, tw, asker, id, data)
		return
	}
	if max := tr.p.cfg.TaskQueueMax; len(tr.queue) >= max {
		tr.p.countTask(taskRefused)
		fail(l, asker, id, fmt.Sprintf("task queue full: %d tasks wait for a task worker (task_queue_max); retry later or add task workers", max))
		return
	}
	tr.queue = append(tr.queue, queuedTask{asker: asker, askerID: id, data: append([]byte(nil), data...)})
}

// idle returns a ready task worker with a free slot, the least busy first.
// Called with mu held.
func (tr *taskRouter) idle() *Worker {
	return tr.p.disp.pickTask(func(w *Worker) int { return tr.busy[w] })
}

// start sends a task to tw. Called with mu held.
func (tr *taskRouter) start(l *reactor.Loop, tw, asker *Worker, askerID uint64, data []byte) {
	tr.next++
	rec := &taskRec{asker: asker, askerID: askerID, at: tw}
	if d, _ := tr.p.cfg.TaskLimit(); d > 0 {
		id := tr.next
		rec.timer = time.AfterFunc(d, func() { tr.timedOut(id) })
	}
	tr.flight[tr.next] = rec
	tr.busy[tw]++
	tw.write(l, ipc.TypeTask, tr.next, data)
}

// finish routes a task worker's result to the worker that asked, then
// starts queued tasks. Runs on l.
func (tr *taskRouter) finish(l *reactor.Loop, tw *Worker, id uint64, flags uint8, result []byte) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	rec := tr.flight[id]
	if rec == nil || rec.at != tw {
		return fmt.Errorf("%w: result for task %d, which is not in flight at this task worker", errProtocol, id)
	}
	delete(tr.flight, id)
	if rec.timer != nil {
		rec.timer.Stop()
	}
	tr.busy[tw]--
	tr.p.wakeDrain()
	tr.p.disp.taskDone(tw)
	if flags&ipc.FlagAbort != 0 {
		tr.p.countTask(taskError)
	} else {
		tr.p.countTask(taskOK)
	}
	if tr.p.disp.alive(rec.asker) {
		rec.asker.writeFlags(l, ipc.TypeTaskResult, flags&ipc.FlagAbort, rec.askerID, result)
	} else {
		rec.asker.log.WithFields(logrus.Fields{"task_worker_id": tw.slot, "task_worker_pid": tw.pid}).
			Info("task result dropped: the worker that asked for it has left")
	}
	tr.drain(l)
	return nil
}

// drain starts queued tasks while task workers have free slots. Called
// with mu held.
func (tr *taskRouter) drain(l *reactor.Loop) {
	for len(tr.queue) > 0 {
		tw := tr.idle()
		if tw == nil {
			return
		}
		q := tr.queue[0]
		tr.queue[0] = queuedTask{}
		tr.queue = tr.queue[1:]
		// Run even when the asker has left (a reload replaced it): an
		// async task is work someone counts on being done; only its
		// result is dropped, with a log line (finish).
		tr.start(l, tw, q.asker, q.askerID, q.data)
	}
	if len(tr.queue) == 0 {
		tr.queue = nil
	}
}

// kick starts queued tasks after a task worker became ready. Safe from any
// goroutine.
func (tr *taskRouter) kick() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.drain(nil)
}

// gone fails the tasks in flight at a task worker that left, and forgets
// the tasks of a worker that left (their results would be dropped).
func (tr *taskRouter) gone(w *Worker, reason string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.busy, w)
	for id, rec := range tr.flight {
		if rec.at != w {
			continue
		}
		delete(tr.flight, id)
		tr.p.countTask(taskLost)
		if tr.p.disp.alive(rec.asker) {
			fail(nil, rec.asker, rec.askerID, fmt.Sprintf("task worker %d (pid %d) left while running this task: %s", w.slot, w.pid, reason))
		}
	}
	if w.role == ipc.RoleTaskWorker {
		tr.drain(nil)
	}
	tr.p.wakeDrain()
}

// inFlight is how many tasks w runs, for drover status.
func (tr *taskRouter) inFlight(w *Worker) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.busy[w]
}

// globalID is w's worker id for messages: workers first, then task
// workers, then user processes.
func (p *Plane) globalID(w *Worker) int {
	switch w.role {
	case ipc.RoleTaskWorker:
		return p.cfg.WorkerCap() + w.slot
	case ipc.RoleProcess:
		return p.cfg.WorkerCap() + p.cfg.TaskWorkerCap() + w.slot
	}
	return w.slot
}

// routeMessage passes a message from w to the worker running as id, or
// drops it with a log line. Runs on l.
func (p *Plane) routeMessage(l *reactor.Loop, from *Worker, id int, data []byte) {
	to := p.disp.byID(id, p.cfg.WorkerCap(), p.cfg.TaskWorkerCap())
	if to == nil {
		e := from.log.WithFields(logrus.Fields{"to": id, "workers": p.cfg.WorkerIDs(), "task_workers": p.cfg.TaskWorkerNum})
		if p.cfg.Pool.Dynamic && id >= 0 && id < p.cfg.WorkerCap() {
			// A slot the dynamic pool does not run now: expected, and a
			// message to every worker id would log one line per such slot.
			e.Debug("message dropped: the dynamic pool runs no worker under that id now")
			return
		}
		e.Warn("message dropped: no worker runs under that id (workers are 0..worker_num-1, then task workers)")
		return
	}
	if p.disp.isFull(to) {
		// A worker that does not read would otherwise make the master
		// buffer every message sent to it.
		to.refused()
		if n := to.dropped.Add(1); n == 1 || n%1000 == 0 {
			to.log.WithFields(logrus.Fields{"from": p.globalID(from), "dropped": n, "worker_buffer_size": p.workerBufferSize()}).
				Warn("message dropped: the worker's buffer is full (it does not read its socket pair); the sender is not told")
		}
		return
	}
	to.write(l, ipc.TypeMessage, uint64(p.globalID(from)), data)
}

// timedOut fails a task that ran past its limit (task_timeout or
// task_worker.request_timeout) and replaces its task worker, which is stuck
// (or too slow for the limit).
func (tr *taskRouter) timedOut(id uint64) {
	tr.mu.Lock()
	rec := tr.flight[id]
	if rec == nil {
		tr.mu.Unlock()
		return // answered meanwhile
	}
	delete(tr.flight, id)
	tr.busy[rec.at]--
	tr.mu.Unlock()
	tr.p.countTask(taskTimeout)
	tr.p.wakeDrain()
	d, key := tr.p.cfg.TaskLimit()
	if tr.p.disp.alive(rec.asker) {
		fail(nil, rec.asker, rec.askerID, fmt.Sprintf("%s (%s) exceeded at task worker %d (pid %d), which is replaced", key, d, rec.at.slot, rec.at.pid))
	}
	tr.p.takeOut(rec.at, fmt.Sprintf("%s (%s) exceeded by a task", key, d), true,
		"task worker killed: a task exceeded "+key+"; starting a successor")
}

// left is how many tasks wait for a task worker and how many run at one.
func (tr *taskRouter) left() (queued, running int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.queue), len(tr.flight)
}

// queued is how many tasks wait for a task worker, for drover status.
func (tr *taskRouter) queued() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.queue)
}
