package master

import (
	"testing"
	"time"

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
