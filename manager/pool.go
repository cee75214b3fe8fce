package manager

import (
	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
)

// A pool that changes size while it serves (drover scale, SIGTTIN and
// SIGTTOU, a dynamic worker_num): the master decides, the manager starts
// and ends slot supervisors. CtlAddSlot starts supervising a slot;
// CtlDropSlot ends one the graceful way (the master has sent its worker the
// stop frame and gives it no new work): nothing more starts there, an
// incarnation that has not said hello is killed, a ready one gets
// max_wait_time to finish, and CtlSlotGone follows its exit. A slot the pool
// grew by whose first incarnation fails before its hello is restarted after
// the back-off like any other, unless the master, which hears of the exit,
// drops it first (it does: a pool does not grow into a crash loop); the
// master decides, because only it knows whether the worker said hello.

// msgSlotDropped is the log message of an exit in a dropped slot.
const msgSlotDropped = "worker left: the pool shrank"

// startSlots are the slots of role to supervise at start: what the
// master's Init named, or 0..n-1.
func (mg *Manager) startSlots(role string, n int) []int {
	if s := mg.initSlots[role]; s != nil {
		return s
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// addSlot starts supervising a slot the pool grew by.
func (mg *Manager) addSlot(role string, id int) {
	h, num := &mg.cfg.Worker, mg.cfg.WorkerIDs()
	switch role {
	case ipc.RoleWorker:
	case ipc.RoleTaskWorker:
		h, num = &mg.cfg.TaskWorker, mg.cfg.TaskWorkerNum
	default:
		mg.log.WithFields(logrus.Fields{"role": role, "worker_id": id}).Error("the master asked for a slot of an unknown role; ignored")
		return
	}
	mg.mu.Lock()
	_, taken := mg.slots[slotKey{role, id}]
	mg.mu.Unlock()
	if taken {
		// The master waits for CtlSlotGone before it adds a slot again.
		mg.log.WithFields(logrus.Fields{"role": role, "worker_id": id}).Error("the master added a slot that is still supervised; ignored")
		return
	}
	select {
	case <-mg.stop:
		return
	default:
	}
	mg.supervise(role, id, h, num, true)
}

// dropSlot ends the supervision of a slot the pool shrank by (see above).
// A slot not supervised is gone already: CtlSlotGone at once.
func (mg *Manager) dropSlot(role string, id int, cause string) {
	mg.mu.Lock()
	s := mg.slots[slotKey{role, id}]
	mg.mu.Unlock()
	if s == nil {
		mg.report(ipc.CtlSlotGone, ipc.WorkerEvent{Role: role, Slot: id})
		return
	}
	if cause == "" {
		cause = "the pool shrank"
	}
	select {
	case s.drop <- cause:
	default: // dropped already
	}
}

// dropLive ends a dropped slot's incarnations: the ready ones were sent
// their stop frame by the master and get max_wait_time; one that never
// said hello has no work and is killed. Runs on the slot's supervisor.
func (s *slot) dropLive(live []*child, cause string) {
	for _, c := range live {
		if c.wasReady() {
			c.stopWithin(s.mg.cfg.MaxWaitTime.D(), "retired: "+cause)
		} else {
			c.kill("retired before its hello: " + cause)
		}
	}
}

// gone ends a dropped slot whose incarnations have all exited. Runs on
// the slot's supervisor, which returns.
func (s *slot) gone() {
	mg := s.mg
	mg.mu.Lock()
	if mg.slots[slotKey{s.role, s.id}] == s {
		delete(mg.slots, slotKey{s.role, s.id})
	}
	mg.mu.Unlock()
	mg.report(ipc.CtlSlotGone, ipc.WorkerEvent{Role: s.role, Slot: s.id})
}
