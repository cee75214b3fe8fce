package plane

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
)

// The dispatcher on its own: workers are bare *worker values whose
// descriptor is one end of a socket pair, so the frames the dispatcher
// writes (with a nil loop: at once) can be read on the other end.

type bareWorker struct {
	t    *testing.T
	w    *Worker
	peer net.Conn
}

// newBareWorker adds an incarnation for slot to d; concurrency > 0 also
// records its hello.
func newBareWorker(t *testing.T, d *dispatcher, slot int, gen uint64, concurrency int) *bareWorker {
	t.Helper()
	ours, theirs, err := ipc.SocketPair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ours.Close() })
	peer, err := net.FileConn(theirs)
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	fd := int(ours.Fd())
	unix.SetNonblock(fd, true)
	w := &Worker{p: &Plane{}, role: ipc.RoleWorker, slot: slot, gen: gen, pid: 20000 + slot, file: ours, fd: fd,
		started: time.Now(), owed: make(map[uint64]int32), marked: make([]bool, 1)}
	d.add(w)
	if concurrency > 0 && !d.ready(w, &ipc.Hello{Version: ipc.ProtocolVersion, Concurrency: concurrency}, 0) {
		t.Fatalf("worker %d: first hello refused", slot)
	}
	return &bareWorker{t: t, w: w, peer: peer}
}

// expect reads the next frame the dispatcher wrote to the worker.
func (b *bareWorker) expect(typ ipc.Type, id uint64, payload string) {
	b.t.Helper()
	h, p, err := readFrame(b.peer)
	if err != nil {
		b.t.Fatalf("worker %d: reading a frame: %v", b.w.slot, err)
	}
	if h.Type != typ || h.ID != id || string(p) != payload {
		b.t.Fatalf("worker %d got %s %d %q, want %s %d %q", b.w.slot, h.Type, h.ID, p, typ, id, payload)
	}
}

// marker writes a stop frame past the dispatcher: reading it proves that
// nothing the dispatcher wrote before is still unread.
func (b *bareWorker) marker() { b.w.write(nil, ipc.TypeStop, 0, nil) }

func pick(d *dispatcher) *Worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.target(&connState{})
}

func send(d *dispatcher, w *Worker, id uint64, payload string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.send(nil, w, ipc.TypeData, id, []byte(payload))
}

// counts returns w's in-flight and queued events and d's total.
func counts(d *dispatcher, w *Worker) (inflight, queued, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.inflight, len(w.queue), d.total
}

func slotOf(w *Worker) int {
	if w == nil {
		return -1
	}
	return w.slot
}

func TestRoundRobinSkipsFullAndNotReadyWorkers(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 4, 0, 16)
	w0 := newBareWorker(t, d, 0, 1, 1)
	w1 := newBareWorker(t, d, 1, 2, 1)
	w2 := newBareWorker(t, d, 2, 3, 2)
	newBareWorker(t, d, 3, 4, 0) // slot 3: started, no hello yet
	d.mu.Lock()
	w1.w.state = stateRetiring // in its slot, but takes no new events
	d.mu.Unlock()

	// Each pick gets an event; slot 3 never said hello, slot 1 retires.
	for i, want := range []int{2, 0, 2} {
		w := pick(d)
		if slotOf(w) != want {
			t.Fatalf("pick %d: worker %d, want %d", i, slotOf(w), want)
		}
		if err := send(d, w, uint64(i+1)<<8, "x"); err != nil {
			t.Fatal(err)
		}
	}
	// Every ready worker is at its concurrency: the next one in turn that
	// is ready takes it (queued), never the retiring one.
	if w := pick(d); slotOf(w) != 0 {
		t.Fatalf("all busy: picked worker %d, want the ready worker 0", slotOf(w))
	}
	// A Done frees worker 2: it has room, worker 0 has not.
	if !d.done(nil, w2.w, 1<<8) {
		t.Fatal("done refused")
	}
	if w := pick(d); slotOf(w) != 2 {
		t.Fatalf("after a done: picked worker %d, want 2 (the only one with room)", slotOf(w))
	}
	if w := pick(d); slotOf(w) != 2 {
		t.Fatalf("round-robin came back to worker %d, want 2: worker 0 is full", slotOf(w))
	}
	_ = w0

	empty := newDispatcher(modeRoundRobin, 2, 0, 16)
	newBareWorker(t, empty, 0, 1, 0)
	if w := pick(empty); w != nil {
		t.Fatalf("no worker said hello, picked worker %d", w.slot)
	}
}

func TestIdleModePicksLeastLoaded(t *testing.T) {
	d := newDispatcher(modeIdle, 3, 0, 16)
	newBareWorker(t, d, 0, 1, 1)
	newBareWorker(t, d, 1, 2, 4)
	newBareWorker(t, d, 2, 3, 0) // not ready: never picked
	// Load is in-flight plus queued minus concurrency; ties go to the
	// lower slot.
	for i, want := range []int{1, 1, 1, 0, 1, 0, 1} {
		w := pick(d)
		if slotOf(w) != want {
			t.Fatalf("pick %d: worker %d, want %d", i, slotOf(w), want)
		}
		if err := send(d, w, uint64(i+1)<<8, "x"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConcurrencyQueuesInOrderAndStartsOnDone(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 1, 0, 16)
	b := newBareWorker(t, d, 0, 1, 2)
	ids := []uint64{1 << 8, 2 << 8, 3 << 8, 1 << 8, 4 << 8}
	for i, id := range ids {
		if err := send(d, b.w, id, "e"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if in, q, total := counts(d, b.w); in != 2 || q != 3 || total != 5 {
		t.Fatalf("in flight %d, queued %d, total %d; want 2, 3, 5", in, q, total)
	}
	// Exactly two events went out.
	b.marker()
	b.expect(ipc.TypeData, ids[0], "e0")
	b.expect(ipc.TypeData, ids[1], "e1")
	b.expect(ipc.TypeStop, 0, "")

	// Each Done starts the oldest queued event.
	for i := 2; i < len(ids); i++ {
		if !d.done(nil, b.w, ids[i-2]) {
			t.Fatalf("done %d refused", i-2)
		}
		b.marker()
		b.expect(ipc.TypeData, ids[i], "e"+string(rune('0'+i)))
		b.expect(ipc.TypeStop, 0, "")
	}
	for _, id := range ids[3:] {
		if !d.done(nil, b.w, id) {
			t.Fatalf("done for %d refused", id)
		}
	}
	if in, q, total := counts(d, b.w); in != 0 || q != 0 || total != 0 {
		t.Fatalf("after every done: in flight %d, queued %d, total %d; want 0", in, q, total)
	}
	d.mu.Lock()
	served, owed := b.w.served, len(b.w.owed)
	d.mu.Unlock()
	if served != 5 || owed != 0 {
		t.Fatalf("served %d, owed %d connections; want 5, 0", served, owed)
	}
}

// A worker that prefetches gets that many events beyond its concurrency
// at once (they wait in its channel, not here); the rest queue as usual,
// and each Done records when the next prefetched event started.
func TestPrefetchSendsAheadOfConcurrency(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 1, 0, 16)
	b := newBareWorker(t, d, 0, 1, 0)
	if !d.ready(b.w, &ipc.Hello{Version: ipc.ProtocolVersion, Concurrency: 1, Prefetch: 1}, 0) {
		t.Fatal("hello refused")
	}
	ids := []uint64{1 << 8, 2 << 8, 3 << 8}
	for i, id := range ids {
		if err := send(d, b.w, id, "e"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if in, q, _ := counts(d, b.w); in != 2 || q != 1 {
		t.Fatalf("in flight %d, queued %d; want 2 (one prefetched), 1", in, q)
	}
	b.marker()
	b.expect(ipc.TypeData, ids[0], "e0")
	b.expect(ipc.TypeData, ids[1], "e1")
	b.expect(ipc.TypeStop, 0, "")
	before := time.Now()
	if !d.done(nil, b.w, ids[0]) {
		t.Fatal("done refused")
	}
	b.marker()
	b.expect(ipc.TypeData, ids[2], "e2")
	b.expect(ipc.TypeStop, 0, "")
	if end := time.Unix(0, b.w.lastEnd.Load()); end.Before(before) {
		t.Fatalf("lastEnd %v is before the Done at %v", end, before)
	}
}

func TestQueueBound(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 1, 0, 2)
	b := newBareWorker(t, d, 0, 1, 1)
	for i := uint64(1); i <= 3; i++ {
		if err := send(d, b.w, i<<8, "x"); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := send(d, b.w, 4<<8, "x"); !errors.Is(err, errQueueFull) {
		t.Fatalf("event beyond dispatch_queue_max: %v, want errQueueFull", err)
	}
	d.mu.Lock()
	_, owed := b.w.owed[4<<8]
	d.mu.Unlock()
	if in, q, total := counts(d, b.w); in != 1 || q != 2 || total != 3 || owed {
		t.Fatalf("refused event was counted: in flight %d, queued %d, total %d, owed %v", in, q, total, owed)
	}
}

func TestDoneWithNothingInFlight(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 1, 0, 16)
	b := newBareWorker(t, d, 0, 1, 1)
	if d.done(nil, b.w, 1<<8) {
		t.Fatal("done with nothing in flight accepted")
	}
	if err := send(d, b.w, 1<<8, "x"); err != nil {
		t.Fatal(err)
	}
	if !d.done(nil, b.w, 1<<8) {
		t.Fatal("done refused")
	}
	if d.done(nil, b.w, 1<<8) {
		t.Fatal("second done for one event accepted")
	}
	if n := d.outstanding(); n != 0 {
		t.Fatalf("outstanding %d, want 0", n)
	}
}

// A Done must answer an event of that connection. Accepting one for a
// connection with nothing at the worker (because another connection has an
// event in flight) breaks the accounting: total drifts below the events
// really owed, and goes negative once the worker is removed, after which
// idleCh never closes and a graceful stop waits out max_wait_time.
func TestDoneForAConnectionWithNothingInFlight(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 1, 0, 16)
	b := newBareWorker(t, d, 0, 1, 2)
	if err := send(d, b.w, 1<<8, "x"); err != nil {
		t.Fatal(err)
	}
	if d.done(nil, b.w, 2<<8) {
		t.Errorf("done for connection %d, which has no event at the worker, accepted (connection %d has one)", 2<<8, 1<<8)
	}
	d.remove(b.w)
	if n := d.outstanding(); n != 0 {
		t.Errorf("outstanding %d after the worker was removed, want 0", n)
	}
	select {
	case <-d.idleCh():
	default:
		t.Error("idleCh not closed with no worker left")
	}
}

func TestRemove(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 2, 0, 16)
	b := newBareWorker(t, d, 0, 1, 1)
	other := newBareWorker(t, d, 1, 2, 1)
	for _, id := range []uint64{10 << 8, 11 << 8, 10 << 8} {
		if err := send(d, b.w, id, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := send(d, other.w, 12<<8, "x"); err != nil {
		t.Fatal(err)
	}
	ids, was := d.remove(b.w)
	slices.Sort(ids)
	if was != stateReady || !slices.Equal(ids, []uint64{10 << 8, 11 << 8}) {
		t.Fatalf("remove = %v, state %v; want [%d %d], ready", ids, was, 10<<8, 11<<8)
	}
	if d.byGen(b.w.gen) != nil {
		t.Fatal("removed worker still found by gen")
	}
	if w := d.workers[0]; w != nil {
		t.Fatal("removed worker still in its slot")
	}
	if n := d.outstanding(); n != 1 {
		t.Fatalf("outstanding %d, want 1 (the other worker's event)", n)
	}
	if ws, _ := d.readyCount(); ws != 1 {
		t.Fatalf("%d ready workers, want 1", ws)
	}
	for i := 0; i < 4; i++ {
		if w := pick(d); w != other.w {
			t.Fatalf("picked worker %d after removal, want 1", slotOf(w))
		}
	}
	if ids, was := d.remove(b.w); was != stateDead || ids != nil {
		t.Fatalf("second remove = %v, state %v; want nil, dead", ids, was)
	}
	if d.done(nil, b.w, 10<<8) {
		t.Fatal("done from a removed worker accepted")
	}
	if !d.done(nil, other.w, 12<<8) {
		t.Fatal("the other worker's done refused")
	}
	select {
	case <-d.idleCh():
	default:
		t.Fatalf("idleCh not closed with outstanding %d", d.outstanding())
	}
}

func TestIdleChClosesWhenTheLastEventIsDone(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 1, 0, 16)
	b := newBareWorker(t, d, 0, 1, 1)
	select {
	case <-d.idleCh():
	default:
		t.Fatal("idleCh with nothing outstanding is not closed")
	}
	send(d, b.w, 1<<8, "x")
	send(d, b.w, 2<<8, "x") // queued
	ch := d.idleCh()
	if !d.done(nil, b.w, 1<<8) {
		t.Fatal("done refused")
	}
	select {
	case <-ch:
		t.Fatal("idleCh closed with an event still queued")
	default:
	}
	if d.idleCh() != ch {
		t.Fatal("a second waiter got another channel")
	}
	if !d.done(nil, b.w, 2<<8) {
		t.Fatal("done refused")
	}
	select {
	case <-ch:
	default:
		t.Fatal("idleCh not closed after the last done")
	}
}

// The real path from here on: a reactor with a TCP listener, real clients.

func TestPendingEventsGoOutInOrderWhenAWorkerIsReady(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tw := h.addWorker(0)
	c := h.dial()
	c.send("one")
	c.send("two")
	h.eventually("two events pending", func() bool { return len(h.p.loops[0].pending) == 2 })

	tw.write(validHello())
	h.waitReady(tw)
	hd, p := tw.expect(ipc.TypeData, 0)
	if string(p) != string(packet("one")) {
		t.Fatalf("first event %q, want %q", p, packet("one"))
	}
	tw.write(frame(ipc.TypeDone, hd.ID, nil))
	if _, p := tw.expect(ipc.TypeData, hd.ID); string(p) != string(packet("two")) {
		t.Fatalf("second event %q, want %q", p, packet("two"))
	}
	tw.write(cat(frame(ipc.TypeSend, hd.ID, []byte("ok")), frame(ipc.TypeDone, hd.ID, nil)))
	c.expect("ok")
	h.eventually("nothing outstanding", func() bool { return h.p.disp.outstanding() == 0 })
}

// A worker's exit can reach the master before the loop has read what the
// worker wrote just before exiting: that goes out first, and only the
// connections still owed fail.
func TestExitedWorkersLastAnswersGoOutFirst(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a := h.readyWorker(0, 1)
	c := h.dial()
	c.send("one")
	hd, _ := a.expect(ipc.TypeData, 0)
	// The loop does not read the worker's answer before the exit report.
	release := h.stall(0, nil)
	a.write(cat(frame(ipc.TypeSend, hd.ID, []byte("last")), frame(ipc.TypeDone, hd.ID, nil)))
	a.conn.Close()
	h.p.Exited(a.w.gen, "exited with code 255") // as the control plane reports the exit
	release()
	c.expect("last")
	e := a.gone()
	if e.Data["connections_failed"] != 0 || e.Data["reason"] != "exited with code 255" {
		t.Fatalf("worker left: %q %v, want connections_failed 0 and the exit as the reason", e.Msg, e.Data)
	}
}

func TestFixedModeBindsAndRebindsWithAConnect(t *testing.T) {
	h := newHarness(t, harnessOpts{mode: modeFixed})
	a := h.readyWorker(0, 1)
	c := h.dial()
	hd, p := a.expect(ipc.TypeConnect, 0)
	id := hd.ID
	var info ipc.ConnInfo
	if err := ipc.Unmarshal(p, &info); err != nil {
		t.Fatal(err)
	}
	if info.Listener != 0 || info.Remote != c.c.LocalAddr().String() || info.Local != h.addr {
		t.Fatalf("connect info %+v, want listener 0, remote %s, local %s", info, c.c.LocalAddr(), h.addr)
	}
	a.write(frame(ipc.TypeDone, id, nil))

	// A second worker does not take the bound connection's events.
	b := h.readyWorker(1, 1)
	c.send("one")
	a.expect(ipc.TypeData, id)
	a.write(frame(ipc.TypeDone, id, nil))
	c.send("two")
	a.expect(ipc.TypeData, id)
	// The worker answers and leaves (exits): nothing of the connection
	// is in flight there, so the connection lives on.
	a.write(frame(ipc.TypeDone, id, nil))
	a.conn.Close()
	if e := a.gone(); e.Level != logrus.WarnLevel || e.Data["connections_failed"] != 0 {
		t.Fatalf("worker left: %s %q %v, want a warning with connections_failed 0", e.Level, e.Msg, e.Data)
	}

	// The next event rebinds to the other worker, which hears of the
	// connection first.
	c.send("three")
	_, p = b.expect(ipc.TypeConnect, id)
	var info2 ipc.ConnInfo
	if err := ipc.Unmarshal(p, &info2); err != nil || info2 != info {
		t.Fatalf("synthetic connect info %+v (%v), want %+v", info2, err, info)
	}
	// Concurrency 1: the data waits for the connect's Done.
	b.write(frame(ipc.TypeDone, id, nil))
	if _, p := b.expect(ipc.TypeData, id); string(p) != string(packet("three")) {
		t.Fatalf("data %q after the connect, want %q", p, packet("three"))
	}
	b.write(cat(frame(ipc.TypeSend, id, []byte("3")), frame(ipc.TypeDone, id, nil)))
	c.expect("3")
	// Its close goes to the worker it is bound to.
	c.c.Close()
	_, p = b.expect(ipc.TypeClose, id)
	b.write(frame(ipc.TypeDone, id, nil))
	h.eventually("nothing outstanding", func() bool { return h.p.disp.outstanding() == 0 })
	if b.state() != stateReady {
		t.Fatalf("worker 1 is %s, want ready", b.state())
	}
}

func TestQueueFullClosesTheConnection(t *testing.T) {
	h := newHarness(t, harnessOpts{queueMax: 1})
	tw := h.readyWorker(0, 1)
	c := h.dial()
	c.send("one")
	hd, _ := tw.expect(ipc.TypeData, 0)
	c.send("two")   // queued
	c.send("three") // over dispatch_queue_max
	e := h.connClosed(hd.ID)
	if e.Data["reason"] != errQueueFull.Error() {
		t.Fatalf("connection closed with %q, want errQueueFull", e.Data["reason"])
	}
	c.expectClosed()
	// The worker still answers both events; the master takes the Done
	// frames of a closed connection.
	tw.write(frame(ipc.TypeDone, hd.ID, nil))
	tw.expect(ipc.TypeData, hd.ID)
	tw.write(frame(ipc.TypeDone, hd.ID, nil))
	h.eventually("nothing outstanding", func() bool { return h.p.disp.outstanding() == 0 })
	if tw.state() != stateReady {
		t.Fatalf("worker is %s, want ready", tw.state())
	}
}

func TestHalfClosedClientGetsItsAnswer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tw := h.readyWorker(0, 1)
	c := h.dial()
	c.send("bye")
	c.c.(*net.TCPConn).CloseWrite()
	hd, _ := tw.expect(ipc.TypeData, 0)
	tw.write(cat(frame(ipc.TypeSend, hd.ID, []byte("see you")), frame(ipc.TypeDone, hd.ID, nil)))
	if got := c.expectClosed(); got != "see you" {
		t.Fatalf("half-closed client read %q, want the answer then EOF", got)
	}
}
