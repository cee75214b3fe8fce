package plane

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// badHeader is a frame header with byte i set to v.
func badHeader(i int, v byte) []byte {
	b := ipc.AppendHeader(nil, ipc.TypeSend, 0, 1<<8, 0)
	b[i] = v
	return b
}

// TestWorkerProtocolViolations: whatever a worker writes, the master takes
// only that worker out of service: it leaves the dispatcher, its pair is
// closed, the connections with events there are closed with *errWorkerGone
// (and no other), and the other worker keeps serving.
func TestWorkerProtocolViolations(t *testing.T) {
	maxFrame := testPackageMax + 64<<10
	cases := []struct {
		name string
		// ready: the worker said a valid hello and has one event of a
		// connection in flight before it misbehaves.
		ready bool
		bad   func(id uint64) []byte
		eof   bool   // then it closes its end
		kill  bool   // the master kills it (a violation), rather than seeing it leave
		why   string // in the logged reason
	}{
		{name: "hello with a wrong version", kill: true, why: "protocol version 2",
			bad: func(uint64) []byte {
				return helloFrame(ipc.Hello{Version: ipc.ProtocolVersion + 1, Concurrency: 1, Role: ipc.RoleWorker})
			}},
		{name: "hello with concurrency 0", kill: true, why: "concurrency 0",
			bad: func(uint64) []byte {
				return helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, Concurrency: 0, Role: ipc.RoleWorker})
			}},
		{name: "hello with a wrong role", kill: true, why: `hello as "task_worker"`,
			bad: func(uint64) []byte {
				return helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, Concurrency: 1, Role: ipc.RoleTaskWorker})
			}},
		{name: "undecodable hello", kill: true, why: "decode *ipc.Hello",
			bad: func(uint64) []byte { return frame(ipc.TypeHello, 0, []byte{0xc1}) }},
		{name: "second hello", ready: true, kill: true, why: "second hello",
			bad: func(uint64) []byte { return validHello() }},
		{name: "send before hello", kill: true, why: "send frame before hello",
			bad: func(uint64) []byte { return frame(ipc.TypeSend, 1<<8, []byte("x")) }},
		{name: "done before hello", kill: true, why: "done frame before hello",
			bad: func(uint64) []byte { return frame(ipc.TypeDone, 1<<8, nil) }},
		{name: "data frame from a worker", ready: true, kill: true, why: "unexpected data frame",
			bad: func(id uint64) []byte { return frame(ipc.TypeData, id, []byte("x")) }},
		{name: "stop frame from a worker", ready: true, kill: true, why: "unexpected stop frame",
			bad: func(id uint64) []byte { return frame(ipc.TypeStop, 0, nil) }},
		{name: "control frame type", ready: true, kill: true, why: "unexpected ctl_kill frame",
			bad: func(id uint64) []byte { return frame(ipc.CtlKill, 0, nil) }},
		{name: "unknown frame type", ready: true, kill: true, why: "unexpected type(127) frame",
			bad: func(id uint64) []byte { return frame(127, id, nil) }},
		{name: "done with nothing in flight", ready: true, kill: true, why: "with no event in flight",
			bad: func(id uint64) []byte { return cat(frame(ipc.TypeDone, id, nil), frame(ipc.TypeDone, id, nil)) }},
		// The violation must be the Done, not the stop frame after it.
		{name: "done for another connection while one is in flight", ready: true, kill: true,
			why: "done for connection 1792 with no event in flight",
			bad: func(id uint64) []byte { return cat(frame(ipc.TypeDone, 7<<8, nil), frame(ipc.TypeStop, 0, nil)) }},
		{name: "reserved header bytes", ready: true, kill: true, why: "reserved bytes",
			bad: func(uint64) []byte { return badHeader(7, 1) }},
		{name: "frame type 0", ready: true, kill: true, why: "frame type 0",
			bad: func(uint64) []byte { return badHeader(4, 0) }},
		{name: "over-long frame", ready: true, kill: true, why: "frame too large",
			bad: func(id uint64) []byte { return ipc.AppendHeader(nil, ipc.TypeSend, 0, id, maxFrame+1) }},
		{name: "text instead of frames", ready: true, kill: true, why: "malformed frame",
			bad: func(uint64) []byte { return []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") }},
		{name: "truncated header then EOF", ready: true, eof: true, why: "socket pair closed",
			bad: func(id uint64) []byte { return frame(ipc.TypeSend, id, []byte("hello"))[:10] }},
		{name: "truncated payload then EOF", ready: true, eof: true, why: "socket pair closed",
			bad: func(id uint64) []byte { return frame(ipc.TypeSend, id, []byte("hello"))[:18] }},
		{name: "EOF with an event in flight", ready: true, eof: true, why: "socket pair closed",
			bad: func(uint64) []byte { return nil }},
		{name: "EOF before hello", eof: true, why: "socket pair closed",
			bad: func(uint64) []byte { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			victim := h.addWorker(0)
			var c1 *client
			var id1 uint64
			var other *testWorker
			if tc.ready {
				victim.write(validHello())
				h.waitReady(victim)
				c1 = h.dial()
				c1.send("one")
				hd, _ := victim.expect(ipc.TypeData, 0)
				id1 = hd.ID
				other = h.readyWorker(1, 1)
			} else {
				other = h.readyWorker(1, 1)
			}

			if b := tc.bad(id1); len(b) > 0 {
				victim.write(b)
			}
			if tc.eof {
				victim.conn.(*net.UnixConn).CloseWrite()
			}
			e := victim.gone()
			wantLevel := logrus.WarnLevel
			if tc.kill {
				wantLevel = logrus.ErrorLevel
			}
			reason, _ := e.Data["reason"].(string)
			if e.Level != wantLevel || !strings.Contains(reason, tc.why) {
				t.Errorf("worker removed: %s %q, reason %q; want %s with %q", e.Level, e.Msg, reason, wantLevel, tc.why)
			}
			failed := 0
			if c1 != nil && !strings.Contains(tc.name, "nothing in flight") {
				failed = 1
			}
			if e.Data["connections_failed"] != failed {
				t.Errorf("connections_failed %v, want %d", e.Data["connections_failed"], failed)
			}
			if s := victim.state(); s != stateDead {
				t.Errorf("removed worker is %s, want dead", s)
			}
			// The master closed its end of the pair.
			victim.waitEOF()

			if failed == 1 {
				ce := h.connClosed(id1)
				r, _ := ce.Data["reason"].(string)
				if ce.Data["worker_id"] != 0 || !strings.Contains(r, "went away with this connection's events in flight") {
					t.Errorf("connection closed with %v, want *errWorkerGone for worker 0", ce.Data)
				}
				c1.expectClosed()
			}
			if n := h.p.disp.outstanding(); n != 0 {
				t.Fatalf("outstanding %d after the worker was removed, want 0", n)
			}

			// The other worker was not touched and serves.
			if s := other.state(); s != stateReady || h.p.disp.byGen(other.w.gen) != other.w {
				t.Fatalf("other worker is %s, want ready and in the dispatcher", s)
			}
			c2 := c1
			if failed == 1 || c2 == nil {
				c2 = h.dial()
			}
			c2.send("ping")
			hd, p := other.expect(ipc.TypeData, 0)
			if !bytes.Equal(p, packet("ping")) {
				t.Fatalf("other worker got %q, want %q", p, packet("ping"))
			}
			other.write(cat(frame(ipc.TypeSend, hd.ID, []byte("pong")), frame(ipc.TypeDone, hd.ID, nil)))
			c2.expect("pong")
			h.eventually("nothing outstanding", func() bool { return h.p.disp.outstanding() == 0 })
			if _, ok, _ := h.hook.Find(func(e logEntry) bool {
				return e.Data["gen"] == other.w.gen && e.Data["connections_failed"] != nil
			}); ok {
				t.Fatal("the other worker was taken out of service")
			}
		})
	}
}

// TestFramesBeforeAViolationRunOnce: frames a worker wrote before the one
// that broke the protocol take effect once. After workerGone, HandleEvent
// returns without consuming w.in, and the descriptor stays watched until
// the posted Unwatch task runs; if more bytes are pending, the loop calls
// HandleEvent again first, which parses w.in from the start and runs
// those frames a second time (here: the client receives "X" twice).
func TestFramesBeforeAViolationRunOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	other := h.readyWorker(1, 1)
	c := h.dial()
	c.send("one")
	hd, _ := other.expect(ipc.TypeData, 0)
	id := hd.ID
	victim := h.readyWorker(0, 1)

	// The burst lands while the loop is blocked, so the loop's first read
	// (64 KiB) leaves the rest of it in the socket.
	release := h.stall(0, nil)
	pad := frame(ipc.TypeSend, 99<<8, make([]byte, 60000))
	victim.write(cat(frame(ipc.TypeSend, id, []byte("X")), validHello(), pad, pad))
	release()

	victim.gone()
	victim.waitEOF()
	other.write(cat(frame(ipc.TypeSend, id, []byte("Y")), frame(ipc.TypeDone, id, nil)))
	c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	var got []byte
	buf := make([]byte, 16)
	for !bytes.Contains(got, []byte("Y")) {
		n, err := c.c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("client read %q then %v", got, err)
		}
	}
	if string(got) != "XY" {
		t.Fatalf("client received %q, want %q: a frame written before the violation ran more than once", got, "XY")
	}
}

// TestNoWriteToAClosedWorkerDescriptor: a loop other than the worker's
// owner may have frames for it deferred to the end of its iteration while
// the owner closes the worker's descriptor (workerGone's task). The
// deferred flush must not write to the descriptor number, which by then
// may belong to something else (here: a new socket pair; in production a
// client connection accepted meanwhile).
func TestNoWriteToAClosedWorkerDescriptor(t *testing.T) {
	h := newHarness(t, harnessOpts{loops: 2})
	victim := h.readyWorker(0, 1) // owned by loop 0
	fd := victim.w.fd

	// Loop 1 queues an event for the worker, as dispatch does, and is
	// held before the end of its iteration, where the flush runs.
	release := h.stall(1, func(l *reactor.Loop) {
		victim.w.write(l, ipc.TypeData, 1<<8|1, []byte("late"))
	})
	victim.write(frame(ipc.TypeStop, 0, nil)) // a violation: loop 0 removes it
	victim.gone()
	victim.waitEOF() // loop 0 closed the descriptor

	// Take the descriptor number back (the kernel hands out the lowest free one).
	peer := -1
	for i := 0; i < 256 && peer < 0; i++ {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		if fds[0] == fd {
			peer = fds[1]
		}
	}
	if peer < 0 {
		t.Skipf("descriptor %d was not handed out again; cannot check", fd)
	}
	release()
	// A task posted now runs after the stalled iteration's flush.
	h.onLoopN(1, func() {})
	buf := make([]byte, 64)
	if n, _ := unix.Read(peer, buf); n > 0 {
		t.Fatalf("%d bytes of a frame for the dead worker went to descriptor %d, now another socket: %q", n, fd, buf[:n])
	}
}
