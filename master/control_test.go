package master

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
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
	if err := mgr.Send(ipc.CtlStatsReply, hd.ID, map[uint64]ipc.RuntimeStats{tw.w.gen: {Goroutines: 7}}); err != nil {
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
		h.t.Fatalf("no master event within %s; the master logged:\n%s", waitTimeout, h.hook.dump())
	}
	return nil
}

// countLogs is how many log lines have message msg.
func (h *harness) countLogs(msg string) int {
	h.hook.mu.Lock()
	defer h.hook.mu.Unlock()
	n := 0
	for _, e := range h.hook.entries {
		if e.msg == msg {
			n++
		}
	}
	return n
}

// Changes under the watch paths during a reload of another origin make
// one reload once that one ended, started by its end event (no polling).
func TestWatchReloadFollowsRunningReload(t *testing.T) {
	h := newHarness(t, harnessOpts{workers: 1})
	h.m.reloading.Store(true) // a drover reload or SIGUSR1 runs
	for _, change := range []string{"app.php", "lib.php"} {
		if err := h.m.handle(evWatch{change}); err != nil {
			t.Fatal(err)
		}
	}
	if !h.m.watchDue || h.m.watchBusy {
		t.Fatalf("watch: due %v, busy %v during another reload; want due, not started", h.m.watchDue, h.m.watchBusy)
	}
	h.m.reloading.Store(false)
	if err := h.m.handle(evReloadEnded{}); err != nil {
		t.Fatal(err)
	}
	if !h.m.watchBusy {
		t.Fatal("the end of the running reload did not start the reload the watch asked for")
	}
	for {
		if _, ok := h.nextEvent().(evWatchReloaded); ok {
			break
		}
	}
	if h.m.watchDue || h.m.watchBusy {
		t.Fatalf("watch: due %v, busy %v after its reload; want neither", h.m.watchDue, h.m.watchBusy)
	}
	if n := h.countLogs("reload done"); n != 1 {
		t.Fatalf("%d reloads done for two changes during a reload, want 1; the master logged:\n%s", n, h.hook.dump())
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
