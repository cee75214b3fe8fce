package plane

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
)

// Attacks on the master from its side of the socket pairs: what a worker
// (a buggy handler, or code that took one over) writes must cost the
// master a bounded amount of stack, memory and attention, and harm only
// that worker's own clients.

// deepHello is a hello valid in every key, plus an unknown key whose value
// is an array nested depth deep: the generic msgpack decoder recursed once
// per level to skip it.
func deepHello(depth int) []byte {
	b := ipc.AppendMapLen(nil, 5)
	b = ipc.AppendStr(b, "version")
	b = ipc.AppendInt(b, ipc.ProtocolVersion)
	b = ipc.AppendStr(b, "pid")
	b = ipc.AppendInt(b, 1)
	b = ipc.AppendStr(b, "concurrency")
	b = ipc.AppendInt(b, 1)
	b = ipc.AppendStr(b, "role")
	b = ipc.AppendStr(b, ipc.RoleWorker)
	b = ipc.AppendStr(b, "x")
	b = append(b, bytes.Repeat([]byte{0x91}, depth)...)
	return frame(ipc.TypeHello, 0, append(b, 0xc0))
}

// TestHostileHelloTakesOutOnlyThatWorker: a hello nested deeper than the
// depth-limited reader allows, or larger than ipc.MaxHelloSize (though
// under the frame bound), is a broken worker: it is killed with a log line
// naming it, and the other worker keeps serving.
func TestHostileHelloTakesOutOnlyThatWorker(t *testing.T) {
	big, _ := ipc.Marshal(map[string]any{"version": ipc.ProtocolVersion, "pid": 1, "concurrency": 1,
		"role": ipc.RoleWorker, "sdk": strings.Repeat("s", ipc.MaxHelloSize+1024)})
	cases := []struct {
		name, why string
		hello     []byte
	}{
		{name: "nested 2000 deep", why: `value of "x"`, hello: deepHello(2000)},
		{name: "larger than MaxHelloSize", why: "exceeds 65536", hello: frame(ipc.TypeHello, 0, big)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.hello) > testPackageMax+64<<10 {
				t.Fatalf("the hello (%d bytes) must fit the frame bound, or the frame bound refuses it", len(tc.hello))
			}
			h := newHarness(t, harnessOpts{})
			other := h.readyWorker(1, 1)
			victim := h.addWorker(0)
			victim.write(tc.hello)
			e := victim.gone()
			if e.Level != logrus.ErrorLevel || e.Data["worker_id"] != 0 || !strings.Contains(e.Data["reason"].(string), tc.why) {
				t.Fatalf("worker taken out: %s %q %v; want an error naming worker 0 with a reason containing %q", e.Level, e.Msg, e.Data, tc.why)
			}
			c := h.dial()
			c.send("still")
			hd, _ := other.expect(ipc.TypeData, 0)
			other.write(cat(frame(ipc.TypeSend, hd.ID, []byte("ok")), frame(ipc.TypeDone, hd.ID, nil)))
			c.expect("ok")
		})
	}
}

// TestHelloConcurrencyIsCapped: the concurrency a worker declares is capped
// at max_concurrency, with a log line, so that it cannot make the master
// send (and buffer) every event at once.
func TestHelloConcurrencyIsCapped(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tw := h.addWorker(0)
	tw.write(helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: tw.w.pid, Concurrency: 1 << 30, Role: ipc.RoleWorker}))
	h.waitReady(tw)
	h.p.disp.mu.Lock()
	got := tw.w.concurrency
	h.p.disp.mu.Unlock()
	if got != config.DefaultMaxConcurrency {
		t.Fatalf("worker declared concurrency %d and got %d, want it capped at max_concurrency %d", 1<<30, got, config.DefaultMaxConcurrency)
	}
	h.hook.Wait(t, waitTimeout, "the cap's log line", func(e logEntry) bool {
		return e.Data["worker_id"] == 0 && e.Data["concurrency"] == 1<<30 && e.Data["max_concurrency"] == config.DefaultMaxConcurrency
	})
}

// httpClient is an HTTP/1.1 client of the harness's listener (http: true),
// one keep-alive connection.
type httpClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (h *harness) dialHTTP() *httpClient {
	h.t.Helper()
	c := h.dial()
	return &httpClient{t: h.t, c: c.c, br: bufio.NewReader(c.c)}
}

// get sends a GET request for path.
func (hc *httpClient) get(path string) {
	hc.t.Helper()
	hc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(hc.c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		hc.t.Fatal(err)
	}
}

// expectFrom reads the next response and checks it is 200 from who
// (its X-From header) with who as its body.
func (hc *httpClient) expectFrom(who string) {
	hc.t.Helper()
	hc.c.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(hc.br, nil)
	if err != nil {
		hc.t.Fatalf("reading the response (want %q's): %v", who, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != who || resp.Header.Get("X-From") != who {
		hc.t.Fatalf("response %d from %q body %q (%v), want 200 from and with %q", resp.StatusCode, resp.Header.Get("X-From"), body, err, who)
	}
}

// answerFrom is a Response payload from who: X-From and body say who.
func answerFrom(t testing.TB, who string) []byte {
	p, err := ipc.Marshal(ipc.Response{Status: 200, Headers: []string{"X-From", who}, Body: []byte(who)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestResponseFromAnotherWorkerIsRefused: worker B writes a response for
// a connection whose request worker A holds. The client must get A's
// answer only; B is taken out (a conforming worker never does this).
func TestResponseFromAnotherWorkerIsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true})
	a := h.readyWorker(0, 1)
	b := h.readyWorker(1, 1)
	cl := h.dialHTTP()
	cl.get("/one")
	// The idle-first dispatch sends the request to worker 0.
	hd, _ := a.expect(ipc.TypeRequest, 0)
	id := hd.ID
	// B starts a response (no FlagEnd) on A's connection.
	b.write(ipc.AppendFrame(nil, ipc.TypeResponse, 0, id, answerFrom(t, "B")))
	e := b.gone()
	if e.Level != logrus.ErrorLevel || !strings.Contains(e.Data["reason"].(string), "does not serve") {
		t.Fatalf("worker B: %s %q %v; want it killed for a response on a connection it does not serve", e.Level, e.Msg, e.Data)
	}
	a.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, id, answerFrom(t, "A")))
	cl.expectFrom("A")
	// The connection is still in step: the next answer is the next request's.
	cl.get("/two")
	a.expect(ipc.TypeRequest, id)
	a.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, id, answerFrom(t, "A")))
	cl.expectFrom("A")
}

// TestRetiringWorkerHandsItsQueueToItsSuccessor: events queued at a worker
// when it is told to stop (a reload) go to its successor, after a Connect,
// in order; the stopping worker gets none of them (the Go SDK stops reading
// at Stop, so they would be lost).
func TestRetiringWorkerHandsItsQueueToItsSuccessor(t *testing.T) {
	h := newHarness(t, harnessOpts{mode: modeFixed, workers: 1})
	old := h.readyWorker(0, 1)
	c := h.dial()
	hd, _ := old.expect(ipc.TypeConnect, 0)
	id := hd.ID
	c.send("one")
	c.send("two")
	h.eventually("two events queued at the old worker", func() bool {
		h.p.disp.mu.Lock()
		defer h.p.disp.mu.Unlock()
		return len(old.w.queue) == 2
	})
	succ := h.readyWorker(0, 1)
	// What the reload does once the successor said hello.
	h.p.disp.retire(old.w)
	old.w.write(nil, ipc.TypeStop, 0, nil)
	old.write(frame(ipc.TypeDone, id, nil)) // the connect
	old.expect(ipc.TypeStop, 0)

	succ.expect(ipc.TypeConnect, id)
	succ.write(frame(ipc.TypeDone, id, nil))
	for _, body := range []string{"one", "two"} {
		if _, p := succ.expect(ipc.TypeData, id); string(p) != string(packet(body)) {
			t.Fatalf("successor got %q, want %q", p, packet(body))
		}
		succ.write(cat(frame(ipc.TypeSend, id, []byte(body)), frame(ipc.TypeDone, id, nil)))
		c.expect(body)
	}
	h.eventually("nothing outstanding", func() bool { return h.p.disp.outstanding() == 0 })
}

// TestWorkerThatDoesNotReadIsBounded: a worker that declares a large
// concurrency and never reads its socket pair makes the master hold at most
// worker_buffer_size bytes for it, plus what one loop iteration read (64
// KiB a connection); events beyond close their connection with a log line
// naming the worker.
func TestWorkerThatDoesNotReadIsBounded(t *testing.T) {
	const bound = 64 << 10
	h := newHarness(t, harnessOpts{workers: 1, queueMax: 1 << 20})
	h.p.cfg.WorkerBufferSize = bound
	h.p.cfg.MaxConcurrency = 1 << 20
	deaf := h.addWorker(0)
	deaf.write(helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: deaf.w.pid, Concurrency: 1 << 20, Role: ipc.RoleWorker}))
	h.waitReady(deaf)
	// 8 MiB, in 4 KiB packets over 32 connections (each pauses at 64
	// events outstanding): far more than the socket pair takes (2 MiB,
	// ipc.SocketBufferSize doubled by the kernel).
	flood(h, 32)
	e := h.hook.Wait(t, waitTimeout, "a connection closed by the worker buffer bound", func(e logEntry) bool {
		r, _ := e.Data["reason"].(string)
		return e.Msg == "connection closed" && strings.Contains(r, "worker_buffer_size")
	})
	if r := e.Data["reason"].(string); !strings.Contains(r, "worker 0") {
		t.Fatalf("reason %q does not name the worker", r)
	}
	var held int64
	h.onLoop(func() {
		held = heldFor(h.p.disp, deaf.w)
	})
	if held > bound+32*64<<10 {
		t.Fatalf("the master holds %d bytes for the worker, want at most worker_buffer_size %d plus 64 KiB a connection", held, bound)
	}
	t.Logf("held for the deaf worker: %d bytes (bound %d)", held, bound)
}

// TestWorkerThatDoesNotReadIsReplaced: a worker whose buffer is full and
// that reads nothing of it for worker_send_timeout is killed and replaced
// (nginx's proxy_send_timeout); one that reads is left alone.
func TestWorkerThatDoesNotReadIsReplaced(t *testing.T) {
	h := newHarness(t, harnessOpts{workers: 1, queueMax: 1 << 20})
	h.p.cfg.WorkerBufferSize = 64 << 10
	h.p.cfg.WorkerSendTimeout = config.Duration(time.Minute)
	deaf := h.addWorker(0)
	deaf.write(helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: deaf.w.pid, Concurrency: 1 << 10, Role: ipc.RoleWorker}))
	h.waitReady(deaf)
	// 16 MiB over 64 connections: more than the socket pair takes (2 MiB,
	// ipc.SocketBufferSize doubled by the kernel).
	flood(h, 64)
	h.eventually("work refused for the worker after its socket pair stopped taking bytes", func() bool {
		return deaf.w.refusedAt.Load() > deaf.w.lastTook.Load() && deaf.w.outBytes.Load() > 0
	})
	// Not yet: a minute has not passed.
	h.p.checkStuck(time.Now())
	if deaf.state() != stateReady {
		t.Fatalf("worker is %s before worker_send_timeout passed", deaf.state())
	}
	h.p.checkStuck(time.Now().Add(time.Minute + time.Second))
	e := deaf.gone()
	if e.Level != logrus.ErrorLevel || !strings.Contains(e.Data["reason"].(string), "worker_send_timeout") {
		t.Fatalf("worker taken out: %s %q %v; want an error naming worker_send_timeout", e.Level, e.Msg, e.Data)
	}
}

// flood sends 64 packets of the largest size on each of conns new
// connections, each from its own goroutine, until the master closes it (the
// bounds under test do).
func flood(h *harness, conns int) {
	body := strings.Repeat("x", testPackageMax-4)
	for range conns {
		c := h.dial()
		go func() {
			for range 64 {
				c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
				if _, err := c.c.Write(packet(body)); err != nil {
					return // closed by the bound
				}
			}
		}()
	}
}

// heldFor is what the master holds for w: bytes written and not yet read
// by the worker, and the payloads queued for it.
func heldFor(d *dispatcher, w *Worker) int64 {
	d.mu.Lock()
	var n int64
	for _, q := range w.queue {
		n += int64(len(q.payload))
	}
	d.mu.Unlock()
	w.outMu.Lock()
	n += int64(len(w.out) - w.outOff)
	w.outMu.Unlock()
	return n
}

// withTaskWorkers gives the harness's master n task worker slots and a
// task router (the harness starts with none).
func withTaskWorkers(h *harness, n int) {
	h.p.cfg.TaskWorkerNum, h.p.cfg.TaskQueueMax = n, 16
	h.p.disp.tasks = make([]*Worker, n)
	h.p.tasks = newTaskRouter(h.p)
}

// readyTaskWorker adds a task worker for slot and makes it say hello.
func (h *harness) readyTaskWorker(slot, concurrency int) *testWorker {
	h.t.Helper()
	tw := h.addWorkerAs(ipc.RoleTaskWorker, slot)
	tw.write(helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: tw.w.pid, Concurrency: concurrency, Role: ipc.RoleTaskWorker}))
	h.waitReady(tw)
	return tw
}

// TestQueuedTaskOfAWorkerThatLeftStillRuns: a task queued for a task
// worker when the worker that asked for it leaves (a reload replaced it)
// still runs, as a fire-and-forget task must; only its result is dropped,
// with a log line. Before, it was dropped unstarted and silently.
func TestQueuedTaskOfAWorkerThatLeftStillRuns(t *testing.T) {
	h := newHarness(t, harnessOpts{workers: 1})
	withTaskWorkers(h, 1)
	tk := h.readyTaskWorker(0, 1)
	asker := h.readyWorker(0, 1)
	asker.write(cat(frame(ipc.TypeTask, 1, []byte("first")), frame(ipc.TypeTask, 2, []byte("second"))))
	hd, p := tk.expect(ipc.TypeTask, 0)
	if string(p) != "first" {
		t.Fatalf("task worker got %q first, want \"first\"", p)
	}
	h.eventually("the second task queued", func() bool { return h.p.tasks.queued() == 1 })
	// The asker leaves (a reload replaced it and it exited).
	asker.conn.(*net.UnixConn).CloseWrite()
	asker.gone()
	tk.write(frame(ipc.TypeTaskResult, hd.ID, []byte("1")))
	if _, p := tk.expect(ipc.TypeTask, 0); string(p) != "second" {
		t.Fatalf("task worker got %q, want the queued task \"second\"", p)
	}
	h.hook.Wait(t, waitTimeout, "the dropped result's log line", func(e logEntry) bool {
		return e.Msg == "task result dropped: the worker that asked for it has left"
	})
}

// TestSendToAnHTTPConnectionIsRefused: Send and CloseConn are stream
// frames (any worker may send to any stream connection, as Swoole's
// send($fd)). On an HTTP connection they would write bytes outside the
// master's framing, or close a connection whose request another worker
// holds: they are dropped with a log line, and the client gets the answer
// of the worker that holds its request, and nothing else.
func TestSendToAnHTTPConnectionIsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true})
	a := h.readyWorker(0, 1)
	b := h.readyWorker(1, 1)
	cl := h.dialHTTP()
	cl.get("/")
	hd, _ := a.expect(ipc.TypeRequest, 0)
	id := hd.ID
	b.write(cat(frame(ipc.TypeSend, id, []byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-From: B\r\n\r\nB")),
		frame(ipc.TypeCloseConn, id, nil)))
	h.hook.Wait(t, waitTimeout, "the refusal's log line", func(e logEntry) bool {
		return e.Msg == "stream frame for an HTTP connection dropped" && e.Data["conn"] == id && e.Data["worker_id"] == 1
	})
	a.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, id, answerFrom(t, "A")))
	cl.expectFrom("A")
	if b.state() != stateReady {
		t.Fatalf("worker B is %s: a refused stream frame is not a protocol violation (it may race a connection's close)", b.state())
	}
}
