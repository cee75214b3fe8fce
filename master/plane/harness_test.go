package plane

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/internal/logtest"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// The harness builds a Plane by hand: one reactor loop with a real TCP
// listener on 127.0.0.1:0 (protocol length, 4-byte big-endian header that
// counts the body), and workers attached through real socket pairs exactly
// as the control plane attaches them (Attach). The test goroutine plays
// the control plane (it takes the plane's events from h.events) and, on
// the other end of each pair, the worker process.

// waitTimeout bounds every wait of the tests: long enough for a loaded
// machine under -race, short enough to fail clearly instead of hanging.
const waitTimeout = 10 * time.Second

// testPackageMax is package_max_length in the harness.
const testPackageMax = 4096

type harnessOpts struct {
	mode     int // dispatch mode; 0 = round-robin
	workers  int // worker_num (slots); 0 = 2
	queueMax int // dispatch_queue_max; 0 = 16
	loops    int // reactor_num; 0 = 1

	// http: the listener speaks HTTP (httpTestConfig) instead of length.
	http bool
	// httpMode: the dispatch mode of HTTP listeners; 0 = 3.
	httpMode int
	// metrics: counting on (Plane.Metrics), the collector in harness.met.
	metrics bool
}

type harness struct {
	t      testing.TB
	p      *Plane
	events chan any // what the plane sent to the control plane
	hook   *logtest.Hook
	addr   string // where clients dial
	gen    uint64
	met    prometheus.Collector // with harnessOpts.metrics
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.mode == 0 {
		o.mode = modeRoundRobin
	}
	if o.workers == 0 {
		o.workers = 2
	}
	if o.queueMax == 0 {
		o.queueMax = 16
	}
	if o.loops == 0 {
		o.loops = 1
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
		PackageBodyOffset: 4, PackageMaxLength: testPackageMax, Network: "tcp", Addr: addr}
	cfg := &config.Config{WorkerNum: o.workers, ReactorNum: o.loops, DispatchMode: o.mode,
		DispatchQueueMax: o.queueMax, PackageMaxLength: testPackageMax, Listeners: []config.Listener{lc}}
	if o.http {
		httpTestConfig(cfg)
		lc = cfg.Listeners[0]
	}

	events := make(chan any, 4096) // a test that lets more pile up fails on a blocked loop
	log := logrus.NewEntry(logger).WithField("role", ipc.RoleMaster)
	p := New(cfg, log, func(ev any) { events <- ev })
	p.maxFrame = int(cfg.PackageMaxLength) + 64<<10
	p.disp = newDispatcher(o.mode, cfg.WorkerNum, cfg.TaskWorkerNum, cfg.DispatchQueueMax)
	p.disp.procs = make([]*Worker, len(cfg.Processes))
	if o.httpMode != 0 {
		p.disp.httpMode = o.httpMode
	}
	rx, err := reactor.New(reactor.Options{Loops: cfg.ReactorNum, Log: log},
		[]*reactor.Listener{{Index: 0, Name: lc.Address, FD: fd, Splitter: testSplitter(lc)}}, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(rx)
	h := &harness{t: t, p: p, events: events, hook: hook, addr: addr}
	if o.metrics {
		h.met = p.Metrics([]string{"test"})
	}
	rx.Start()
	t.Cleanup(h.stop)
	if err := rx.StartAccepting(); err != nil {
		t.Fatal(err)
	}
	return h
}

// stop ends the loops, then closes what the master would have closed:
// the master's ends of the socket pairs still open (workerGone closes the
// others on the loop, which Stop waited for).
func (h *harness) stop() {
	h.p.stopping.Store(true)
	h.p.rx.Stop()
	for _, wi := range h.p.disp.snapshot() {
		wi.w.file.Close()
	}
}

// testWorker is a worker incarnation: the master's *worker and the test's
// end of its socket pair.
type testWorker struct {
	h    *harness
	w    *Worker
	conn net.Conn
}

// addWorker hands the master a new incarnation for slot, as the manager's
// CtlWorkerStarted does.
func (h *harness) addWorker(slot int) *testWorker {
	h.t.Helper()
	return h.addWorkerAs(ipc.RoleWorker, slot)
}

// addWorkerAs is addWorker for a process of role (a task worker).
func (h *harness) addWorkerAs(role string, slot int) *testWorker {
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
	h.p.Attach(ipc.WorkerEvent{Role: role, Slot: slot, Gen: h.gen, PID: 10000 + slot, Launch: "exec"}, ours, nil)
	w := h.p.disp.byGen(h.gen)
	if w == nil {
		ours.Close()
		h.t.Fatalf("worker %d (gen %d) not in the dispatcher after addWorker", slot, h.gen)
	}
	return &testWorker{h: h, w: w, conn: conn}
}

// readyWorker adds a worker for slot and makes it say hello.
func (h *harness) readyWorker(slot, concurrency int) *testWorker {
	h.t.Helper()
	tw := h.addWorker(slot)
	tw.write(helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: tw.w.pid, Concurrency: concurrency,
		Role: ipc.RoleWorker, SDK: "test"}))
	h.waitReady(tw)
	return tw
}

// waitReady plays the control plane until tw's Ready.
func (h *harness) waitReady(tw *testWorker) {
	h.t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case ev := <-h.events:
		r, ok := ev.(Ready)
		if !ok || r.W != tw.w {
			h.t.Fatalf("data plane event %#v, want Ready for worker %d", ev, tw.w.slot)
		}
	case <-timer.C:
		h.t.Fatalf("worker %d: no Ready after its hello within %s", tw.w.slot, waitTimeout)
	}
}

// onLoop runs fn on loop 0 and waits for it.
func (h *harness) onLoop(fn func()) {
	h.t.Helper()
	h.onLoopN(0, fn)
}

// onLoopN runs fn on loop i and waits for it: tasks run in order, so
// everything posted to that loop before has run too.
func (h *harness) onLoopN(i int, fn func()) {
	h.t.Helper()
	ran := make(chan struct{})
	h.p.rx.Loops()[i].Post(reactor.Task{Fn: func(*reactor.Loop, *reactor.Task) {
		defer close(ran)
		fn()
	}})
	select {
	case <-ran:
	case <-time.After(waitTimeout):
		h.t.Fatalf("loop did not run a posted task within %s", waitTimeout)
	}
}

// eventually polls cond on the loop until it holds. Only for states that
// announce themselves by no event.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		var ok bool
		h.onLoop(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("not %s after %s", what, waitTimeout)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

// stall blocks loop i inside a task until the returned func is called;
// fn, if set, runs in that task first.
func (h *harness) stall(i int, fn func(l *reactor.Loop)) (release func()) {
	h.t.Helper()
	entered, rel := make(chan struct{}), make(chan struct{})
	h.p.rx.Loops()[i].Post(reactor.Task{Fn: func(l *reactor.Loop, _ *reactor.Task) {
		if fn != nil {
			fn(l)
		}
		close(entered)
		<-rel
	}})
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		h.t.Fatalf("loop did not run a posted task within %s", waitTimeout)
	}
	var once sync.Once
	release = func() { once.Do(func() { close(rel) }) }
	h.t.Cleanup(release) // a failing test must not leave the loop blocked
	return release
}

// gone waits until the master took tw out of service and returns the log
// entry that said so (level Error: killed for a protocol violation; Warn:
// it left).
func (tw *testWorker) gone() logEntry {
	tw.h.t.Helper()
	e := tw.h.hook.Wait(tw.h.t, waitTimeout, "worker taken out of service", func(e logEntry) bool {
		_, ok := e.Data["connections_failed"]
		return ok && e.Data["gen"] == tw.w.gen
	})
	if tw.h.p.disp.byGen(tw.w.gen) != nil {
		tw.h.t.Fatalf("worker %d logged its removal but is still in the dispatcher", tw.w.slot)
	}
	return e
}

// state returns tw's state as the dispatcher has it.
func (tw *testWorker) state() workerState {
	d := tw.h.p.disp
	d.mu.Lock()
	defer d.mu.Unlock()
	return tw.w.state
}

func (tw *testWorker) write(b []byte) {
	tw.h.t.Helper()
	tw.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := tw.conn.Write(b); err != nil {
		tw.h.t.Fatalf("worker %d: write: %v", tw.w.slot, err)
	}
}

// read reads the next frame the master sent to the worker.
func (tw *testWorker) read() (ipc.Header, []byte) {
	tw.h.t.Helper()
	h, p, err := readFrame(tw.conn)
	if err != nil {
		tw.h.t.Fatalf("worker %d: reading a frame: %v", tw.w.slot, err)
	}
	return h, p
}

// expect reads the next frame and checks its type (and id unless 0).
func (tw *testWorker) expect(t ipc.Type, id uint64) (ipc.Header, []byte) {
	tw.h.t.Helper()
	h, p := tw.read()
	if h.Type != t || (id != 0 && h.ID != id) {
		tw.h.t.Fatalf("worker %d got a %s frame for connection %d, want %s for %d", tw.w.slot, h.Type, h.ID, t, id)
	}
	return h, p
}

// waitEOF reads until the master closed its end of the pair (a reset when
// it closed with bytes of the worker's unread).
func (tw *testWorker) waitEOF() {
	tw.h.t.Helper()
	for {
		_, _, err := readFrame(tw.conn)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		if err != nil {
			tw.h.t.Fatalf("worker %d: waiting for the master to close the pair: %v", tw.w.slot, err)
		}
	}
}

func readFrame(c net.Conn) (ipc.Header, []byte, error) {
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	var hb [ipc.HeaderSize]byte
	if _, err := io.ReadFull(c, hb[:]); err != nil {
		return ipc.Header{}, nil, err
	}
	h, err := ipc.ParseHeader(hb[:], ipc.DefaultMaxPayload)
	if err != nil {
		return h, nil, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c, p); err != nil {
		return h, nil, err
	}
	return h, p, nil
}

func frame(t ipc.Type, id uint64, payload []byte) []byte {
	return ipc.AppendFrame(nil, t, 0, id, payload)
}

func helloFrame(h ipc.Hello) []byte {
	p, err := ipc.Marshal(h)
	if err != nil {
		panic(err)
	}
	return frame(ipc.TypeHello, 0, p)
}

func validHello() []byte {
	return helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: 1, Concurrency: 1, Role: ipc.RoleWorker})
}

func cat(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// client is a TCP client of the harness's listener.
type client struct {
	t testing.TB
	c net.Conn
}

func (h *harness) dial() *client {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, waitTimeout)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return &client{t: h.t, c: c}
}

// packet frames body for the harness's length protocol.
func packet(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func (c *client) send(body string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.c.Write(packet(body)); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// expect reads exactly len(want) bytes and compares them.
func (c *client) expect(want string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.c, got); err != nil {
		c.t.Fatalf("client read (want %q): %v (got %q)", want, err, got)
	}
	if string(got) != want {
		c.t.Fatalf("client read %q, want %q", got, want)
	}
}

// expectClosed reads until the server closed the connection (EOF or a
// reset) and returns what arrived before.
func (c *client) expectClosed() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	b, err := io.ReadAll(c.c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open after %s (read %q)", waitTimeout, b)
	}
	return string(b)
}

// logEntry is a copy of one log line the data plane wrote.
type logEntry = logtest.Entry

// connClosedEntry waits for the master's log line for connection id
// closing with a reason, and returns it.
func (h *harness) connClosed(id uint64) logEntry {
	h.t.Helper()
	return h.hook.Wait(h.t, waitTimeout, "connection closed", func(e logEntry) bool {
		return e.Msg == "connection closed" && e.Data["conn"] == id
	})
}

// testSplitter is the splitter of the harness's listener: length or
// nothing (HTTP), as the control plane gives the reactor.
func testSplitter(lc config.Listener) func() reactor.Splitter {
	if lc.Protocol == "http" {
		return nil
	}
	s := reactor.NewLengthSplitter(reactor.LengthSpec{Type: lc.PackageLengthType[0],
		Offset: lc.PackageLengthOffset, BodyOffset: lc.PackageBodyOffset, Max: int(lc.PackageMaxLength)})
	return func() reactor.Splitter { return s }
}
