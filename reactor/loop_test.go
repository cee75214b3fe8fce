package reactor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"sync"
	"testing"
	"time"
)

// echoHandler echoes every packet and records close reasons.
type echoHandler struct {
	mu     sync.Mutex
	closed []error
	done   chan error
}

func (h *echoHandler) OnOpen(c *Conn)               {}
func (h *echoHandler) OnPacket(c *Conn, pkt []byte) { c.Write(pkt) }
func (h *echoHandler) OnReadEOF(c *Conn)            { c.CloseWhenFlushed() }
func (h *echoHandler) OnClose(c *Conn, err error) {
	h.mu.Lock()
	h.closed = append(h.closed, err)
	h.mu.Unlock()
	if h.done != nil {
		h.done <- err
	}
}

func startEcho(t *testing.T, opts Options, max int) (*Reactor, string, *echoHandler) {
	t.Helper()
	ln, fd := listenRaw(t)
	spec := LengthSpec{Type: 'N', Offset: 0, BodyOffset: 4, Max: max}
	h := &echoHandler{done: make(chan error, 100)}
	r := serve(t, opts, &Listener{Name: "test", FD: fd, Splitter: func() Splitter { return NewLengthSplitter(spec) }}, h)
	return r, ln.Addr().String(), h
}

// serve runs a reactor on ln with h, accepting, until the test ends.
func serve(t *testing.T, opts Options, ln *Listener, h Handler) *Reactor {
	t.Helper()
	r, err := New(opts, []*Listener{ln}, h)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Stop)
	if err := r.StartAccepting(); err != nil {
		t.Fatal(err)
	}
	return r
}

// listenRaw opens a TCP listener on 127.0.0.1 and returns it with its
// descriptor; the listener stays referenced until the test ends.
func listenRaw(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var fd int
	rc, _ := ln.(*net.TCPListener).SyscallConn()
	rc.Control(func(f uintptr) { fd = int(f) })
	return ln, fd
}

func packet(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestEchoManyConnections(t *testing.T) {
	_, addr, _ := startEcho(t, Options{Loops: 2}, 1<<20)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			rng := rand.New(rand.NewSource(seed))
			for j := 0; j < 30; j++ {
				body := make([]byte, 1+rng.Intn(64<<10))
				rng.Read(body)
				p := packet(body)
				go c.Write(p)
				got := make([]byte, len(p))
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, p) {
					errs <- errors.New("echo mismatch")
					return
				}
			}
		}(int64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPacketTooLargeClosesOnlyThatConnection(t *testing.T) {
	_, addr, h := startEcho(t, Options{Loops: 1}, 1024)
	good, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	bad, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.Write(binary.BigEndian.AppendUint32(nil, 5000))
	if err := <-h.done; !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("close reason %v, want ErrPacketTooLarge", err)
	}
	if _, err := bad.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("bad connection read: %v, want EOF", err)
	}
	p := packet([]byte("still here"))
	good.Write(p)
	got := make([]byte, len(p))
	if _, err := io.ReadFull(good, got); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("good connection: %q %v", got, err)
	}
}

func TestHalfCloseGetsAnswer(t *testing.T) {
	_, addr, _ := startEcho(t, Options{Loops: 1}, 1024)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := packet([]byte("bye"))
	c.Write(p)
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, p) {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestIdleTimeout(t *testing.T) {
	_, addr, h := startEcho(t, Options{Loops: 1, IdleTimeout: 500 * time.Millisecond}, 1024)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-h.done; !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("close reason %v, want ErrIdleTimeout", err)
	}
}

func TestMaxConn(t *testing.T) {
	r, addr, _ := startEcho(t, Options{Loops: 1, MaxConn: 2}, 1024)
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A round trip proves the reactor registered the connection.
		c.Write(packet([]byte("x")))
		io.ReadFull(c, make([]byte, 5))
		conns = append(conns, c)
	}
	if n := r.Conns(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection was served despite max_conn 2")
	}
}

// lineHandler is a StreamHandler that answers every complete line and,
// while hold is set, leaves input unconsumed (as HTTP does behind a request
// in progress).
type lineHandler struct {
	echoHandler
	hold  bool
	conns chan *Conn
}

func (h *lineHandler) OnOpen(c *Conn) { h.conns <- c }

func (h *lineHandler) OnStream(c *Conn, data []byte) int {
	used := 0
	for !h.hold {
		i := bytes.IndexByte(data[used:], '\n')
		if i < 0 {
			break
		}
		c.Write(data[used : used+i+1])
		used += i + 1
	}
	return used
}

func TestStreamHandlerKeepsUnconsumedInputForKick(t *testing.T) {
	ln, fd := listenRaw(t)
	h := &lineHandler{hold: true, conns: make(chan *Conn, 1)}
	r := serve(t, Options{Loops: 1}, &Listener{Name: "lines", FD: fd}, h)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn := <-h.conns
	c.Write([]byte("one\ntwo\nthr"))
	// Wait until the loop has read the bytes: a task posted after them runs
	// after the read (tasks and events run on one goroutine, in order).
	pending := make(chan int)
	for n := 0; n < 11; {
		r.Loops()[0].Post(Task{Fn: func(l *Loop, _ *Task) { pending <- conn.Pending() }})
		n = <-pending
	}
	// Released and kicked, the held lines are answered; the partial one waits.
	r.Loops()[0].Post(Task{Fn: func(l *Loop, _ *Task) { h.hold = false; conn.Kick() }})
	got := make([]byte, 8)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "one\ntwo\n" {
		t.Fatalf("after Kick: %q, %v", got, err)
	}
	c.Write([]byte("ee\n"))
	got = make([]byte, 6)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "three\n" {
		t.Fatalf("the partial line completed: %q, %v", got, err)
	}
}
