package reactor

import (
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
	defer c.Close()
	conn := <-h.conns
	on := func(fn func()) {
		done := make(chan struct{})
		r.Loops()[0].Post(Task{Fn: func(*Loop, *Task) { fn(); close(done) }})
		<-done
	}
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
