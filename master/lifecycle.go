package master

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/shirou/gopsutil/v3/process"
	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/sdnotify"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
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

// evRecycle asks the master's loop to replace w (max_request). Events are
// values: written once by their sender, read by the loop.
type evRecycle struct {
	w     *worker
	cause string
}

// errReloadBusy refuses a reload while another replacement runs.
var errReloadBusy = errors.New("a reload is already in progress; wait for it to finish")

// recycleLimit is the number of events after which a worker of role is
// replaced: max_request plus a random 0..max_request_grace for workers,
// task_max_request for task workers, or 0 (never).
func (m *Master) recycleLimit(role string) uint64 {
	switch {
	case role == ipc.RoleWorker && m.cfg.MaxRequest > 0:
		return uint64(m.cfg.MaxRequest + rand.IntN(m.cfg.MaxRequestGrace+1))
	case role == ipc.RoleTaskWorker && m.cfg.TaskMaxRequest > 0:
		return uint64(m.cfg.TaskMaxRequest)
	}
	return 0
}

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
	old   *worker
	cause string
	log   *logrus.Entry
	succ  *worker         // the successor, once it said hello
	timer *time.Timer     // the deadline of the current phase
	end   func(err error) // runs on the loop when it is over; err: the successor did not start
}

// evReplaceTimeout: the deadline of r's phase (succ: the phase it was
// armed in, nil for the successor's hello) passed.
type evReplaceTimeout struct {
	r    *replacement
	succ *worker
}

// replace starts replacing the worker old with a successor; end runs on
// the loop once the successor serves and old has exited (nil), or once the
// successor could not start (old then keeps serving). Runs on the loop.
func (m *Master) replace(old *worker, cause string, end func(error)) {
	r := &replacement{old: old, cause: cause, log: old.log.WithField("cause", cause), end: end}
	r.log.Info("replacing worker: starting its successor")
	if m.replacing == nil {
		m.replacing = make(map[*worker]*replacement)
	}
	m.replacing[old] = r
	m.notifyManager(ipc.CtlReplace, old, cause)
	r.timer = time.AfterFunc(m.successorTimeout(old.role), func() { m.post(evReplaceTimeout{r: r}) })
}

// replaceReady advances the replacements whose successor is w. Runs on the
// loop.
func (m *Master) replaceReady(w *worker) {
	for _, r := range m.replacing {
		if r.succ != nil || w.role != r.old.role || w.slot != r.old.slot || w.gen <= r.old.gen {
			continue
		}
		// The successor took the slot at its hello; the predecessor now
		// only finishes what it has.
		r.succ = w
		r.timer.Stop()
		inflight := m.disp.retire(r.old)
		r.log.WithFields(logrus.Fields{"successor_pid": w.pid, "in_flight": inflight}).
			Info("successor ready; old worker finishes its requests and leaves")
		r.old.write(nil, ipc.TypeStop, 0, nil)
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
		case r.succ != nil && ev.Gen == r.old.gen:
			m.replaceOver(r, nil)
		case r.succ == nil && ev.Role == r.old.role && ev.Slot == r.old.slot && ev.Gen > r.old.gen:
			err := fmt.Errorf("worker %d: its successor failed to start: %s; the old worker (pid %d) keeps serving",
				r.old.slot, describeExit(ev), r.old.pid)
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
			r.old.slot, m.successorTimeout(r.old.role), r.old.pid)
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
	targets  []*worker
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
	targets := m.disp.claim(func(w *worker) bool {
		switch {
		case w.role == ipc.RoleProcess:
			// User processes stay unless they opted in (processes[].reload).
			return !tasksOnly && w.slot < len(m.cfg.Processes) && m.cfg.Processes[w.slot].Reload
		case tasksOnly:
			return w.role == ipc.RoleTaskWorker
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
			m.disp.unmarkRecycling(left)
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
			m.disp.unmarkRecycling(left)
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
	sdnotify.Ready(m.log) // the end of what Reloading began
	run.finish(n, err)
	m.watchNext() // a reload the watch asked for meanwhile may start
}

// recycle replaces w (max_request, max_memory), unless a reload runs
// (which replaces it anyway) or drover stops; w was claimed (recycling).
// Runs on the loop.
func (m *Master) recycle(w *worker, cause string) {
	if m.reloadRun != nil || m.stopping.Load() {
		m.disp.unmarkRecycling(w)
		return
	}
	m.replace(w, cause, func(err error) {
		if err != nil {
			m.disp.unmarkRecycling(w) // tried again later
		}
	})
}

// evRetire: worker w asked to be replaced (its Retire frame) and takes no
// new work.
type evRetire struct {
	w     *worker
	cause string
}

// retireAsked handles a worker's Retire frame: it gets no new work from now
// on (it is at its limit) and is replaced the graceful way, by the master's
// loop (evRetire). If its successor cannot start it takes work again, as a
// failed max_request recycling leaves the old worker serving. Runs on the
// worker's loop.
func (m *Master) retireAsked(w *worker, reason string) {
	cause := "the worker asked to be replaced"
	if reason != "" {
		cause += ": " + reason
	}
	if len(m.disp.claim(func(x *worker) bool { return x == w })) == 0 {
		w.log.WithField("cause", cause).Info("worker asked to be replaced; it is being replaced already")
		return
	}
	if m.stopping.Load() {
		m.disp.unmarkRecycling(w)
		return
	}
	m.disp.retire(w)
	m.post(evRetire{w: w, cause: cause})
}

// retire replaces a worker that asked for it (evRetire). Runs on the loop.
func (m *Master) retire(w *worker, cause string) {
	back := func() {
		m.disp.unmarkRecycling(w)
		m.disp.resume(w)
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

// memoryCheckEvery is how often worker.max_memory is checked.
const memoryCheckEvery = time.Second

// evMemory carries the RSS samples of a memory check: the workers over
// their max_memory, with their RSS.
type evMemory struct{ over map[*worker]uint64 }

// checkMemory samples the RSS of the ready workers and task workers that
// have a max_memory (worker.max_memory, task_worker.max_memory), off the
// loop (gopsutil reads /proc for each); the workers over their limit come
// back as evMemory. One check at a time. Runs on the master's loop.
func (m *Master) checkMemory() {
	if m.memChecking {
		return // the last one has not come back yet
	}
	limits := m.memoryLimits()
	var ws []*worker
	for _, wi := range m.disp.snapshot() {
		if limits[wi.w.role] > 0 && wi.state == stateReady {
			ws = append(ws, wi.w)
		}
	}
	if len(ws) == 0 {
		return
	}
	m.memChecking = true
	go func() {
		over := map[*worker]uint64{}
		for _, w := range ws {
			if rss := rssOf(w.pid); rss > limits[w.role] {
				over[w] = rss
			}
		}
		m.post(evMemory{over})
	}()
}

func (m *Master) memoryLimits() map[string]uint64 {
	return map[string]uint64{ipc.RoleWorker: uint64(m.cfg.Worker.MaxMemory), ipc.RoleTaskWorker: uint64(m.cfg.TaskWorker.MaxMemory)}
}

// memoryChecked recycles the workers a memory check found over their
// max_memory, the graceful way (the successor first). Runs on the loop.
func (m *Master) memoryChecked(over map[*worker]uint64) {
	m.memChecking = false
	if len(over) == 0 {
		return
	}
	limits := m.memoryLimits()
	for _, w := range m.disp.claim(func(w *worker) bool { _, ok := over[w]; return ok }) {
		key := "max_memory"
		if w.role == ipc.RoleTaskWorker {
			key = "task_worker.max_memory"
		}
		m.recycle(w, fmt.Sprintf("%s exceeded (RSS %s > %s)", key, humanSize(over[w]), humanSize(limits[w.role])))
	}
}

// rssOf is the resident set size of pid, 0 if unknown.
func rssOf(pid int) uint64 {
	if p, err := process.NewProcess(int32(pid)); err == nil {
		if mi, err := p.MemoryInfo(); err == nil {
			return mi.RSS
		}
	}
	return 0
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

// streamTimedOut closes a stream connection whose worker has held an event
// longer than worker.request_timeout, and replaces that worker: a handler
// that hangs would hold its slot for ever. Runs on c's loop.
func (m *Master) streamTimedOut(c *reactor.Conn, st *connState) {
	timeout := m.cfg.Worker.RequestTimeout.D()
	w := m.disp.owing(c.ID())
	fields := logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "request_timeout": timeout.String()}
	if w != nil {
		fields["worker_id"], fields["pid"] = w.slot, w.pid
	}
	m.log.WithFields(fields).Error("connection closed: its event exceeded worker.request_timeout; replacing the worker")
	c.Close(fmt.Errorf("worker.request_timeout (%s) exceeded", timeout))
	if w != nil {
		m.takeOut(w, fmt.Sprintf("request_timeout (%s) exceeded by an event of conn %d", timeout, c.ID()), true,
			"worker killed: an event exceeded worker.request_timeout; starting a successor")
	}
}
