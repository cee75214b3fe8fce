package master

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/sdnotify"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master/plane"
)

// Replacing workers without losing a request: rolling reload (SIGUSR1,
// SIGUSR2, drover reload) and recycling (max_request). A slot is replaced
// by starting a successor next to the running worker (CtlReplace); once the
// successor said hello it takes the slot's new work, the predecessor gets
// its stop frame, finishes what it has in flight and exits (the manager
// escalates to signals after max_wait_time). A successor that fails to
// start leaves the predecessor in service.
//
// A replacement and a reload are state machines owned by the master's
// loop (replacement, reloadRun): they advance on the loop's events (a
// worker's hello, a worker's exit, a deadline's evReplaceTimeout, a
// control request), and no goroutine waits for them.

// errReloadBusy refuses a reload while another replacement runs.
var errReloadBusy = errors.New("a reload is already in progress; wait for it to finish")

// successorTimeout bounds the wait for a successor's hello.
func (m *Master) successorTimeout(role string) time.Duration {
	h := &m.cfg.Worker
	if role == ipc.RoleTaskWorker {
		h = &m.cfg.TaskWorker
	}
	if d := h.StartTimeout.D(); d > 0 {
		return d + 2*time.Second
	}
	return time.Minute
}

// replacement is one worker being replaced (reload, max_request,
// max_memory, its Retire frame): a state machine on the master's loop, which
// owns it. It waits for the successor's hello (evWorkerReady) or its
// failure (evWorkerExited, or successorTimeout: evReplaceTimeout), then for
// the old worker's exit (evWorkerExited, or max_wait_time and a margin).
type replacement struct {
	old   *plane.Worker
	cause string
	log   *logrus.Entry
	succ  *plane.Worker   // the successor, once it said hello
	timer *time.Timer     // the deadline of the current phase
	end   func(err error) // runs on the loop when it is over; err: the successor did not start
}

// evReplaceTimeout: the deadline of r's phase (succ: the phase it was
// armed in, nil for the successor's hello) passed.
type evReplaceTimeout struct {
	r    *replacement
	succ *plane.Worker
}

// replace starts replacing the worker old with a successor; end runs on
// the loop once the successor serves and old has exited (nil), or once the
// successor could not start (old then keeps serving). Runs on the loop.
func (m *Master) replace(old *plane.Worker, cause string, end func(error)) {
	r := &replacement{old: old, cause: cause, log: old.Log().WithField("cause", cause), end: end}
	r.log.Info("replacing worker: starting its successor")
	if m.replacing == nil {
		m.replacing = make(map[*plane.Worker]*replacement)
	}
	m.replacing[old] = r
	m.notifyManager(ipc.CtlReplace, old, cause)
	r.timer = time.AfterFunc(m.successorTimeout(old.Role()), func() { m.post(evReplaceTimeout{r: r}) })
}

// replaceReady advances the replacements whose successor is w. Runs on the
// loop.
func (m *Master) replaceReady(w *plane.Worker) {
	for _, r := range m.replacing {
		if r.succ != nil || w.Role() != r.old.Role() || w.Slot() != r.old.Slot() || w.Gen() <= r.old.Gen() {
			continue
		}
		// The successor took the slot at its hello; the predecessor now
		// only finishes what it has.
		r.succ = w
		r.timer.Stop()
		inflight := m.plane.Retire(r.old)
		r.log.WithFields(logrus.Fields{"successor_pid": w.PID(), "in_flight": inflight}).
			Info("successor ready; old worker finishes its requests and leaves")
		m.plane.Stop(r.old)
		m.notifyManager(ipc.CtlRetire, r.old, r.cause)
		r.timer = time.AfterFunc(m.cfg.MaxWaitTime.D()+3*time.Second, func() { m.post(evReplaceTimeout{r: r, succ: w}) })
	}
}

// replaceExited advances the replacements that the exit ev ends: the old
// worker's once its successor serves, or a successor's that never said
// hello. Runs on the loop.
func (m *Master) replaceExited(ev ipc.WorkerEvent) {
	// Ending one may start others (a reload's next batch): decide on the
	// replacements as they are now.
	for _, r := range m.replacements() {
		switch {
		case m.replacing[r.old] != r:
			// over already
		case r.succ != nil && ev.Gen == r.old.Gen():
			m.replaceOver(r, nil)
		case r.succ == nil && ev.Role == r.old.Role() && ev.Slot == r.old.Slot() && ev.Gen > r.old.Gen():
			err := fmt.Errorf("worker %d: its successor failed to start: %s; the old worker (pid %d) keeps serving",
				r.old.Slot(), describeExit(ev), r.old.PID())
			r.log.WithError(err).Error("replacement failed")
			m.replaceOver(r, err)
		}
	}
}

// replacements returns the replacements in progress. Runs on the loop.
func (m *Master) replacements() []*replacement {
	rs := make([]*replacement, 0, len(m.replacing))
	for _, r := range m.replacing {
		rs = append(rs, r)
	}
	return rs
}

// replaceTimedOut ends a replacement whose phase deadline passed. Runs on
// the loop.
func (m *Master) replaceTimedOut(e evReplaceTimeout) {
	r := e.r
	if m.replacing[r.old] != r || r.succ != e.succ {
		return // over, or in its next phase, already
	}
	if r.succ == nil {
		err := fmt.Errorf("worker %d: its successor did not say hello within %s; the old worker (pid %d) keeps serving",
			r.old.Slot(), m.successorTimeout(r.old.Role()), r.old.PID())
		r.log.WithError(err).Error("replacement failed")
		m.replaceOver(r, err)
		return
	}
	r.log.Warn("old worker still running after max_wait_time; the manager is killing it")
	m.replaceOver(r, nil)
}

// replaceOver ends r. Runs on the loop.
func (m *Master) replaceOver(r *replacement, err error) {
	delete(m.replacing, r.old)
	r.timer.Stop()
	r.end(err)
}

// replaceStop ends the replacements in progress as drover stops: those
// waiting for a successor fail, the others are over. Runs on the loop.
func (m *Master) replaceStop() {
	for _, r := range m.replacements() {
		if m.replacing[r.old] != r {
			continue // over already
		}
		var err error
		if r.succ == nil {
			err = errors.New("drover is stopping")
		}
		m.replaceOver(r, err)
	}
}

// reloadRun is a reload in progress, owned by the master's loop: it
// replaces targets reload_batch at a time, each batch once the one before
// is over, and stops after the batch in which a successor failed to start.
type reloadRun struct {
	what     string // "workers" or "task workers"
	targets  []*plane.Worker
	next     int     // index in targets of the next batch
	running  int     // replacements of the current batch not over
	errs     []error // of the current batch
	done     int     // replaced
	start    time.Time
	progress func(string)
	finish   func(n int, err error)
}

// reload starts replacing every worker (and task worker), or only the
// task workers; progress runs after each batch and finish at the end,
// both on the loop. It fails at once (errReloadBusy, or during an
// upgrade) without calling them. Runs on the loop.
func (m *Master) reload(tasksOnly bool, progress func(string), finish func(n int, err error)) error {
	if m.upgrading {
		return errors.New("an upgrade is in progress; reload the new master once it is over")
	}
	if m.reloadRun != nil {
		return errReloadBusy
	}
	// Claimed like a recycling, so that max_request does not replace them
	// meanwhile; one being recycled already is left to that.
	targets := m.plane.Claim(func(w *plane.Worker) bool {
		switch {
		case w.Role() == ipc.RoleProcess:
			// User processes stay unless they opted in (processes[].reload).
			return !tasksOnly && w.Slot() < len(m.cfg.Processes) && m.cfg.Processes[w.Slot()].Reload
		case tasksOnly:
			return w.Role() == ipc.RoleTaskWorker
		}
		return true
	})
	run := &reloadRun{what: "workers", targets: targets, start: time.Now(), progress: progress, finish: finish}
	if tasksOnly {
		run.what = "task workers"
	}
	m.reloadRun = run
	sdnotify.Reloading(m.log) // READY=1 follows in reloadEnd
	m.log.WithFields(logrus.Fields{"count": len(targets), "reload_batch": max(m.cfg.ReloadBatch, 1)}).Info("reload: replacing " + run.what)
	m.reloadBatch()
	return nil
}

// reloadBatch starts the next batch of the reload, or ends it. Runs on the
// loop.
func (m *Master) reloadBatch() {
	run := m.reloadRun
	if m.stopping.Load() && run.next < len(run.targets) {
		for _, left := range run.targets[run.next:] {
			m.plane.Unclaim(left)
		}
		m.reloadEnd(run.done, fmt.Errorf("reload stopped after %d/%d %s: drover is stopping", run.done, len(run.targets), run.what))
		return
	}
	if run.next >= len(run.targets) {
		m.log.WithFields(logrus.Fields{"count": len(run.targets), "took_ms": time.Since(run.start).Milliseconds()}).Info("reload done")
		m.reloadEnd(len(run.targets), nil)
		return
	}
	group := run.targets[run.next:min(run.next+max(m.cfg.ReloadBatch, 1), len(run.targets))]
	run.running, run.errs = len(group), nil
	for _, w := range group {
		m.replace(w, "reload", func(err error) { m.reloadReplaced(run, err) })
	}
}

// reloadReplaced counts a replacement of the current batch as over, and
// starts the next batch once all are. Runs on the loop.
func (m *Master) reloadReplaced(run *reloadRun, err error) {
	if err == nil {
		run.done++
	}
	run.errs = append(run.errs, err)
	if run.running--; run.running > 0 {
		return
	}
	batch := min(max(m.cfg.ReloadBatch, 1), len(run.targets)-run.next)
	if err := errors.Join(run.errs...); err != nil {
		for _, left := range run.targets[run.next:] {
			m.plane.Unclaim(left)
		}
		m.log.WithFields(logrus.Fields{"replaced": run.done, "of": len(run.targets)}).Error("reload stopped: " + err.Error())
		m.reloadEnd(run.done, fmt.Errorf("reload stopped after %d/%d %s: %w", run.done, len(run.targets), run.what, err))
		return
	}
	run.next += batch
	run.progress(fmt.Sprintf("reloaded %d/%d %s", run.done, len(run.targets), run.what))
	m.reloadBatch()
}

// reloadEnd ends the reload in progress. Runs on the loop.
func (m *Master) reloadEnd(n int, err error) {
	run := m.reloadRun
	m.reloadRun = nil
	m.counters.reloaded(err)
	sdnotify.Ready(m.log) // the end of what Reloading began
	run.finish(n, err)
	m.watchNext() // a reload the watch asked for meanwhile may start
}

// recycle replaces w (max_request, max_memory), unless a reload runs
// (which replaces it anyway) or drover stops; w was claimed (recycling).
// Runs on the loop.
func (m *Master) recycle(w *plane.Worker, cause string) {
	if m.reloadRun != nil || m.stopping.Load() {
		m.plane.Unclaim(w)
		return
	}
	m.replace(w, cause, func(err error) {
		if err != nil {
			m.plane.Unclaim(w) // tried again later
		}
	})
}

// retire replaces a worker that asked for it (evRetire). Runs on the loop.
func (m *Master) retire(w *plane.Worker, cause string) {
	back := func() {
		m.plane.Unclaim(w)
		m.plane.Resume(w)
	}
	if m.stopping.Load() {
		back()
		return
	}
	m.replace(w, cause, func(err error) {
		if err != nil {
			back()
		}
	})
}

// reloadFor runs a reload asked for on the control socket, writing its
// progress and result to the client's connection, then closing it. The
// writes go through a goroutine of the connection's own: a client that
// does not read must not hold the loop. Runs on the loop.
func (m *Master) reloadFor(req controlReq) {
	out := make(chan Response, 64)
	go func() {
		if req.sent != nil {
			<-req.sent // "reload started" goes first
		}
		for r := range out {
			writeResponse(req.conn, r)
		}
		req.conn.Close()
	}()
	// Only the loop sends, and the last place is kept for the result: the
	// loop never blocks on out. A client that far behind misses progress
	// lines, not its result.
	send := func(r Response) {
		if len(out) < cap(out)-1 {
			out <- r
		}
	}
	what := "workers"
	if req.Tasks {
		what = "task workers"
	}
	err := m.reload(req.Tasks, func(msg string) {
		send(Response{OK: true, Progress: true, Message: msg})
	}, func(n int, err error) {
		if err != nil {
			out <- Response{Error: err.Error()}
		} else {
			out <- Response{OK: true, Message: fmt.Sprintf("reloaded %d %s", n, what)}
		}
		close(out)
	})
	if err != nil {
		out <- Response{Error: err.Error()}
		close(out)
	}
}

// evMemory: the manager found worker gen's RSS over its max_memory
// (CtlOverMemory; the manager samples it, manager/memory.go).
type evMemory struct {
	gen uint64
	rss uint64
}

func (m *Master) memoryLimits() map[string]uint64 {
	return map[string]uint64{ipc.RoleWorker: uint64(m.cfg.Worker.MaxMemory), ipc.RoleTaskWorker: uint64(m.cfg.TaskWorker.MaxMemory)}
}

// memoryChecked recycles a worker the manager found over its
// max_memory, the graceful way (the successor first), unless it is being
// replaced already. Runs on the loop.
func (m *Master) memoryChecked(e evMemory) {
	w := m.plane.ByGen(e.gen)
	if w == nil || len(m.plane.Claim(func(x *plane.Worker) bool { return x == w })) == 0 {
		return // gone, or being replaced
	}
	key := "max_memory"
	if w.Role() == ipc.RoleTaskWorker {
		key = "task_worker.max_memory"
	}
	m.recycle(w, fmt.Sprintf("%s exceeded (RSS %s > %s)", key, humanSize(e.rss), humanSize(m.memoryLimits()[w.Role()])))
}

// humanSize formats n bytes as MiB with one decimal.
func humanSize(n uint64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

// evWatch reports files changed under the watch paths.
type evWatch struct{ change string }

// startWatch watches the config's watch paths, if any, for changes that
// reload the workers. A watcher that cannot start is logged, and drover
// serves on without it.
func (m *Master) startWatch() io.Closer {
	if len(m.cfg.Watch) == 0 {
		return nil
	}
	if m.opts.Watch == nil {
		m.log.WithField("paths", m.cfg.Watch).Warn("watch: this build cannot watch paths; changes will not reload the workers")
		return nil
	}
	w, err := m.opts.Watch(m.cfg.Watch, func(change string) { m.post(evWatch{change}) }, func(err error) {
		m.log.WithError(err).Error("watch: a problem with the watched paths; watching goes on for the rest")
	})
	if err != nil {
		m.log.WithError(err).Error("watch: cannot watch the watch paths; changes will not reload the workers (fix the watch list and restart)")
		return nil
	}
	m.log.WithField("paths", m.cfg.Watch).Info("watching for changes: a change reloads the workers")
	return w
}

// watchReload asks for a reload after a change under the watch paths.
// Changes during a reload make one more reload after it, so that the
// workers always end up running what is on disk. Runs on the loop.
func (m *Master) watchReload(change string) {
	if m.stopping.Load() {
		return
	}
	m.log.WithField("change", change).Info("watch: files changed; reloading the workers")
	m.watchDue = true // if one is due already, it takes this change too
	m.watchNext()
}

// watchNext starts the reload the watch asked for, unless one runs (a
// watch reload, or one of a signal or drover reload): then the end of that
// reload (reloadEnd) brings the loop back here. Runs on the loop.
func (m *Master) watchNext() {
	if !m.watchDue || m.reloadRun != nil || m.stopping.Load() {
		return
	}
	m.watchDue = false
	err := m.reload(false, func(string) {}, func(_ int, err error) {
		if err != nil {
			m.log.WithError(err).Error("watch: reload failed; the workers not replaced keep serving, and the next change tries again")
		}
	})
	if err != nil { // an upgrade runs
		m.log.WithError(err).Error("watch: reload failed; the workers not replaced keep serving, and the next change tries again")
	}
}
