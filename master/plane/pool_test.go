package plane

import (
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// The dispatcher's table grows and shrinks with the pool: new slots take
// work once their worker said hello; slots above the new size take none,
// even while their retiring worker finishes, and its removal later leaves
// the table alone.
func TestResizeGrowsAndShrinksTheTable(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 2, 0, 16)
	newBareWorker(t, d, 0, 1, 1)
	newBareWorker(t, d, 1, 2, 1)
	d.resize(ipc.RoleWorker, 4, 0)
	newBareWorker(t, d, 2, 3, 1)
	w3 := newBareWorker(t, d, 3, 4, 1)
	seen := map[int]bool{}
	for range 8 {
		seen[slotOf(pick(d))] = true
	}
	if len(seen) != 4 {
		t.Fatalf("round-robin over a table of 4 picked slots %v", seen)
	}

	// Shrink: the control plane retires slot 3 first, then resizes.
	if err := send(d, w3.w, 9<<8, "x"); err != nil {
		t.Fatal(err)
	}
	d.retire(w3.w)
	d.resize(ipc.RoleWorker, 3, 0)
	for range 8 {
		if w := pick(d); w == w3.w || slotOf(w) > 2 {
			t.Fatalf("picked slot %d after the pool shrank to 3", slotOf(w))
		}
	}
	// The retired worker still finishes its event, then leaves.
	if !d.done(nil, w3.w, 9<<8) {
		t.Fatal("the retired worker's done was refused")
	}
	if ids, _ := d.remove(w3.w); len(ids) != 0 {
		t.Fatalf("connections failed with the retired worker: %v", ids)
	}
	d.mu.Lock()
	n := len(d.workers)
	d.mu.Unlock()
	if n != 3 {
		t.Fatalf("table of %d slots, want 3", n)
	}
	// Grown again, the slot waits for its new worker's hello.
	d.resize(ipc.RoleWorker, 4, 0)
	for range 8 {
		if slotOf(pick(d)) == 3 {
			t.Fatal("slot 3 picked before its new worker said hello")
		}
	}
	newBareWorker(t, d, 3, 5, 1)
	seen = map[int]bool{}
	for range 8 {
		seen[slotOf(pick(d))] = true
	}
	if !seen[3] {
		t.Fatalf("slot 3's new worker never picked: %v", seen)
	}
}

// A dynamic pool keeps the HTTP lead (mode 3) on its lowest slots: with
// every worker free, requests go to slot 0 however often the lead moves,
// so that the workers above go idle when the load drops. A fixed pool's
// lead visits every slot.
func TestPackedLeadStaysOnMinSlots(t *testing.T) {
	for _, tc := range []struct {
		lead int
		want map[int]bool
	}{
		{1, map[int]bool{0: true}},
		{2, map[int]bool{0: true, 1: true}},
		{0, map[int]bool{0: true, 1: true, 2: true, 3: true}},
	} {
		d := newDispatcher(modeIdle, 4, 0, 16)
		for i := range 4 {
			newBareWorker(t, d, i, uint64(i+1), 1)
		}
		d.resize(ipc.RoleWorker, 4, tc.lead)
		now := time.Now()
		seen := map[int]bool{}
		for i := range 12 {
			d.mu.Lock()
			w := d.packed(now.Add(time.Duration(i) * packRotate))
			d.mu.Unlock()
			seen[slotOf(w)] = true
		}
		if len(seen) != len(tc.want) {
			t.Fatalf("lead over %d slots: requests went to %v, want %v", tc.lead, seen, tc.want)
		}
		for s := range seen {
			if !tc.want[s] {
				t.Fatalf("lead over %d slots: requests went to %v, want %v", tc.lead, seen, tc.want)
			}
		}
	}
}

// The binding modes place by the table's length: after a resize, new
// connections spread over the new slots; a connection bound to a worker
// that still serves stays with it.
func TestBindingModesFollowTheSize(t *testing.T) {
	d := newDispatcher(modeFixed, 2, 0, 16)
	w0 := newBareWorker(t, d, 0, 1, 4)
	newBareWorker(t, d, 1, 2, 4)
	bound := &connState{home: 2, w: w0.w}
	d.resize(ipc.RoleWorker, 3, 0)
	newBareWorker(t, d, 2, 3, 4)
	d.mu.Lock()
	defer d.mu.Unlock()
	if w := d.target(&connState{home: 2}); slotOf(w) != 2 {
		t.Fatalf("home 2 over 3 slots went to %d, want 2", slotOf(w))
	}
	if w := d.target(&connState{home: 5}); slotOf(w) != 2 {
		t.Fatalf("home 5 over 3 slots went to %d, want 2", slotOf(w))
	}
	if w := d.target(bound); w != w0.w {
		t.Fatalf("a connection bound to worker 0 moved to %d", slotOf(w))
	}
	uid := &connState{uid: 4, uidBound: true}
	if w := d.choose(modeUID, false, uid, time.Time{}); slotOf(w) != 1 {
		t.Fatalf("uid 4 over 3 slots went to %d, want 1", slotOf(w))
	}
}

// IdleSince: idle from the hello, busy while an event is in flight, idle
// again from its Done.
func TestIdleSince(t *testing.T) {
	d := newDispatcher(modeRoundRobin, 1, 0, 16)
	before := time.Now()
	b := newBareWorker(t, d, 0, 1, 1)
	if since, idle := d.idleSince(b.w); !idle || since.Before(before) {
		t.Fatalf("after hello: idle %v since %s (hello after %s)", idle, since, before)
	}
	if err := send(d, b.w, 1<<8, "x"); err != nil {
		t.Fatal(err)
	}
	if _, idle := d.idleSince(b.w); idle {
		t.Fatal("idle with an event in flight")
	}
	mid := time.Now()
	d.done(nil, b.w, 1<<8)
	if since, idle := d.idleSince(b.w); !idle || since.Before(mid) {
		t.Fatalf("after done: idle %v since %s (done after %s)", idle, since, mid)
	}
	d.retire(b.w)
	if _, idle := d.idleSince(b.w); idle {
		t.Fatal("a retiring worker counts as idle")
	}
}

// Waited goes out for a wait past queue_wait that began after the newest
// worker's hello, at most once per waitedEvery, and never for a fixed
// pool.
func TestWaitedEvents(t *testing.T) {
	var got []Waited
	p := &Plane{events: func(e any) { got = append(got, e.(Waited)) }}
	t0 := time.Now()
	p.waited(t0, t0.Add(time.Second)) // a fixed pool: nothing
	p.pool.queueWait = 50 * time.Millisecond
	p.pool.joined.Store(t0.UnixNano())
	p.waited(t0.Add(-time.Millisecond), t0.Add(time.Second)) // queued before the hello
	p.waited(t0.Add(time.Millisecond), t0.Add(40*time.Millisecond))
	if len(got) != 0 {
		t.Fatalf("events %v, want none", got)
	}
	p.waited(t0.Add(time.Millisecond), t0.Add(61*time.Millisecond))
	p.waited(t0.Add(2*time.Millisecond), t0.Add(65*time.Millisecond)) // within waitedEvery
	if len(got) != 1 || got[0].Wait != 60*time.Millisecond {
		t.Fatalf("events %v, want one of 60ms", got)
	}
	p.waited(t0.Add(2*time.Millisecond), t0.Add(80*time.Millisecond))
	if len(got) != 2 {
		t.Fatalf("events %v, want a second one after waitedEvery", got)
	}
}

// A stream event that waited in a worker's queue past queue_wait posts
// Waited when it goes to the worker.
func TestQueuedStreamEventWaited(t *testing.T) {
	var got []Waited
	d := newDispatcher(modeRoundRobin, 1, 0, 16)
	b := newBareWorker(t, d, 0, 1, 1)
	b.w.p.events = func(e any) { got = append(got, e.(Waited)) }
	b.w.p.pool.queueWait = time.Millisecond
	b.w.p.pool.joined.Store(0)
	if err := send(d, b.w, 1<<8, "a"); err != nil {
		t.Fatal(err)
	}
	if err := send(d, b.w, 2<<8, "b"); err != nil { // queued behind a
		t.Fatal(err)
	}
	d.mu.Lock()
	b.w.queue[0].at = time.Now().Add(-time.Second)
	d.mu.Unlock()
	d.done(nil, b.w, 1<<8)
	if len(got) != 1 || got[0].Wait < time.Second {
		t.Fatalf("events %v, want one of a second or more", got)
	}
}
