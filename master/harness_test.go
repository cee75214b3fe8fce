package master

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/internal/logtest"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master/plane"
	"github.com/drover-dev/drover/reactor"
)

// The harness builds a Master by hand around a real data plane: one
// reactor loop with a real TCP listener on 127.0.0.1:0, and workers
// attached through real socket pairs as addWorker attaches them. The test
// goroutine plays the master's loop (it takes m.events and calls m.handle)
// and, on the other end of each pair, the worker process. The data plane's
// own tests have a harness of their own (master/plane).

// waitTimeout bounds every wait of the tests: long enough for a loaded
// machine under -race, short enough to fail clearly instead of hanging.
const waitTimeout = 10 * time.Second

type harnessOpts struct {
	workers int // worker_num (slots); 0 = 2
}

type harness struct {
	t    testing.TB
	m    *Master
	hook *logtest.Hook
	gen  uint64
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.workers == 0 {
		o.workers = 2
	}
	logger, hook := logtest.New()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The reactor polls ln's descriptor: ln stays open until the reactor
	// stopped (cleanups run last-registered first).
	t.Cleanup(func() { ln.Close() })
	fd, err := reactor.ListenerFD(ln)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	lc := config.Listener{Address: "tcp://" + addr, Protocol: "length", PackageLengthType: "N",
		PackageBodyOffset: 4, PackageMaxLength: 4096, Network: "tcp", Addr: addr}
	cfg := &config.Config{WorkerNum: o.workers, ReactorNum: 1, DispatchMode: 1,
		DispatchQueueMax: 16, PackageMaxLength: 4096, Listeners: []config.Listener{lc},
		MaxWaitTime: config.Duration(time.Minute)}

	m := &Master{cfg: cfg, log: logrus.NewEntry(logger).WithField("role", ipc.RoleMaster),
		events: make(chan any, 256), control: make(chan controlReq), done: make(chan struct{}),
		slots: make(map[slotKey]*slotInfo), started: time.Now(), netLns: []net.Listener{ln},
		statsWait: make(map[uint64]*statusJob), backlogWake: make(chan struct{}, 1)}
	m.plane = plane.New(cfg, m.log, m.post)
	m.rx, err = reactor.New(reactor.Options{Loops: cfg.ReactorNum, Log: m.log},
		[]*reactor.Listener{{Index: 0, Name: lc.Address, FD: fd, Splitter: splitterFor(lc)}}, m.plane)
	if err != nil {
		t.Fatal(err)
	}
	m.plane.Start(m.rx)
	h := &harness{t: t, m: m, hook: hook}
	m.rx.Start()
	t.Cleanup(h.stop)
	if err := m.rx.StartAccepting(); err != nil {
		t.Fatal(err)
	}
	return h
}

// stop ends the loops, then closes what is left (the master's ends of
// the socket pairs are closed by the data plane as workers leave).
func (h *harness) stop() {
	h.m.stopping.Store(true)
	h.m.plane.Stopping()
	h.m.rx.Stop()
	close(h.m.done)
}

// testWorker is a worker incarnation: the data plane's *Worker and the
// test's end of its socket pair.
type testWorker struct {
	h    *harness
	w    *plane.Worker
	conn net.Conn
}

// readyWorker hands the master a new incarnation for slot, as the
// manager's CtlWorkerStarted does, makes it say hello, and plays the loop
// until its Ready is handled.
func (h *harness) readyWorker(slot, concurrency int) *testWorker {
	h.t.Helper()
	ours, theirs, err := ipc.SocketPair(unix.SOCK_STREAM)
	if err != nil {
		h.t.Fatal(err)
	}
	conn, err := net.FileConn(theirs) // a dup with deadlines
	theirs.Close()
	if err != nil {
		ours.Close()
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	h.gen++
	h.m.addWorker(ipc.WorkerEvent{Role: ipc.RoleWorker, Slot: slot, Gen: h.gen, PID: 10000 + slot, Launch: "exec"}, ours, nil)
	w := h.m.plane.ByGen(h.gen)
	if w == nil {
		ours.Close()
		h.t.Fatalf("worker %d (gen %d) not in the data plane after addWorker", slot, h.gen)
	}
	tw := &testWorker{h: h, w: w, conn: conn}
	p, err := ipc.Marshal(ipc.Hello{Version: ipc.ProtocolVersion, PID: w.PID(), Concurrency: concurrency,
		Role: ipc.RoleWorker, SDK: "test"})
	if err != nil {
		h.t.Fatal(err)
	}
	conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := conn.Write(ipc.AppendFrame(nil, ipc.TypeHello, 0, 0, p)); err != nil {
		h.t.Fatal(err)
	}
	for {
		ev := h.nextEvent()
		if r, ok := ev.(plane.Ready); ok && r.W == w {
			return tw
		}
	}
}

// expect reads the next frame the master sent to the worker and checks
// its type (and id unless 0).
func (tw *testWorker) expect(t ipc.Type, id uint64) (ipc.Header, []byte) {
	tw.h.t.Helper()
	tw.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	var hb [ipc.HeaderSize]byte
	if _, err := io.ReadFull(tw.conn, hb[:]); err != nil {
		tw.h.t.Fatalf("worker %d: reading a frame: %v", tw.w.Slot(), err)
	}
	hd, err := ipc.ParseHeader(hb[:], ipc.DefaultMaxPayload)
	if err != nil {
		tw.h.t.Fatal(err)
	}
	p := make([]byte, hd.Length)
	if _, err := io.ReadFull(tw.conn, p); err != nil {
		tw.h.t.Fatal(err)
	}
	if hd.Type != t || (id != 0 && hd.ID != id) {
		tw.h.t.Fatalf("worker %d got a %s frame for connection %d, want %s for %d", tw.w.Slot(), hd.Type, hd.ID, t, id)
	}
	return hd, p
}
