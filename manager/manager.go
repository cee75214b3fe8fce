package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
)

// ControlFD is the manager's end of its control channel with the master.
const ControlFD = 3

// Manager is the manager process: it owns the children table; slot
// supervisors and the control reader report to its loop.
type Manager struct {
	cfg  *config.Config
	log  *logrus.Entry // the manager's own lines (role manager, its pid)
	base *logrus.Entry // for children's lines, which carry their own pid
	ctl  *ipc.Control
	gen  atomic.Uint64
	stop chan struct{} // closed when the manager is stopping

	// initSlots are the slots to supervise at start (ipc.Init); nil: the
	// configured ones.
	initSlots map[string][]int

	mu       sync.Mutex
	children map[uint64]*child // live incarnations by gen
	slots    map[slotKey]*slot
	cred     *syscall.Credential // workers' user and group; nil: the manager's
	launches map[string]string   // resolved launch mode by handler path
	shm      *os.File            // the shared tables' memfd (shared.go), nil without; read-only
	wg       sync.WaitGroup      // slot supervisors
	// reqArena is the master's request arena (CtlInit), passed to every
	// worker; nil without one. Read-only after Run's start.
	reqArena *os.File
}

// Run serves as the manager until the master asks it to stop or goes
// away. ctlFile is the control channel inherited from the master.
func Run(ctlFile *os.File, log *logrus.Entry) error {
	ctl, err := ipc.NewControl(ctlFile)
	ctlFile.Close()
	if err != nil {
		return err
	}
	defer ctl.Close()
	h, payload, files, err := ctl.Recv()
	if err != nil || h.Type != ipc.CtlInit {
		return fmt.Errorf("manager: no init message from the master (%v, %s)", err, h.Type)
	}
	var init ipc.Init
	if err := ipc.Unmarshal(payload, &init); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	var cfg config.Config
	if err := json.Unmarshal(init.Config, &cfg); err != nil {
		return fmt.Errorf("manager: decode config: %w", err)
	}
	mg := &Manager{cfg: &cfg, base: log, log: log.WithFields(logrus.Fields{"role": ipc.RoleManager, "pid": os.Getpid()}),
		ctl: ctl, stop: make(chan struct{}),
		children: make(map[uint64]*child), launches: make(map[string]string), slots: make(map[slotKey]*slot)}
	mg.gen.Store(init.GenBase)
	if len(files) > 0 {
		mg.reqArena = files[0] // the request arena (ipc.NewArena), kept for the manager's life
	}
	mg.initSlots = map[string][]int{ipc.RoleWorker: init.WorkerSlots, ipc.RoleTaskWorker: init.TaskSlots}
	if mg.cred, err = cfg.WorkerCredential(); err != nil {
		return fmt.Errorf("manager: %w", err) // the master checked it before starting us
	}
	if mg.shm, err = inheritShared(); err != nil {
		return err
	}
	return mg.run()
}

func (mg *Manager) run() error {
	for _, i := range mg.startSlots(ipc.RoleWorker, mg.cfg.WorkerNum) {
		mg.supervise(ipc.RoleWorker, i, &mg.cfg.Worker, mg.cfg.WorkerIDs(), false)
	}
	for _, i := range mg.startSlots(ipc.RoleTaskWorker, mg.cfg.TaskWorkerNum) {
		mg.supervise(ipc.RoleTaskWorker, i, &mg.cfg.TaskWorker, mg.cfg.TaskWorkerNum, false)
	}
	for i := range mg.cfg.Processes {
		mg.supervise(ipc.RoleProcess, i, &mg.cfg.Processes[i].Handler, len(mg.cfg.Processes), false)
	}
	go mg.watchMemory()
	mg.log.WithFields(logrus.Fields{"workers": mg.cfg.WorkerNum, "task_workers": mg.cfg.TaskWorkerNum}).Info("manager running")
	for {
		h, payload, files, err := mg.ctl.Recv()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			// The master is gone: nobody is left to serve, so leave at once.
			mg.log.WithError(err).Warn("master went away; killing workers and exiting")
			mg.shutdown(0)
			return nil
		}
		var ev ipc.WorkerEvent
		if len(payload) > 0 && h.Type != ipc.CtlStats {
			if err := ipc.Unmarshal(payload, &ev); err != nil {
				mg.log.WithError(err).WithField("type", h.Type.String()).Error("bad message from the master; ignored")
				continue
			}
		}
		switch h.Type {
		case ipc.CtlShutdown:
			if ev.Cause == ipc.ShutdownForce {
				// Nothing to finish (a stop --force, a start that failed):
				// every child and its process group at once.
				mg.killAll()
				mg.shutdown(0)
				return nil
			}
			mg.shutdown(mg.cfg.MaxWaitTime.D())
			return nil
		case ipc.CtlWorkerReady:
			if c := mg.child(ev.Gen); c != nil {
				c.markReady()
			}
		case ipc.CtlKill:
			if c := mg.child(ev.Gen); c != nil {
				c.kill(ev.Cause)
			}
		case ipc.CtlStats:
			go mg.stats(h.ID)
		case ipc.CtlReplace:
			mg.mu.Lock()
			s := mg.slots[slotKey{ev.Role, ev.Slot}]
			mg.mu.Unlock()
			if s != nil {
				s.replace <- ev.Cause
			}
		case ipc.CtlAddSlot:
			mg.addSlot(ev.Role, ev.Slot)
		case ipc.CtlDropSlot:
			mg.dropSlot(ev.Role, ev.Slot, ev.Cause)
		case ipc.CtlRetire:
			if c := mg.child(ev.Gen); c != nil {
				c.retire(mg.cfg.MaxWaitTime.D(), ev.Cause)
			}
		}
	}
}

// slotKey names a worker slot.
type slotKey struct {
	role string
	id   int
}

func (mg *Manager) child(gen uint64) *child {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return mg.children[gen]
}

// shutdown stops the supervisors and every child: the master has sent each
// worker its stop frame; after wait, SIGTERM, then SIGKILL one second later.
// It returns once every child was reaped and what each left in its process
// group has ended (child.endGroup).
func (mg *Manager) shutdown(wait time.Duration) {
	close(mg.stop)
	mg.mu.Lock()
	live := make([]*child, 0, len(mg.children))
	for _, c := range mg.children {
		live = append(live, c)
	}
	mg.mu.Unlock()
	deadline := time.After(wait)
	for _, c := range live {
		select {
		case <-c.done:
		case <-deadline:
			c.signal(syscall.SIGTERM)
		}
	}
	deadline = time.After(time.Second)
	for _, c := range live {
		select {
		case <-c.done:
		case <-deadline:
			c.signal(syscall.SIGKILL)
			<-c.done
		}
	}
	mg.wg.Wait()
	mg.log.Info("manager stopped")
}

// killAll sends SIGKILL to every child's process group.
func (mg *Manager) killAll() {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	for _, c := range mg.children {
		c.kill("drover stopped at once")
	}
}

// report sends a control message to the master; a failure means the master
// is gone, which the control reader handles.
func (mg *Manager) report(t ipc.Type, ev ipc.WorkerEvent, files ...*os.File) {
	ev.Cause = cutLine(ev.Cause)
	err := mg.ctl.Send(t, ev.Gen, ev, files...)
	switch {
	case errors.Is(err, ipc.ErrFrameTooLarge):
		// Cannot happen with cut lines; said loudly should it ever.
		mg.log.WithError(err).WithFields(logrus.Fields{"type": t.String(), "role": ev.Role, "worker_id": ev.Slot, "pid": ev.PID}).
			Error("report to the master too large; not sent")
	case err != nil:
		mg.log.WithError(err).WithField("type", t.String()).Debug("master unreachable")
	}
}

// stats answers a CtlStats request with the Go runtime figures of every
// plugin-launched child that answers within half a second.
func (mg *Manager) stats(id uint64) {
	mg.mu.Lock()
	var procs []*child
	for _, c := range mg.children {
		if c.proc != nil {
			procs = append(procs, c)
		}
	}
	mg.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[uint64]ipc.RuntimeStats, len(procs))
	for _, c := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := c.proc.Stats(ctx); err == nil {
				mu.Lock()
				out[c.gen] = ipc.RuntimeStats{Goroutines: st.Goroutines, HeapAlloc: st.HeapAlloc, HeapSys: st.HeapSys, NumGC: st.NumGC}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := mg.ctl.Send(ipc.CtlStatsReply, id, out); err != nil {
		mg.log.WithError(err).Debug("master unreachable")
	}
}
