package master

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master/plane"
)

// A pool that changes size while it serves, and worker TTLs. The loop owns
// a pool per role (workers, task workers): the slots the manager
// supervises, and the size the pool moves to (target). drover scale and
// SIGTTIN/SIGTTOU set the target; a dynamic worker_num moves it on its own:
// one more worker when the data plane reports a request that waited past
// queue_wait (plane.Waited), one fewer when the highest worker has been idle
// for idle_timeout. poolStep moves the slots to the target:
//
//   - growing adds the lowest free slot (plane.Resize, then CtlAddSlot); it
//     counts once its first worker said hello. One that exits before that
//     is dropped again: the pool does not grow by a worker that cannot
//     start (an explicit scale fails and says why; the dynamic pool waits a
//     back-off before it tries again).
//   - shrinking retires the highest slot the graceful way, as a reload
//     retires a predecessor: no new work (plane.Retire, its queued events go
//     to the others), the stop frame, then CtlDropSlot; the manager gives it
//     max_wait_time and reports CtlSlotGone once it exited. A slot whose
//     worker is being replaced (reload, max_request, ttl) is retired once
//     that replacement is over.
//
// Nothing polls: decisions run on the plane's events, the workers' hellos
// and exits, and timers (the dynamic pool's idle check, one per pool; a
// worker's ttl and idle_ttl, one each per worker).

// pool is one role's pool of slots. Owned by the master's loop.
type pool struct {
	role    string
	what    string // "workers", "task workers"
	dynamic bool
	// configured: worker_num (a dynamic pool's min), for status.
	configured int
	// min and max bound a dynamic pool (drover scale moves min); cap is the
	// most slots ever (the worker ids: config.WorkerCap).
	min, max, cap int
	idleTimeout   time.Duration
	target        int               // the size the pool moves to
	slots         map[int]*poolSlot // supervised slots
	leaving       map[int]bool      // dropped slots not gone yet (CtlSlotGone)
	growing       int               // the dynamic pool's slot being started, -1 none
	growFails     int               // growths in a row that failed
	growAfter     time.Time         // no growth before (back-off after a failure)
	atMax         bool              // said that requests wait at max (once per episode)
	idle          *time.Timer       // the dynamic pool's idle check, when armed
	waiters       []*scaleWait      // drover scale commands waiting for the result
	failed        []string          // why slots of the current scale did not start
}

// poolSlot is one supervised slot.
type poolSlot struct {
	joined bool      // a worker of it said hello (the slots at start count as joined)
	added  time.Time // when the pool grew by it
}

// scaling is the loop's state of pools and worker TTLs (Master.sc).
type scaling struct {
	pools map[string]*pool
	ttls  map[uint64]*ttlTimers // by worker generation
}

// ttlTimers are the timers of one worker's ttl and idle_ttl.
type ttlTimers struct {
	ttl, idle *time.Timer
}

// Events of the pools and TTLs for the loop.
type (
	evSlotGone struct {
		mgr  *managerProc
		role string
		slot int
	}
	evPoolIdle struct{ role string }
	evTTL      struct {
		gen  uint64
		idle bool
	}
	evScaleTimeout struct{ w *scaleWait }
)

// poolEvent handles the pools' and TTLs' events. Runs on the loop.
func (m *Master) poolEvent(ev any) {
	switch e := ev.(type) {
	case plane.Waited:
		m.poolWaited(e)
	case evSlotGone:
		m.slotGone(e)
	case evPoolIdle:
		m.poolIdle(e.role)
	case evTTL:
		m.ttlDue(e)
	case evScaleTimeout:
		m.scaleTimedOut(e.w)
	}
}

// growBackoff is the wait before a dynamic pool tries to grow again after
// failures new workers in a row failed to start: 1s doubling to 30s.
func growBackoff(failures int) time.Duration {
	return min(time.Second<<min(failures-1, 5), 30*time.Second)
}

// initPools builds the pools of the config. Runs before the manager starts.
func (m *Master) initPools() {
	m.sc.pools = make(map[string]*pool)
	m.sc.ttls = make(map[uint64]*ttlTimers)
	c := m.cfg
	p := newPool(ipc.RoleWorker, "workers", c.WorkerNum, c.WorkerCap())
	if c.Pool.Dynamic {
		p.dynamic, p.min, p.max, p.idleTimeout = true, c.Pool.Min, c.Pool.Max, c.Pool.IdleTimeout.D()
	}
	m.sc.pools[p.role] = p
	if c.TaskWorkerNum > 0 {
		m.sc.pools[ipc.RoleTaskWorker] = newPool(ipc.RoleTaskWorker, "task workers", c.TaskWorkerNum, c.TaskWorkerCap())
	}
}

func newPool(role, what string, n, cap int) *pool {
	p := &pool{role: role, what: what, configured: n, target: n, cap: cap, growing: -1,
		slots: make(map[int]*poolSlot, n), leaving: make(map[int]bool)}
	for i := range n {
		p.slots[i] = &poolSlot{joined: true}
	}
	return p
}

// poolOf is the pool of role, or nil (none: a Master built by hand).
func (m *Master) poolOf(role string) *pool { return m.sc.pools[role] }

// managerSlots are the slots a manager started now supervises (ipc.Init);
// the slots the previous manager was dropping are gone with it.
func (m *Master) managerSlots() (workers, tasks []int) {
	for _, p := range m.sc.pools {
		for s := range p.leaving {
			delete(m.slots, slotKey{p.role, s}) // status forgets it
		}
		clear(p.leaving)
	}
	sorted := func(p *pool) []int {
		if p == nil {
			return nil
		}
		return slices.Sorted(maps.Keys(p.slots))
	}
	return sorted(m.poolOf(ipc.RoleWorker)), sorted(m.poolOf(ipc.RoleTaskWorker))
}

// tableLen is the data plane's table length: the highest slot plus one.
func (p *pool) tableLen() int {
	n := 0
	for s := range p.slots {
		n = max(n, s+1)
	}
	return n
}

// lead is the HTTP lead's rotation (plane.Resize): a dynamic pool's min.
func (p *pool) lead() int {
	if p.dynamic {
		return p.min
	}
	return 0
}

// freeSlot is the lowest slot neither supervised nor leaving, or -1.
func (p *pool) freeSlot() int {
	for s := range p.cap {
		if p.slots[s] == nil && !p.leaving[s] {
			return s
		}
	}
	return -1
}

// top is the highest supervised slot.
func (p *pool) top() int {
	t := -1
	for s := range p.slots {
		t = max(t, s)
	}
	return t
}

// ready is how many slots said hello.
func (p *pool) ready() int {
	n := 0
	for _, s := range p.slots {
		if s.joined {
			n++
		}
	}
	return n
}

// settled reports whether the pool is at its target: every slot joined,
// every retired slot gone.
func (p *pool) settled() bool {
	return len(p.slots) == p.target && p.ready() == p.target && len(p.leaving) == 0
}

func (p *pool) log(m *Master) *logrus.Entry {
	return m.log.WithFields(logrus.Fields{"pool": p.role, "size": len(p.slots), "target": p.target})
}

// poolStep moves p's slots toward its target. Runs on the loop.
func (m *Master) poolStep(p *pool) (added []int) {
	if m.stopping.Load() {
		return nil
	}
	for len(p.slots) < p.target {
		s := p.freeSlot()
		if s < 0 {
			break // the free slots are still leaving: CtlSlotGone brings us back
		}
		p.slots[s] = &poolSlot{added: time.Now()}
		m.plane.Resize(p.role, p.tableLen(), p.lead())
		m.slotControl(ipc.CtlAddSlot, p.role, s, "")
		p.log(m).WithField("worker_id", s).Info("pool: starting a worker")
		added = append(added, s)
	}
	for len(p.slots) > p.target && m.retireSlot(p, p.top()) {
	}
	m.poolSettled(p)
	return added
}

// retireSlot retires slot s of p the graceful way (see above); false when
// its worker is being replaced: poolStep retires it once that is over.
// Runs on the loop.
func (m *Master) retireSlot(p *pool, s int) bool {
	for _, r := range m.replacing {
		if r.old.Role() == p.role && r.old.Slot() == s {
			return false
		}
	}
	inflight := 0
	if w := m.plane.BySlot(p.role, s); w != nil {
		if len(m.plane.Claim(func(x *plane.Worker) bool { return x == w })) == 0 {
			return false // claimed for a replacement that is about to start
		}
		inflight = m.plane.Retire(w)
		m.plane.Stop(w)
		m.stopTTL(w.Gen())
	}
	delete(p.slots, s)
	p.leaving[s] = true
	if p.growing == s {
		p.growing = -1 // it never said hello: no growth is in flight any more
	}
	m.plane.Resize(p.role, p.tableLen(), p.lead())
	m.slotControl(ipc.CtlDropSlot, p.role, s, "the pool shrank")
	p.log(m).WithFields(logrus.Fields{"worker_id": s, "in_flight": inflight}).Info("pool: retiring a worker; it finishes its requests and leaves")
	return true
}

// slotControl sends CtlAddSlot or CtlDropSlot to the manager.
func (m *Master) slotControl(t ipc.Type, role string, slot int, cause string) {
	mp := m.curMgr()
	if mp == nil {
		return
	}
	if err := mp.ctl.Send(t, 0, ipc.WorkerEvent{Role: role, Slot: slot, Cause: cause}); err != nil {
		// The manager is gone; the next one supervises the pool as it is
		// (managerSlots).
		m.log.WithError(err).WithField("type", t.String()).Debug("manager unreachable")
	}
}

// poolReady follows a worker's hello. Runs on the loop.
func (m *Master) poolReady(w *plane.Worker) {
	p := m.poolOf(w.Role())
	if p == nil {
		return
	}
	ps := p.slots[w.Slot()]
	if ps == nil {
		// The slot was dropped before its worker said hello.
		m.plane.Retire(w)
		m.plane.Stop(w)
		return
	}
	m.armTTL(w)
	if !ps.joined {
		ps.joined = true
		if p.growing == w.Slot() {
			p.growing = -1
		}
		p.growFails = 0
		p.log(m).WithFields(logrus.Fields{"worker_id": w.Slot(), "pid": w.PID(), "took_ms": time.Since(ps.added).Milliseconds()}).
			Info("pool: worker added")
	}
	if p.dynamic && len(p.slots) > p.min {
		m.armIdle(p, p.idleTimeout)
	}
	m.poolStep(p) // at its target, this only answers the scale commands
}

// poolExited follows a worker's exit (after the replacements saw it). Runs
// on the loop.
func (m *Master) poolExited(ev ipc.WorkerEvent) {
	if t := m.sc.ttls[ev.Gen]; t != nil {
		m.stopTTL(ev.Gen)
	}
	p := m.poolOf(ev.Role)
	if p == nil {
		return
	}
	if ps := p.slots[ev.Slot]; ps != nil && !ps.joined {
		// A slot the pool grew by lost its first worker before its hello:
		// drop it rather than let it crash-loop.
		why := fmt.Sprintf("worker %d failed to start: %s", ev.Slot, describeExit(ev))
		delete(p.slots, ev.Slot)
		p.leaving[ev.Slot] = true
		p.target--
		m.plane.Resize(p.role, p.tableLen(), p.lead())
		m.slotControl(ipc.CtlDropSlot, p.role, ev.Slot, "its first worker failed to start")
		p.failed = append(p.failed, why)
		if p.growing == ev.Slot {
			p.growing = -1
			p.growFails++
			wait := growBackoff(p.growFails)
			p.growAfter = time.Now().Add(wait)
			p.log(m).WithFields(logrus.Fields{"cause": why, "backoff": wait.String()}).
				Error("pool did not grow: the new worker failed to start; the pool tries again after the back-off")
		} else {
			p.log(m).WithField("cause", why).Error("pool did not grow by this worker: it failed to start")
		}
	}
	m.poolStep(p)
}

// slotGone follows CtlSlotGone: a dropped slot's last worker exited. Runs
// on the loop.
func (m *Master) slotGone(e evSlotGone) {
	if e.mgr != m.curMgr() {
		return
	}
	p := m.poolOf(e.role)
	if p == nil || !p.leaving[e.slot] {
		return
	}
	delete(p.leaving, e.slot)
	delete(m.slots, slotKey{e.role, e.slot}) // status forgets the slot
	p.log(m).WithField("worker_id", e.slot).Info("pool: worker retired")
	m.poolStep(p)
}

// poolWaited grows a dynamic pool by one worker: a request waited past
// queue_wait (plane.Waited). One start at a time, none while a reload, an
// upgrade or a drover scale runs, none within the back-off after a failed
// one. Runs on the loop.
func (m *Master) poolWaited(e plane.Waited) {
	p := m.poolOf(ipc.RoleWorker)
	if p == nil || !p.dynamic || p.growing >= 0 || m.stopping.Load() || m.reloadRun != nil || m.upgrading ||
		len(p.waiters) > 0 || time.Now().Before(p.growAfter) {
		return
	}
	if p.target >= p.max {
		if !p.atMax {
			p.atMax = true
			p.log(m).WithFields(logrus.Fields{"waited_ms": e.Wait.Milliseconds(), "max": p.max}).
				Warn("requests wait for a worker and the pool is at worker_num.max (raise it, or add capacity)")
		}
		return
	}
	p.atMax = false
	p.target++
	p.log(m).WithFields(logrus.Fields{"waited_ms": e.Wait.Milliseconds(), "queue_wait": m.cfg.Pool.QueueWait.D().String()}).
		Info("pool: requests wait longer than queue_wait; adding a worker")
	if added := m.poolStep(p); len(added) > 0 {
		p.growing = added[0]
	}
}

// armIdle arms p's idle check after d, unless it is armed. Runs on the
// loop.
func (m *Master) armIdle(p *pool, d time.Duration) {
	if p.idle != nil {
		return
	}
	role := p.role
	p.idle = time.AfterFunc(d, func() { m.post(evPoolIdle{role}) })
}

// poolIdle retires the highest worker of a dynamic pool above its min once
// it has been idle for idle_timeout, and checks the next one at once; else
// it checks again when the worker could be idle that long. Runs on the
// loop.
func (m *Master) poolIdle(role string) {
	p := m.poolOf(role)
	if p == nil {
		return
	}
	p.idle = nil
	if !p.dynamic || p.target <= p.min || m.stopping.Load() {
		return
	}
	if m.reloadRun != nil || m.upgrading || len(p.waiters) > 0 || p.growing >= 0 {
		m.armIdle(p, p.idleTimeout)
		return
	}
	s := p.top()
	w := m.plane.BySlot(p.role, s)
	if w == nil {
		m.armIdle(p, p.idleTimeout) // starting, or being replaced
		return
	}
	since, idle := m.plane.IdleSince(w)
	switch d := time.Since(since); {
	case !idle:
		m.armIdle(p, p.idleTimeout)
	case d < p.idleTimeout:
		m.armIdle(p, p.idleTimeout-d)
	default:
		p.target--
		p.log(m).WithFields(logrus.Fields{"worker_id": s, "pid": w.PID(), "idle": d.Round(time.Millisecond).String()}).
			Info("pool: worker idle for idle_timeout; retiring it")
		m.poolStep(p)
		m.armIdle(p, 0) // the next one may be idle as long
	}
}

// scaleWait is a drover scale waiting for its pool to settle. Owned by the
// loop.
type scaleWait struct {
	p        *pool
	from, to int
	start    time.Time
	timer    *time.Timer
	answer   func(Response) // the final answer (the connection closes after it)
}

// scaleTimeout bounds a drover scale: new workers get their start_timeout,
// retired ones max_wait_time, and the manager's ladder after it.
func (m *Master) scaleTimeout(p *pool) time.Duration {
	return m.successorTimeout(p.role) + m.cfg.MaxWaitTime.D() + 5*time.Second
}

// scale sets role's pool to n workers; w, if set, is answered once the
// pool settled or failed. It fails at once (without answering w) when n
// is out of range or something else runs. Runs on the loop.
func (m *Master) scale(role string, n int, w *scaleWait) error {
	p := m.poolOf(role)
	switch {
	case p == nil && role == ipc.RoleTaskWorker:
		return fmt.Errorf("no task workers to scale (task_worker_num is 0); drover scale without --tasks scales the workers")
	case p == nil:
		return fmt.Errorf("this master has no pool to scale")
	case n < 1 || n > p.cap:
		return fmt.Errorf("cannot scale %s to %d: %s", p.what, n, m.scaleRange(p))
	case m.stopping.Load():
		return fmt.Errorf("drover is stopping")
	case m.upgrading:
		return fmt.Errorf("an upgrade is in progress; scale the new master once it is over")
	case m.reloadRun != nil:
		return fmt.Errorf("a reload is in progress; scale once it is over")
	}
	from := p.target
	for _, old := range p.waiters {
		m.scaleOver(old, fmt.Errorf("superseded: the %s are being scaled to %d", p.what, n))
	}
	p.target, p.failed, p.atMax = n, nil, false
	if p.dynamic {
		// The pool grows from n on demand and shrinks back to it.
		p.min = n
		m.plane.Resize(p.role, p.tableLen(), p.lead())
	}
	if w != nil {
		w.p, w.from, w.to, w.start = p, from, n, time.Now()
		p.waiters = append(p.waiters, w)
		w.timer = time.AfterFunc(m.scaleTimeout(p), func() { m.post(evScaleTimeout{w}) })
	}
	p.log(m).WithFields(logrus.Fields{"from": from, "to": n}).Info("pool: scaling")
	m.poolStep(p)
	return nil
}

// scaleRange says which sizes a pool takes, and how to allow more.
func (m *Master) scaleRange(p *pool) string {
	switch {
	case p.dynamic:
		return fmt.Sprintf("want 1 to worker_num.max, %d", p.cap)
	case p.cap < config.MaxWorkers && p.role == ipc.RoleWorker:
		return fmt.Sprintf("want 1 to %d: the worker ids after the workers' belong to the task workers and processes "+
			"(messages address them by id); to let the pool grow, give worker_num a range, e.g. worker_num: {min: %d, max: %d}",
			p.cap, p.configured, 2*p.configured)
	case p.cap < config.MaxWorkers:
		return fmt.Sprintf("want 1 to %d: the worker ids after the task workers' belong to the processes (messages address them by id)", p.cap)
	}
	return fmt.Sprintf("want 1 to %d", p.cap)
}

// scaleBy is SIGTTIN (+1) and SIGTTOU (-1): one worker more or fewer.
func (m *Master) scaleBy(delta int, sig string) {
	p := m.poolOf(ipc.RoleWorker)
	if p == nil {
		return
	}
	log := m.log.WithField("signal", sig)
	if err := m.scale(ipc.RoleWorker, p.target+delta, nil); err != nil {
		log.Warn("pool not scaled: " + err.Error())
		return
	}
	log.WithField("workers", p.target).Info("pool: scaling by signal")
}

// poolSettled answers the drover scale commands p's state decides. Runs
// on the loop.
func (m *Master) poolSettled(p *pool) {
	for _, w := range slices.Clone(p.waiters) {
		switch {
		case len(p.failed) > 0 && len(p.slots) == p.target && p.ready() == p.target:
			m.scaleOver(w, fmt.Errorf("%s scaled to %d, not %d: %s; the others serve",
				p.what, p.target, w.to, strings.Join(p.failed, "; ")))
		case p.settled():
			m.scaleOver(w, nil)
		}
	}
}

// scaleOver answers w. Runs on the loop.
func (m *Master) scaleOver(w *scaleWait, err error) {
	p := w.p
	i := slices.Index(p.waiters, w)
	if i < 0 {
		return
	}
	p.waiters = slices.Delete(p.waiters, i, i+1)
	w.timer.Stop()
	took := time.Since(w.start)
	if err != nil {
		p.log(m).WithError(err).Error("drover scale failed")
		w.answer(Response{Error: err.Error()})
		return
	}
	w.answer(Response{OK: true, Message: fmt.Sprintf("scaled %s from %d to %d in %.1fs", p.what, w.from, w.to, took.Seconds())})
}

// scaleTimedOut answers a drover scale whose pool did not settle in time.
func (m *Master) scaleTimedOut(w *scaleWait) {
	p := w.p
	m.scaleOver(w, fmt.Errorf("the %s did not reach %d within %s: %d running, %d said hello, %d still leaving; the pool goes on toward %d",
		p.what, w.to, m.scaleTimeout(p), len(p.slots), p.ready(), len(p.leaving), p.target))
}

// scaleFor runs a drover scale from the control socket: its answer goes
// to the connection once the pool settled, through a goroutine of the
// connection's own (the loop never waits for a client). Runs on the loop.
func (m *Master) scaleFor(req controlReq) {
	role := ipc.RoleWorker
	if req.Tasks {
		role = ipc.RoleTaskWorker
	}
	out := make(chan Response, 1) // the one final answer
	w := &scaleWait{answer: func(r Response) { out <- r }}
	if err := m.scale(role, req.N, w); err != nil {
		req.reply <- Response{Error: err.Error()}
		return
	}
	req.reply <- Response{OK: true, Progress: true, Message: fmt.Sprintf("scaling %s from %d to %d", w.p.what, w.from, w.to)}
	go func() {
		<-req.sent // the progress line goes first
		writeResponse(req.conn, <-out)
		req.conn.Close()
	}()
}

// poolStop answers the scale commands waiting and stops the timers as
// drover stops. Runs on the loop.
func (m *Master) poolStop() {
	for _, p := range m.sc.pools {
		for _, w := range slices.Clone(p.waiters) {
			m.scaleOver(w, fmt.Errorf("drover is stopping"))
		}
		if p.idle != nil {
			p.idle.Stop()
			p.idle = nil
		}
	}
	for gen := range m.sc.ttls {
		m.stopTTL(gen)
	}
}

// PoolStatus is one pool's size in drover status (the master's row).
type PoolStatus struct {
	Role string `json:"role"`
	// Size is how many slots run (or start); Ready how many said hello;
	// Target the size the pool moves to; Configured the file's worker_num
	// (task_worker_num).
	Size       int `json:"size"`
	Ready      int `json:"ready"`
	Target     int `json:"target"`
	Configured int `json:"configured"`
	// Dynamic pools: the bounds now (drover scale moves Min).
	Dynamic bool `json:"dynamic,omitempty"`
	Min     int  `json:"min,omitempty"`
	Max     int  `json:"max,omitempty"`
}

// poolStatus describes the pools for drover status. Runs on the loop.
func (m *Master) poolStatus() []PoolStatus {
	var out []PoolStatus
	for _, role := range []string{ipc.RoleWorker, ipc.RoleTaskWorker} {
		p := m.poolOf(role)
		if p == nil {
			continue
		}
		ps := PoolStatus{Role: role, Size: len(p.slots), Ready: p.ready(), Target: p.target, Configured: p.configured}
		if p.dynamic {
			ps.Dynamic, ps.Min, ps.Max = true, p.min, p.max
		}
		out = append(out, ps)
	}
	return out
}

// armTTL arms w's ttl and idle_ttl timers, if its handler has them. Runs
// on the loop.
func (m *Master) armTTL(w *plane.Worker) {
	h := m.handlerOf(w.Role())
	if h == nil || h.TTL == 0 && h.IdleTTL == 0 {
		return
	}
	if m.sc.ttls == nil {
		m.sc.ttls = make(map[uint64]*ttlTimers)
	}
	t := &ttlTimers{}
	gen := w.Gen()
	if h.TTL > 0 {
		t.ttl = time.AfterFunc(h.TTL.D(), func() { m.post(evTTL{gen: gen}) })
	}
	if h.IdleTTL > 0 {
		t.idle = time.AfterFunc(h.IdleTTL.D(), func() { m.post(evTTL{gen: gen, idle: true}) })
	}
	m.sc.ttls[gen] = t
}

// stopTTL stops worker gen's TTL timers. Runs on the loop.
func (m *Master) stopTTL(gen uint64) {
	if t := m.sc.ttls[gen]; t != nil {
		if t.ttl != nil {
			t.ttl.Stop()
		}
		if t.idle != nil {
			t.idle.Stop()
		}
		delete(m.sc.ttls, gen)
	}
}

func (m *Master) handlerOf(role string) *config.Handler {
	switch role {
	case ipc.RoleWorker:
		return &m.cfg.Worker
	case ipc.RoleTaskWorker:
		return &m.cfg.TaskWorker
	}
	return nil
}

// ttlDue replaces a worker whose ttl passed, or whose idle_ttl passed
// with nothing served meanwhile (else its idle timer is armed for when it
// could be). Runs on the loop.
func (m *Master) ttlDue(e evTTL) {
	t := m.sc.ttls[e.gen]
	w := m.plane.ByGen(e.gen)
	if t == nil || w == nil {
		return
	}
	h := m.handlerOf(w.Role())
	cause := fmt.Sprintf("ttl (%s) reached", h.TTL)
	if e.idle {
		since, idle := m.plane.IdleSince(w)
		d := time.Since(since)
		if !idle || d < h.IdleTTL.D() {
			wait := h.IdleTTL.D()
			if idle {
				wait -= d
			}
			gen := e.gen
			t.idle = time.AfterFunc(wait, func() { m.post(evTTL{gen: gen, idle: true}) })
			return
		}
		cause = fmt.Sprintf("idle_ttl (%s) reached: idle for %s", h.IdleTTL, d.Round(time.Millisecond))
	}
	if m.reloadRun != nil || m.stopping.Load() || len(m.plane.Claim(func(x *plane.Worker) bool { return x == w })) == 0 {
		return // being replaced already, or a reload replaces it
	}
	m.stopTTL(e.gen)
	m.replace(w, cause, func(err error) {
		if err != nil {
			// Its successor failed (logged); it serves on, and is replaced
			// at its next ttl.
			m.plane.Unclaim(w)
			m.armTTL(w)
		}
	})
}
