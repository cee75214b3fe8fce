package master

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/process"
	"github.com/sirupsen/logrus"

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

// lifeSubs fans worker lifecycle events out to replacements in progress.
// mu guards subs: the master's loop publishes, each replace goroutine
// subscribes and unsubscribes.
type lifeSubs struct {
	mu   sync.Mutex
	subs map[chan any]struct{}
}

func (ls *lifeSubs) subscribe() chan any {
	ch := make(chan any, 64)
	ls.mu.Lock()
	if ls.subs == nil {
		ls.subs = make(map[chan any]struct{})
	}
	ls.subs[ch] = struct{}{}
	ls.mu.Unlock()
	return ch
}

func (ls *lifeSubs) unsubscribe(ch chan any) {
	ls.mu.Lock()
	delete(ls.subs, ch)
	ls.mu.Unlock()
}

// publish hands ev to every subscriber; a full subscriber misses it (it
// then times out with a clear message rather than blocking the master).
func (ls *lifeSubs) publish(ev any) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for ch := range ls.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

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

// replace replaces the worker old with a successor and returns once the
// successor serves and old has exited, or with an error when the successor
// could not start (old then keeps serving). Runs outside the master's loop.
func (m *Master) replace(old *worker, cause string) error {
	sub := m.life.subscribe()
	defer m.life.unsubscribe(sub)
	log := old.log.WithField("cause", cause)
	log.Info("replacing worker: starting its successor")
	m.notifyManager(ipc.CtlReplace, old, cause)
	timeout := time.NewTimer(m.successorTimeout(old.role))
	defer timeout.Stop()
	var succ *worker
	for succ == nil {
		select {
		case ev := <-sub:
			switch e := ev.(type) {
			case evWorkerReady:
				if e.w.role == old.role && e.w.slot == old.slot && e.w.gen > old.gen {
					succ = e.w
				}
			case evWorkerExited:
				if e.ev.Role == old.role && e.ev.Slot == old.slot && e.ev.Gen > old.gen {
					err := fmt.Errorf("worker %d: its successor failed to start: %s; the old worker (pid %d) keeps serving",
						old.slot, describeExit(e.ev), old.pid)
					log.WithError(err).Error("replacement failed")
					return err
				}
			}
		case <-timeout.C:
			err := fmt.Errorf("worker %d: its successor did not say hello within %s; the old worker (pid %d) keeps serving",
				old.slot, m.successorTimeout(old.role), old.pid)
			log.WithError(err).Error("replacement failed")
			return err
		case <-m.done:
			return errors.New("drover is stopping")
		}
	}
	// The successor took the slot at its hello; the predecessor now only
	// finishes what it has.
	inflight := m.disp.retire(old)
	log.WithFields(logrus.Fields{"successor_pid": succ.pid, "in_flight": inflight}).
		Info("successor ready; old worker finishes its requests and leaves")
	old.write(nil, ipc.TypeStop, 0, nil)
	m.notifyManager(ipc.CtlRetire, old, cause)
	wait := time.NewTimer(m.cfg.MaxWaitTime.D() + 3*time.Second)
	defer wait.Stop()
	for {
		select {
		case ev := <-sub:
			if e, ok := ev.(evWorkerExited); ok && e.ev.Gen == old.gen {
				return nil
			}
		case <-wait.C:
			log.Warn("old worker still running after max_wait_time; the manager is killing it")
			return nil
		case <-m.done:
			return nil
		}
	}
}

// reload replaces every worker (and task worker), or only the task
// workers, reload_batch at a time (default 1), reporting progress. It stops
// after the batch in which a successor failed to start.
func (m *Master) reload(tasksOnly bool, progress func(string)) (int, error) {
	if m.upgrading.Load() {
		return 0, errors.New("an upgrade is in progress; reload the new master once it is over")
	}
	if !m.reloading.CompareAndSwap(false, true) {
		return 0, errReloadBusy
	}
	defer func() {
		m.reloading.Store(false)
		m.post(evReloadEnded{}) // a reload the watch asked for meanwhile may start
	}()
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
	what := "workers"
	if tasksOnly {
		what = "task workers"
	}
	start := time.Now()
	batch := max(m.cfg.ReloadBatch, 1)
	m.log.WithFields(logrus.Fields{"count": len(targets), "reload_batch": batch}).Info("reload: replacing " + what)
	done := 0
	for b := 0; b < len(targets); b += batch {
		group := targets[b:min(b+batch, len(targets))]
		errs := make([]error, len(group))
		var wg sync.WaitGroup
		for i, w := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = m.replace(w, "reload")
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err == nil {
				done++
			}
		}
		if err := errors.Join(errs...); err != nil {
			for _, left := range targets[b:] {
				m.disp.unmarkRecycling(left)
			}
			m.log.WithFields(logrus.Fields{"replaced": done, "of": len(targets)}).Error("reload stopped: " + err.Error())
			return done, fmt.Errorf("reload stopped after %d/%d %s: %w", done, len(targets), what, err)
		}
		progress(fmt.Sprintf("reloaded %d/%d %s", done, len(targets), what))
	}
	m.log.WithFields(logrus.Fields{"count": len(targets), "took_ms": time.Since(start).Milliseconds()}).Info("reload done")
	return len(targets), nil
}

// recycle replaces w (max_request, max_memory), unless a reload runs
// (which replaces it anyway) or drover stops; w was claimed (recycling).
func (m *Master) recycle(w *worker, cause string) {
	if m.reloading.Load() || m.stopping.Load() {
		m.disp.unmarkRecycling(w)
		return
	}
	go func() {
		if err := m.replace(w, cause); err != nil {
			m.disp.unmarkRecycling(w) // tried again later
		}
	}()
}

// retireAsked handles a worker's Retire frame: it gets no new work from now
// on (it is at its limit) and is replaced the graceful way. If its
// successor cannot start it takes work again, as a failed max_request
// recycling leaves the old worker serving. Runs on the worker's loop.
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
	go func() {
		if err := m.replace(w, cause); err != nil {
			m.disp.unmarkRecycling(w)
			m.disp.resume(w)
		}
	}()
}

// reloadFor runs a reload asked for on the control socket, writing its
// progress and result to the client's connection, then closing it.
func (m *Master) reloadFor(req controlReq) {
	defer req.conn.Close()
	n, err := m.reload(req.Tasks, func(msg string) {
		writeResponse(req.conn, Response{OK: true, Progress: true, Message: msg})
	})
	if err != nil {
		writeResponse(req.conn, Response{Error: err.Error()})
		return
	}
	what := "workers"
	if req.Tasks {
		what = "task workers"
	}
	writeResponse(req.conn, Response{OK: true, Message: fmt.Sprintf("reloaded %d %s", n, what)})
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

// evReloadEnded: a reload (of any origin) is over; a reload the watch
// asked for meanwhile may start.
type evReloadEnded struct{}

// evWatchReloaded: the reload the watch started is over, with its error.
type evWatchReloaded struct{ err error }

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
// watch reload, or one of a signal or drover reload): then evReloadEnded
// or evWatchReloaded brings the loop back here once it is over. Runs on
// the loop.
func (m *Master) watchNext() {
	if !m.watchDue || m.watchBusy || m.reloading.Load() || m.stopping.Load() {
		return
	}
	m.watchDue, m.watchBusy = false, true
	go func() {
		_, err := m.reload(false, func(string) {})
		m.post(evWatchReloaded{err})
	}()
}

// watchReloaded handles the end of a reload the watch started. Runs on the
// loop.
func (m *Master) watchReloaded(err error) {
	m.watchBusy = false
	switch {
	case errors.Is(err, errReloadBusy):
		m.watchDue = true // another reload started first: ours follows it
	case err != nil:
		m.log.WithError(err).Error("watch: reload failed; the workers not replaced keep serving, and the next change tries again")
	}
	m.watchNext()
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
