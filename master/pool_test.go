package master

import (
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master/plane"
)

// dynamicHarness is a harness whose pool is worker_num: {min: 1, max:
// max}, with worker 0 ready and a fake manager.
func dynamicHarness(t *testing.T, max int) (*harness, *ipc.Control) {
	h := newHarness(t, harnessOpts{workers: 1})
	h.m.cfg.Pool = config.Pool{Min: 1, Max: max, IdleTimeout: config.Duration(time.Second), QueueWait: config.DefaultQueueWait, Dynamic: true}
	h.m.initPools()
	mgr := h.fakeManager()
	h.readyWorker(0, 1)
	t.Cleanup(func() { h.m.stopping.Store(true); h.m.poolStop() })
	return h, mgr
}

// expectSlot reads the manager's next slot message (past CtlWorkerReady).
func expectSlot(t *testing.T, mgr *ipc.Control, typ ipc.Type, slot int) {
	t.Helper()
	hd, p, _, err := mgr.Recv()
	for err == nil && hd.Type == ipc.CtlWorkerReady {
		hd, p, _, err = mgr.Recv()
	}
	var ev ipc.WorkerEvent
	if err == nil {
		err = ipc.Unmarshal(p, &ev)
	}
	if err != nil || hd.Type != typ || ev.Slot != slot || ev.Role != ipc.RoleWorker {
		t.Fatalf("manager got %v for slot %d (%v), want %v for slot %d", hd.Type, ev.Slot, err, typ, slot)
	}
}

// A dynamic pool grows by one worker per Waited, with one start at a time:
// waits reported while a new worker starts add none; once it said hello
// the next wait adds the next. At max it grows no more.
func TestDynamicPoolGrowsOneAtATime(t *testing.T) {
	h, mgr := dynamicHarness(t, 3)
	p := h.m.poolOf(ipc.RoleWorker)
	h.m.handle(plane.Waited{Wait: time.Second})
	expectSlot(t, mgr, ipc.CtlAddSlot, 1)
	for range 3 {
		h.m.handle(plane.Waited{Wait: time.Second})
	}
	if len(p.slots) != 2 || p.target != 2 || p.growing != 1 {
		t.Fatalf("with a start in flight: %d slots, target %d, growing %d; want 2, 2, 1", len(p.slots), p.target, p.growing)
	}
	h.readyWorker(1, 1)
	h.m.handle(plane.Waited{Wait: time.Second})
	expectSlot(t, mgr, ipc.CtlAddSlot, 2)
	h.readyWorker(2, 1)
	h.m.handle(plane.Waited{Wait: time.Second})
	if len(p.slots) != 3 || p.target != 3 || !p.atMax {
		t.Fatalf("at max: %d slots, target %d, atMax %v", len(p.slots), p.target, p.atMax)
	}
	if h.hook.Count("requests wait for a worker and the pool is at worker_num.max (raise it, or add capacity)") != 1 {
		t.Fatalf("no log line at max:\n%s", h.hook.Dump())
	}
}

// A new worker that exits before its hello is dropped, and the pool waits
// a back-off before it tries to grow again.
func TestDynamicPoolBacksOffAfterAFailedStart(t *testing.T) {
	h, mgr := dynamicHarness(t, 4)
	p := h.m.poolOf(ipc.RoleWorker)
	h.m.handle(plane.Waited{Wait: time.Second})
	expectSlot(t, mgr, ipc.CtlAddSlot, 1)
	err := h.m.handle(evWorkerExited{mgr: h.m.curMgr(), ev: ipc.WorkerEvent{Role: ipc.RoleWorker, Slot: 1, Gen: 99, ExitCode: 78,
		Stderr: []string{"no database"}}})
	if err != nil {
		t.Fatal(err)
	}
	expectSlot(t, mgr, ipc.CtlDropSlot, 1)
	if len(p.slots) != 1 || p.target != 1 || p.growing != -1 || !p.leaving[1] || p.growFails != 1 || time.Until(p.growAfter) < 500*time.Millisecond {
		t.Fatalf("after a failed start: slots %v target %d growing %d leaving %v fails %d after %s",
			p.slots, p.target, p.growing, p.leaving, p.growFails, time.Until(p.growAfter))
	}
	h.m.handle(plane.Waited{Wait: time.Second})
	if len(p.slots) != 1 {
		t.Fatal("the pool grew within its back-off")
	}
	// Slot 1 is not reused before the manager says it is gone: the next
	// growth takes slot 2.
	p.growAfter = time.Time{}
	h.m.handle(plane.Waited{Wait: time.Second})
	expectSlot(t, mgr, ipc.CtlAddSlot, 2)
	h.m.handle(evSlotGone{mgr: h.m.curMgr(), role: ipc.RoleWorker, slot: 1})
	if p.leaving[1] {
		t.Fatal("slot 1 still leaving after CtlSlotGone")
	}
}

// The idle check retires the highest worker once it has been idle for
// idle_timeout: its stop frame, then CtlDropSlot; the pool never goes
// below its min. The check runs on its timer's event, not a poll.
func TestDynamicPoolRetiresIdleWorkers(t *testing.T) {
	h, mgr := dynamicHarness(t, 3)
	p := h.m.poolOf(ipc.RoleWorker)
	p.idleTimeout = 50 * time.Millisecond // the config's floor is 1s; the check is the same
	h.m.handle(plane.Waited{Wait: time.Second})
	expectSlot(t, mgr, ipc.CtlAddSlot, 1)
	w1 := h.readyWorker(1, 1)
	if p.idle == nil {
		t.Fatal("no idle check armed above min")
	}
	for {
		if _, ok := h.nextEvent().(evPoolIdle); ok && len(p.slots) == 1 {
			break
		}
	}
	w1.expect(ipc.TypeStop, 0)
	expectSlot(t, mgr, ipc.CtlDropSlot, 1)
	if p.target != 1 || !p.leaving[1] || h.m.plane.BySlot(ipc.RoleWorker, 0) == nil {
		t.Fatalf("after the idle check: target %d leaving %v", p.target, p.leaving)
	}
	h.m.poolIdle(ipc.RoleWorker)
	if len(p.slots) != 1 || p.idle != nil {
		t.Fatalf("at min: %d slots, idle check armed %v", len(p.slots), p.idle != nil)
	}
}

// drover scale refuses what it cannot do, and says how to allow it.
func TestScaleRefusesOutOfRange(t *testing.T) {
	h, _ := dynamicHarness(t, 3)
	for _, tc := range []struct {
		role string
		n    int
		want string
	}{
		{ipc.RoleWorker, 4, "cannot scale workers to 4: want 1 to worker_num.max, 3"},
		{ipc.RoleWorker, 0, "cannot scale workers to 0: want 1 to worker_num.max, 3"},
		{ipc.RoleTaskWorker, 2, "no task workers to scale (task_worker_num is 0); drover scale without --tasks scales the workers"},
	} {
		if err := h.m.scale(tc.role, tc.n, nil); err == nil || err.Error() != tc.want {
			t.Errorf("scale %s %d: %v, want %q", tc.role, tc.n, err, tc.want)
		}
	}
	h.m.reloadRun = &reloadRun{}
	if err := h.m.scale(ipc.RoleWorker, 2, nil); err == nil || err.Error() != "a reload is in progress; scale once it is over" {
		t.Errorf("scale during a reload: %v", err)
	}
	h.m.reloadRun = nil
	// On a dynamic pool, scale moves min.
	if err := h.m.scale(ipc.RoleWorker, 2, nil); err != nil {
		t.Fatal(err)
	}
	if p := h.m.poolOf(ipc.RoleWorker); p.min != 2 || p.target != 2 {
		t.Fatalf("after scale 2: min %d target %d", p.min, p.target)
	}
}
