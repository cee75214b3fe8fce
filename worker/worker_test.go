package worker

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
	"golang.org/x/sys/unix"
)

// modes runs f with concurrency 1 (inline) and 8 (leader/follower).
func modes(t *testing.T, f func(t *testing.T, conc int)) {
	for _, c := range []int{1, 8} {
		t.Run(fmt.Sprintf("concurrency=%d", c), func(t *testing.T) { f(t, c) })
	}
}

func TestHello(t *testing.T) {
	m := startWorker(t, echo, nil, WithConcurrency(5))
	want := ipc.Hello{Version: ipc.ProtocolVersion, PID: os.Getpid(), Concurrency: 5, Role: "worker", SDK: "go", Flow: true}
	if m.hello != want {
		t.Fatalf("hello = %+v, want %+v", m.hello, want)
	}
	m.send(ipc.TypeStop, 0, nil)
	if err := m.expectEOF(); err != nil {
		t.Fatalf("Serve = %v after stop, want nil", err)
	}
}

func TestDefaultConcurrency(t *testing.T) {
	m := startWorker(t, echo, nil)
	if m.hello.Concurrency != DefaultConcurrency() || DefaultConcurrency() < 64 {
		t.Fatalf("hello concurrency = %d, want DefaultConcurrency() = %d", m.hello.Concurrency, DefaultConcurrency())
	}
}

func TestEchoLifecycle(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		var (
			mu  sync.Mutex
			log []string
		)
		add := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
		ev := Events{
			OnStart: func(s *Server) error { add(fmt.Sprintf("start %d", s.WorkerID())); return nil },
			OnConnect: func(s *Server, conn uint64, info ipc.ConnInfo) {
				add(fmt.Sprintf("connect %d %+v", conn, info))
			},
			OnReceive: func(s *Server, conn uint64, data []byte) {
				add(fmt.Sprintf("receive %d %s", conn, data))
				_ = s.Send(conn, data)
			},
			OnClose: func(s *Server, conn uint64) { add(fmt.Sprintf("close %d", conn)) },
		}
		m := startWorker(t, ev, nil, WithConcurrency(conc))
		m.connect(7)
		m.send(ipc.TypeData, 7, []byte("\x00\x00\x00\x02hi"))
		m.send(ipc.TypeData, 7, []byte("second"))
		m.send(ipc.TypeClose, 7, []byte("client closed"))
		m.send(ipc.TypeStop, 0, nil)
		m.expect(doneF(7), sendF(7, "\x00\x00\x00\x02hi"), doneF(7), sendF(7, "second"), doneF(7), doneF(7))
		if err := m.expectEOF(); err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
		want := []string{
			"start 3",
			"connect 7 {Listener:1 Remote:10.0.0.1:7 Local:127.0.0.1:9501}",
			"receive 7 \x00\x00\x00\x02hi", "receive 7 second", "close 7",
		}
		if strings.Join(log, "|") != strings.Join(want, "|") {
			t.Fatalf("callbacks:\n%q\nwant\n%q", log, want)
		}
	})
}

func TestUnknownFrameTypesAreIgnored(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		m := startWorker(t, echo, nil, WithConcurrency(conc))
		m.send(0x40, 9, []byte("from the future"))
		m.send(ipc.TypeHello, 9, nil) // a type the worker does not expect
		m.send(ipc.TypeData, 9, []byte("x"))
		m.send(ipc.TypeData, 9, nil) // an empty packet is still an event
		m.expect(sendF(9, "x"), doneF(9), sendF(9, ""), doneF(9))
		m.send(ipc.TypeStop, 0, nil)
		if err := m.expectEOF(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOrderingUnderLoad plays a master that keeps the worker at its declared
// concurrency with events of many interleaved connections, and checks that
// each connection's events run one at a time and in order, that at most
// `concurrency` callbacks run at once, and that every event gets one Done.
func TestOrderingUnderLoad(t *testing.T) {
	const (
		conc    = 8
		conns   = 64
		packets = 40
	)
	type state struct {
		active    atomic.Int32
		next      int // next packet seq expected by the handler
		connected bool
		closed    bool
	}
	states := make([]state, conns+1)
	var running, maxRunning atomic.Int32
	enter := func(conn uint64) *state {
		st := &states[conn]
		if st.active.Add(1) != 1 {
			t.Errorf("conn %d: two callbacks at once", conn)
		}
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		return st
	}
	leave := func(st *state) { running.Add(-1); st.active.Add(-1) }
	ev := Events{
		OnConnect: func(s *Server, conn uint64, _ ipc.ConnInfo) {
			st := enter(conn)
			defer leave(st)
			st.connected = true
		},
		OnReceive: func(s *Server, conn uint64, data []byte) {
			st := enter(conn)
			defer leave(st)
			if want := fmt.Sprintf("%d:%d", conn, st.next); !st.connected || st.closed || string(data) != want {
				t.Errorf("conn %d: got %q (connected %v, closed %v), want %q", conn, data, st.connected, st.closed, want)
			}
			st.next++
			if st.next%3 == 0 {
				runtime.Gosched()
			}
			_ = s.Send(conn, data)
		},
		OnClose: func(s *Server, conn uint64) {
			st := enter(conn)
			defer leave(st)
			st.closed = true
		},
	}
	m := startWorker(t, ev, nil, WithConcurrency(conc))

	// Every connection's events, in order; the schedule interleaves them.
	type ev2 struct {
		typ ipc.Type
		seq int
	}
	pending := make([][]ev2, conns+1)
	var schedule []uint64
	for c := uint64(1); c <= conns; c++ {
		pending[c] = append(pending[c], ev2{typ: ipc.TypeConnect})
		for i := range packets {
			pending[c] = append(pending[c], ev2{typ: ipc.TypeData, seq: i})
		}
		pending[c] = append(pending[c], ev2{typ: ipc.TypeClose})
		for range len(pending[c]) {
			schedule = append(schedule, c)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })

	outstanding := 0
	dones := make([]int, conns+1)
	sends := make([]int, conns+1)
	for len(schedule) > 0 || outstanding > 0 {
		if len(schedule) > 0 && outstanding < m.hello.Concurrency {
			c := schedule[0]
			schedule = schedule[1:]
			e := pending[c][0]
			pending[c] = pending[c][1:]
			switch e.typ {
			case ipc.TypeConnect:
				m.connect(c)
			case ipc.TypeData:
				m.send(ipc.TypeData, c, []byte(fmt.Sprintf("%d:%d", c, e.seq)))
			default:
				m.send(e.typ, c, nil)
			}
			outstanding++
			continue
		}
		f := m.read()
		switch f.typ {
		case ipc.TypeDone:
			outstanding--
			dones[f.id]++
		case ipc.TypeSend:
			if want := fmt.Sprintf("%d:%d", f.id, sends[f.id]); f.payload != want {
				t.Fatalf("conn %d: sent %q, want %q", f.id, f.payload, want)
			}
			sends[f.id]++
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	m.send(ipc.TypeStop, 0, nil)
	if err := m.expectEOF(); err != nil {
		t.Fatal(err)
	}
	for c := 1; c <= conns; c++ {
		if dones[c] != packets+2 || sends[c] != packets {
			t.Errorf("conn %d: %d dones, %d sends; want %d, %d", c, dones[c], sends[c], packets+2, packets)
		}
	}
	if n := maxRunning.Load(); n > conc {
		t.Errorf("%d callbacks ran at once, concurrency is %d", n, conc)
	}
}

// TestConnectionsRunConcurrently blocks every handler until all of them
// have started: it passes only if they run at the same time.
func TestConnectionsRunConcurrently(t *testing.T) {
	const n = 4
	var entered atomic.Int32
	all := make(chan struct{})
	ev := Events{OnReceive: func(s *Server, conn uint64, data []byte) {
		if entered.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Errorf("conn %d: the other connections' callbacks did not start", conn)
		}
	}}
	m := startWorker(t, ev, nil, WithConcurrency(n))
	for c := uint64(1); c <= n; c++ {
		m.send(ipc.TypeData, c, []byte("x"))
	}
	for range n {
		if f := m.read(); f.typ != ipc.TypeDone {
			t.Fatalf("got %v, want done", f)
		}
	}
}

func TestPanicIsRecovered(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		ev := Events{
			OnConnect: func(s *Server, conn uint64, _ ipc.ConnInfo) { panic("connect bug") },
			OnReceive: func(s *Server, conn uint64, data []byte) {
				if string(data) == "boom" {
					panic(errors.New("handler bug"))
				}
				_ = s.Send(conn, data)
			},
			OnClose: func(s *Server, conn uint64) { panic("close bug") },
		}
		m := startWorker(t, ev, nil, WithConcurrency(conc))
		m.connect(6)
		m.send(ipc.TypeData, 6, []byte("boom"))
		m.send(ipc.TypeData, 6, []byte("still serving"))
		m.send(ipc.TypeClose, 6, nil)
		m.expect(closeF(6), doneF(6), closeF(6), doneF(6), sendF(6, "still serving"), doneF(6), doneF(6))
		m.send(ipc.TypeStop, 0, nil)
		if err := m.expectEOF(); err != nil {
			t.Fatal(err)
		}
		logs := m.logs.String()
		for _, want := range []string{
			"worker 3: panic in OnConnect (conn 6); connection closed: connect bug\n",
			"worker 3: panic in OnReceive (conn 6); connection closed: handler bug\n",
			"worker 3: panic in OnClose (conn 6): close bug\n",
			"worker_test.go", // the stack
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
	})
}

// TestStopWaitsForInFlight stops the worker while a callback is blocked and
// more events of its connection are queued: all of them are handled and
// answered before the worker leaves.
func TestStopWaitsForInFlight(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	ev := Events{OnReceive: func(s *Server, conn uint64, data []byte) {
		if string(data) == "slow" {
			close(started)
			<-release
		}
		_ = s.Send(conn, data)
	}}
	m := startWorker(t, ev, nil, WithConcurrency(4), func(o *options) {
		// The worker has read the stop frame: only now may "slow" finish.
		o.onStopFrame = func() { close(release) }
	})
	m.send(ipc.TypeData, 1, []byte("slow"))
	<-started
	m.send(ipc.TypeData, 1, []byte("queued"))
	m.send(ipc.TypeData, 2, []byte("other"))
	m.expect(sendF(2, "other"), doneF(2))
	m.send(ipc.TypeStop, 0, nil)
	m.expect(sendF(1, "slow"), doneF(1), sendF(1, "queued"), doneF(1))
	if err := m.expectEOF(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

func TestServerStop(t *testing.T) {
	modes(t, func(t *testing.T, conc int) {
		ev := Events{OnReceive: func(s *Server, conn uint64, data []byte) {
			_ = s.Send(conn, data)
			if string(data) == "quit" {
				s.Stop()
				s.Stop()
			}
		}}
		m := startWorker(t, ev, nil, WithConcurrency(conc))
		m.send(ipc.TypeData, 1, []byte("hello"))
		m.expect(sendF(1, "hello"), doneF(1))
		m.send(ipc.TypeData, 2, []byte("quit"))
		m.expect(sendF(2, "quit"), doneF(2))
		if err := m.expectEOF(); err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	})
}

// TestMasterGone closes the master's end while a callback is blocked:
// Serve returns at once with an error wrapping io.EOF.
func TestMasterGone(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		modes(t, func(t *testing.T, conc int) {
			m := startWorker(t, echo, nil, WithConcurrency(conc))
			m.f.Close()
			if err := m.wait(); !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "master closed the channel") {
				t.Fatalf("Serve = %v, want master closed the channel: EOF", err)
			}
		})
	})
	t.Run("busy", func(t *testing.T) {
		started := make(chan struct{})
		release := make(chan struct{})
		ev := Events{OnReceive: func(s *Server, conn uint64, data []byte) {
			close(started)
			<-release
		}}
		m := startWorker(t, ev, nil, WithConcurrency(2))
		t.Cleanup(func() { close(release) })
		m.send(ipc.TypeData, 1, []byte("x"))
		<-started
		m.f.Close()
		if err := m.wait(); !errors.Is(err, io.EOF) {
			t.Fatalf("Serve = %v, want EOF", err)
		}
	})
}

func TestMalformedFrame(t *testing.T) {
	m := startWorker(t, echo, nil, WithConcurrency(2))
	hdr := ipc.AppendHeader(nil, ipc.TypeData, 0, 1, 0)
	hdr[6] = 1 // reserved byte
	if _, err := m.f.Write(hdr); err != nil {
		t.Fatal(err)
	}
	if err := m.wait(); !errors.Is(err, ipc.ErrBadFrame) {
		t.Fatalf("Serve = %v, want ErrBadFrame", err)
	}
}

func TestBootFailure(t *testing.T) {
	for name, start := range map[string]func(*Server) error{
		"error": func(*Server) error { return errors.New("no database") },
		"panic": func(*Server) error { panic("nil map") },
	} {
		t.Run(name, func(t *testing.T) {
			mf, wf, err := ipc.SocketPair(unix.SOCK_STREAM)
			if err != nil {
				t.Fatal(err)
			}
			defer mf.Close()
			defer wf.Close()
			ch := channel{r: ipc.NewReader(wf, 1<<20), w: ipc.NewWriter(wf, 1<<20), shutdownRead: func() error { return nil }}
			err = serve(ch, 0, Events{OnStart: start}, newOptions(nil))
			if !errors.Is(err, ipc.ErrBootFailure) || ipc.ExitCode(err) != ipc.ExitBootFailure {
				t.Fatalf("Serve = %v, want a boot failure", err)
			}
			if name == "error" && !strings.Contains(err.Error(), "OnStart: no database") {
				t.Fatalf("error %q does not name the cause", err)
			}
		})
	}
}

// TestSendAfterServe checks that Send fails, rather than blocks or writes
// to a reused descriptor, once Serve has returned.
func TestSendAfterServe(t *testing.T) {
	var srv atomic.Pointer[Server]
	ev := Events{OnStart: func(s *Server) error { srv.Store(s); return nil }}
	m := startWorker(t, ev, nil, WithConcurrency(1))
	m.send(ipc.TypeStop, 0, nil)
	if err := m.expectEOF(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Load().Send(1, []byte("late")); err == nil {
		t.Fatal("Send after Serve returned succeeded")
	}
}

// TestLargeSendIsSplit sends 1 MiB while other goroutines send small
// messages to the same connection: it arrives in frames of at most 64 KiB
// (the master's guaranteed bound), in order, with nothing in between.
func TestLargeSendIsSplit(t *testing.T) {
	big := make([]byte, 1<<20+123)
	for i := range big {
		big[i] = byte(i % 251)
	}
	const small = 50
	ev := Events{OnReceive: func(s *Server, conn uint64, data []byte) {
		var wg sync.WaitGroup
		for range small {
			wg.Add(1)
			go func() { defer wg.Done(); _ = s.Send(conn, []byte("s")) }()
		}
		_ = s.Send(conn, big)
		wg.Wait()
	}}
	m := startWorker(t, ev, nil, WithConcurrency(2))
	m.send(ipc.TypeData, 1, []byte("go"))
	var got []byte
	smalls, inBig := 0, false
	for {
		f := m.read()
		if f.typ == ipc.TypeDone {
			break
		}
		if len(f.payload) > maxSendFrame {
			t.Fatalf("Send frame of %d bytes", len(f.payload))
		}
		switch {
		case f.payload == "s" && !inBig:
			smalls++
		case f.payload == "s":
			t.Fatalf("a small Send landed inside the large one after %d bytes", len(got))
		default:
			inBig = true
			got = append(got, f.payload...)
			if len(got) == len(big) {
				inBig = false
			}
		}
	}
	if smalls != small || string(got) != string(big) {
		t.Fatalf("%d small sends, large send of %d bytes intact: %v", smalls, len(got), string(got) == string(big))
	}
}

// gatedWriter holds the first write after arm until open is closed, and
// records how many frames each write carried.
type gatedWriter struct {
	w       io.Writer
	armed   atomic.Bool
	blocked chan struct{}
	open    chan struct{}
	mu      sync.Mutex
	frames  []int
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.armed.CompareAndSwap(true, false) {
		close(g.blocked)
		<-g.open
	}
	n := 0
	for rest := p; len(rest) > 0; n++ {
		_, _, size, err := ipc.Next(rest, ipc.DefaultMaxPayload)
		if err != nil || size == 0 {
			panic("gatedWriter: partial frame in one write")
		}
		rest = rest[size:]
	}
	g.mu.Lock()
	g.frames = append(g.frames, n)
	g.mu.Unlock()
	return g.w.Write(p)
}

// TestWritesAreBatched holds the worker's first write in the system call
// while other callbacks send: their frames go out together in one write.
func TestWritesAreBatched(t *testing.T) {
	const n = 8
	var sent sync.WaitGroup
	sent.Add(n - 1)
	g := &gatedWriter{blocked: make(chan struct{}), open: make(chan struct{})}
	ev := Events{OnReceive: func(s *Server, conn uint64, data []byte) {
		_ = s.Send(conn, data) // returns at once unless it does the write
		if conn != 1 {
			sent.Done()
		}
	}}
	m := startWorker(t, ev, func(w io.Writer) io.Writer { g.w = w; return g }, WithConcurrency(n))
	g.armed.Store(true)
	m.send(ipc.TypeData, 1, []byte("first"))
	<-g.blocked // conn 1's Send is in the write call
	for c := uint64(2); c <= n; c++ {
		m.send(ipc.TypeData, c, []byte("x"))
	}
	sent.Wait()
	close(g.open)
	got := map[frame]int{}
	for range 2 * n {
		got[m.read()]++
	}
	if got[sendF(1, "first")] != 1 || got[doneF(1)] != 1 {
		t.Fatalf("frames %v", got)
	}
	for c := uint64(2); c <= n; c++ {
		if got[sendF(c, "x")] != 1 || got[doneF(c)] != 1 {
			t.Fatalf("conn %d: frames %v", c, got)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	most := 0
	for _, k := range g.frames {
		most = max(most, k)
	}
	if most < n-1 {
		t.Fatalf("frames per write %v: the %d sends queued during a write did not go out together", g.frames, n-1)
	}
}
