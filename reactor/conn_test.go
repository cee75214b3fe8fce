package reactor

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// An answer a client does not read sits in the kernel (Unsent counts it);
// Abort resets the connection, so the kernel drops it instead of going on
// delivering it.
func TestUnsentAndAbort(t *testing.T) {
	c, conn, on := slowReader(t)
	on(func() { conn.Write(make([]byte, 1<<20)) })
	// Flushed at the end of that iteration: the kernel holds what the
	// client did not take.
	unsent := 0
	for unsent == 0 {
		on(func() { unsent = conn.Unsent() })
	}
	on(func() { conn.Abort(nil) })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after Abort the client read %d bytes, then %v; want a reset (the kernel held %d)", n, err, unsent)
	}
}

// slowReader serves one lineHandler connection that holds its input, to
// a client with a small receive buffer that reads only when told; on runs
// fn on the loop and waits for it.
func slowReader(t *testing.T) (net.Conn, *Conn, func(func())) {
	t.Helper()
	ln, fd := listenRaw(t)
	h := &lineHandler{hold: true, conns: make(chan *Conn, 1)}
	r := serve(t, Options{Loops: 1}, &Listener{Name: "lines", FD: fd}, h)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	on := func(fn func()) {
		done := make(chan struct{})
		r.Loops()[0].Post(Task{Fn: func(*Loop, *Task) { fn(); close(done) }})
		<-done
	}
	return c, <-h.conns, on
}

// lingerConn serves one lineHandler connection that holds its input, for
// the lingering-close tests; on runs fn on the loop and waits for it.
func lingerConn(t *testing.T, opts Options) (net.Conn, *Conn, *lineHandler, func(func())) {
	t.Helper()
	ln, fd := listenRaw(t)
	h := &lineHandler{hold: true, conns: make(chan *Conn, 1)}
	h.done = make(chan error, 1)
	r := serve(t, opts, &Listener{Name: "lines", FD: fd}, h)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	on := func(fn func()) {
		done := make(chan struct{})
		r.Loops()[0].Post(Task{Fn: func(*Loop, *Task) { fn(); close(done) }})
		<-done
	}
	return c, <-h.conns, h, on
}

// A connection answered and closed with CloseLingering while its client
// is still sending: the client reads the answer and a clean end of stream
// (not a reset), its writes all succeed, and the connection ends when the
// client closes.
func TestCloseLingering(t *testing.T) {
	c, conn, h, on := lingerConn(t, Options{Loops: 1})
	// Input the server has not consumed, in its buffer and in the kernel's.
	if _, err := c.Write(bytes.Repeat([]byte("x"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	for pending := 0; pending == 0; {
		on(func() { pending = conn.Pending() })
	}
	on(func() {
		conn.Write([]byte("refused\n"))
		conn.CloseLingering()
	})
	// More than the socket buffers hold: it goes through only if the
	// server reads it.
	_, werr := c.Write(bytes.Repeat([]byte("y"), 4<<20))
	got, rerr := io.ReadAll(c)
	if string(got) != "refused\n" || rerr != nil {
		t.Fatalf("the client read %q, then %v (write: %v); want the answer and a clean end of stream", got, rerr, werr)
	}
	if werr != nil {
		t.Errorf("the client's write after the answer: %v; want it read and dropped", werr)
	}
	c.Close()
	if err := <-h.done; err != nil {
		t.Errorf("OnClose(%v); want nil once the client closed", err)
	}
}

// The lingering close is bounded: a client that goes on sending is cut at
// LingerBytes (ErrLingerLimit), one that goes quiet without closing at
// LingerTimeout (nil: nothing was left unread).
func TestCloseLingeringBounds(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		c, conn, h, on := lingerConn(t, Options{Loops: 1, LingerBytes: 256 << 10})
		on(func() {
			conn.Write([]byte("refused\n"))
			conn.CloseLingering()
		})
		go func() {
			for {
				if _, err := c.Write(make([]byte, 64<<10)); err != nil {
					return
				}
			}
		}()
		if err := <-h.done; !errors.Is(err, ErrLingerLimit) {
			t.Fatalf("OnClose(%v); want ErrLingerLimit", err)
		}
	})
	t.Run("quiet", func(t *testing.T) {
		c, conn, h, on := lingerConn(t, Options{Loops: 1, LingerTimeout: 50 * time.Millisecond})
		on(func() {
			conn.Write([]byte("refused\n"))
			conn.CloseLingering()
		})
		got, err := io.ReadAll(c) // the end of stream comes with the answer
		if string(got) != "refused\n" || err != nil {
			t.Fatalf("read %q, %v", got, err)
		}
		if err := <-h.done; err != nil {
			t.Fatalf("OnClose(%v); want nil", err)
		}
		var lingering bool
		on(func() { lingering = conn.Lingering() })
		if lingering {
			t.Error("still lingering after OnClose")
		}
	})
}

// refuseHandler answers a connection's first bytes and closes it
// lingering, from inside OnStream, as the master refuses a bad request.
type refuseHandler struct{ echoHandler }

func (h *refuseHandler) OnStream(c *Conn, data []byte) int {
	c.Write([]byte("refused\n"))
	c.CloseLingering()
	return 0
}

func TestCloseLingeringFromOnStream(t *testing.T) {
	ln, fd := listenRaw(t)
	h := &refuseHandler{echoHandler{done: make(chan error, 1)}}
	serve(t, Options{Loops: 1}, &Listener{Name: "refuse", FD: fd}, h)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	_, werr := c.Write(bytes.Repeat([]byte("z"), 4<<20))
	got, rerr := io.ReadAll(c)
	if string(got) != "refused\n" || rerr != nil || werr != nil {
		t.Fatalf("the client read %q, then %v (write: %v); want the answer, a clean end of stream, and its write taken", got, rerr, werr)
	}
	c.Close()
	if err := <-h.done; err != nil {
		t.Errorf("OnClose(%v); want nil once the client closed", err)
	}
}

// WriteDirect writes at once when nothing is buffered, keeps what the
// socket did not take, and never reorders output: what follows a partial
// write, by Write or WriteDirect, goes after its rest.
func TestWriteDirectKeepsOrder(t *testing.T) {
	c, conn, on := slowReader(t)
	body := make([]byte, 4<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	var want bytes.Buffer
	buffered := 0
	on(func() {
		conn.WriteDirect([]byte("head1:"), body, []byte(":tail1"))
		buffered = conn.Buffered()
		conn.Write([]byte("after1"))
		conn.WriteDirect([]byte("head2:"), body[:100], nil)
	})
	want.WriteString("head1:")
	want.Write(body)
	want.WriteString(":tail1after1head2:")
	want.Write(body[:100])
	if buffered == 0 || buffered >= want.Len() {
		t.Fatalf("after a direct write of %d bytes to a client that does not read, %d are buffered; want what the socket did not take", len(body)+12, buffered)
	}
	got := make([]byte, want.Len())
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		i := 0
		for i < len(got) && got[i] == want.Bytes()[i] {
			i++
		}
		t.Fatalf("the client read other bytes than were written, from offset %d of %d", i, len(got))
	}
	// Nothing is buffered now: a direct write goes out at once.
	left := -1
	on(func() {
		conn.WriteDirect([]byte("x"), []byte("y"), []byte("z\n"))
		left = conn.Buffered()
	})
	if left != 0 {
		t.Errorf("a small direct write with nothing buffered left %d bytes buffered; want 0", left)
	}
	line := make([]byte, 4)
	if _, err := io.ReadFull(c, line); err != nil || string(line) != "xyz\n" {
		t.Fatalf("read %q, %v; want \"xyz\\n\"", line, err)
	}
}
