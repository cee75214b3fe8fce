package master

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master/plane"
)

// fakeManager is the manager's end of a control channel the test plays:
// the master's readManager turns what it sends into loop events.
func (h *harness) fakeManager() *ipc.Control {
	h.t.Helper()
	ours, theirs, err := ipc.SocketPair(unix.SOCK_SEQPACKET)
	if err != nil {
		h.t.Fatal(err)
	}
	mctl, err := ipc.NewControl(ours)
	ours.Close()
	if err != nil {
		h.t.Fatal(err)
	}
	fake, err := ipc.NewControl(theirs)
	theirs.Close()
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { mctl.Close(); fake.Close() })
	mp := &managerProc{pid: 1, started: time.Now(), ctl: mctl, exited: make(chan struct{})}
	h.m.mgrp.Store(mp)
	go h.m.readManager(mp)
	return fake
}

// A status waiting for the manager's runtime figures leaves the master's
// loop free: the test goroutine, playing the loop, gets control back
// before the manager answered, and the answer comes once the manager's
// reply arrives as an event.
func TestStatusLeavesLoopFree(t *testing.T) {
	h := newHarness(t, harnessOpts{workers: 1})
	tw := h.readyWorker(0, 1)
	mgr := h.fakeManager()

	reply := make(chan Response, 1)
	h.m.answer(controlReq{Request: Request{Cmd: "status"}, reply: reply})
	// Back on the loop: the manager has not answered yet.
	select {
	case r := <-reply:
		t.Fatalf("status answered before the manager's runtime figures came: %+v", r)
	default:
	}
	hd, _, _, err := mgr.Recv()
	if err != nil || hd.Type != ipc.CtlStats {
		t.Fatalf("manager got %v (%v), want CtlStats", hd.Type, err)
	}
	if err := mgr.Send(ipc.CtlStatsReply, hd.ID, map[uint64]ipc.RuntimeStats{tw.w.Gen(): {Goroutines: 7}}); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-h.m.events:
			if err := h.m.handle(ev); err != nil {
				t.Fatal(err)
			}
			continue
		case r := <-reply:
			var row *Process
			for i := range r.Processes {
				if r.Processes[i].Role == ipc.RoleWorker {
					row = &r.Processes[i]
				}
			}
			if !r.OK || row == nil || row.Runtime == nil || row.Runtime.Goroutines != 7 {
				t.Fatalf("status %+v (worker row %+v), want the worker with the manager's 7 goroutines", r, row)
			}
			return
		case <-timer.C:
			t.Fatalf("no status answer within %s", waitTimeout)
		}
	}
}

// nextEvent plays the master's loop for one event: it takes the next one
// posted and handles it.
func (h *harness) nextEvent() any {
	h.t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case ev := <-h.m.events:
		if err := h.m.handle(ev); err != nil {
			h.t.Fatal(err)
		}
		return ev
	case <-timer.C:
		h.t.Fatalf("no master event within %s; the master logged:\n%s", waitTimeout, h.hook.Dump())
	}
	return nil
}

// Changes under the watch paths during a reload of another origin make
// one reload once that one ended, started by its end (no polling).
func TestWatchReloadFollowsRunningReload(t *testing.T) {
	h := newHarness(t, harnessOpts{workers: 1})
	tw := h.readyWorker(0, 1)
	mgr := h.fakeManager()
	t.Cleanup(func() { h.m.stopping.Store(true); h.m.replaceStop() })
	// A drover reload or SIGUSR1 runs: worker 0's successor is starting.
	if err := h.m.reload(false, func(string) {}, func(int, error) {}); err != nil {
		t.Fatal(err)
	}
	expectCtl(t, mgr, ipc.CtlReplace, tw.w.Gen())
	first := h.m.reloadRun
	for _, change := range []string{"app.php", "lib.php"} {
		if err := h.m.handle(evWatch{change}); err != nil {
			t.Fatal(err)
		}
	}
	if !h.m.watchDue || h.m.reloadRun != first {
		t.Fatalf("watch: due %v, reload %p (first %p) during another reload; want due, the first still running", h.m.watchDue, h.m.reloadRun, first)
	}
	// The successor fails: that reload is over, the watch's starts.
	if err := h.m.handle(evWorkerExited{mgr: h.m.curMgr(), ev: ipc.WorkerEvent{Role: ipc.RoleWorker, Slot: 0, Gen: tw.w.Gen() + 1, ExitCode: 1}}); err != nil {
		t.Fatal(err)
	}
	if h.m.watchDue || h.m.reloadRun == nil || h.m.reloadRun == first {
		t.Fatalf("watch: due %v, reload %p (first %p) after the first reload ended; want the watch's reload running", h.m.watchDue, h.m.reloadRun, first)
	}
	expectCtl(t, mgr, ipc.CtlReplace, tw.w.Gen())
	if n := h.hook.Count("reload: replacing workers"); n != 2 {
		t.Fatalf("%d reloads for one reload and two changes during it, want 2; the master logged:\n%s", n, h.hook.Dump())
	}
}

// expectCtl reads the fake manager's next message, past the master's
// CtlWorkerReady notes, and checks it.
func expectCtl(t *testing.T, mgr *ipc.Control, typ ipc.Type, gen uint64) {
	t.Helper()
	hd, _, _, err := mgr.Recv()
	for err == nil && hd.Type == ipc.CtlWorkerReady && typ != ipc.CtlWorkerReady {
		hd, _, _, err = mgr.Recv()
	}
	if err != nil || hd.Type != typ || hd.ID != gen {
		t.Fatalf("manager got %v for %d (%v), want %v for %d", hd.Type, hd.ID, err, typ, gen)
	}
}

// A recycling is a state machine of the loop: each step is taken by an
// event the loop handles (the successor's hello, the old worker's exit),
// none by a goroutine of its own.
func TestRecycleIsAdvancedByLoopEvents(t *testing.T) {
	h := newHarness(t, harnessOpts{workers: 1})
	old := h.readyWorker(0, 1)
	mgr := h.fakeManager()
	if len(h.m.plane.Claim(func(w *plane.Worker) bool { return w == old.w })) != 1 {
		t.Fatal("worker 0 not claimed")
	}
	h.m.recycle(old.w, "max_request reached")
	expectCtl(t, mgr, ipc.CtlReplace, old.w.Gen())
	succ := h.readyWorker(0, 1) // its Ready, handled, retires the old one
	expectCtl(t, mgr, ipc.CtlRetire, old.w.Gen())
	old.expect(ipc.TypeStop, 0)
	if r := h.m.replacing[old.w]; r == nil || r.succ != succ.w {
		t.Fatalf("replacement %+v after the successor's hello, want one waiting for the old worker's exit", r)
	}
	if err := h.m.handle(evWorkerExited{mgr: h.m.curMgr(), ev: ipc.WorkerEvent{Role: ipc.RoleWorker, Slot: 0, Gen: old.w.Gen(), ExitCode: 0}}); err != nil {
		t.Fatal(err)
	}
	if len(h.m.replacing) != 0 {
		t.Fatalf("replacements %v after the old worker's exit, want none", h.m.replacing)
	}
}

// post never starts a goroutine: with the events channel full, what is
// posted waits in the loop's backlog, and the loop gets every event, in
// the order posted.
func TestPostStartsNoGoroutine(t *testing.T) {
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	m := &Master{log: logrus.NewEntry(logger), events: make(chan any, 2), done: make(chan struct{}),
		backlogWake: make(chan struct{}, 1)}
	defer close(m.done)
	const n = 102
	before := runtime.NumGoroutine()
	for i := range n {
		m.post(i)
	}
	if started := runtime.NumGoroutine() - before; started >= n-cap(m.events) {
		t.Fatalf("posting %d events into a channel of %d started %d goroutines, want none", n, cap(m.events), started)
	}
	select {
	case <-m.backlogWake:
	default:
		t.Fatal("events went to the backlog without waking the loop")
	}
	got := m.takePosted()
	if len(got) != n {
		t.Fatalf("the loop got %d events, want %d", len(got), n)
	}
	for i, ev := range got {
		if ev != i {
			t.Fatalf("event %d is %v: not in the order posted", i, ev)
		}
	}
	m.post(n) // the backlog is empty again: straight into the channel
	if ev := <-m.events; ev != n {
		t.Fatalf("after the backlog, post put %v in the channel, want %d", ev, n)
	}
}
