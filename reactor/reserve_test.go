package reactor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestPartialPacketReservesOnlyWhatArrived (issue 16, item 6): a
// connection whose length header declares a large packet gets a receive
// buffer that grows as the bytes arrive, not one of the declared size at
// once: 1,000 clients that each sent a header declaring 2 MiB reserved
// 2 GiB of the master's heap.
func TestPartialPacketReservesOnlyWhatArrived(t *testing.T) {
	const conns, max, sent = 50, 2 << 20, 100
	r, addr, _ := startEcho(t, Options{Loops: 1}, max)
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		hdr := binary.BigEndian.AppendUint32(nil, max-4) // the largest packet allowed
		if _, err := c.Write(append(hdr, bytes.Repeat([]byte("x"), sent)...)); err != nil {
			t.Fatal(err)
		}
	}
	var reserved, buffered, open int
	deadline := time.Now().Add(10 * time.Second)
	for {
		ran := make(chan struct{})
		r.Loops()[0].Post(Task{Fn: func(l *Loop, _ *Task) {
			reserved, buffered, open = 0, 0, 0
			l.EachConn(func(c *Conn) {
				open++
				reserved += cap(c.in)
				buffered += len(c.in)
			})
			close(ran)
		}})
		<-ran
		if open == conns && buffered == conns*(sent+4) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d connections open holding %d bytes, want %d holding %d", open, buffered, conns, conns*(sent+4))
		}
		time.Sleep(time.Millisecond) // polling the loop's state, which announces itself by no event
	}
	t.Logf("%d partial packets of %d bytes: %d bytes reserved", conns, sent+4, reserved)
	if limit := conns * readBufSize; reserved > limit {
		t.Fatalf("%d connections that sent %d bytes each reserved %d bytes (%d each), want at most %d each: a declared size must not be reserved before its bytes arrive",
			conns, sent+4, reserved, reserved/conns, readBufSize)
	}
}

// TestIdleTimeoutSparesAConnectionBeingWrittenTo: heartbeat_idle_time (on
// by default since issue 16) counts bytes sent as activity, as nginx's
// proxy_timeout does: a client that only reads a long answer or a stream
// of events is not idle. Once nothing moves either way it is closed.
func TestIdleTimeoutSparesAConnectionBeingWrittenTo(t *testing.T) {
	const idle = 300 * time.Millisecond
	r, addr, h := startEcho(t, Options{Loops: 1, IdleTimeout: idle}, 1024)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go io.Copy(io.Discard, c)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(idle / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				r.Loops()[0].Post(Task{Fn: func(l *Loop, _ *Task) {
					l.EachConn(func(c *Conn) { c.Write([]byte("x")) })
				}})
			}
		}
	}()
	// Five idle periods of writes only: the connection must stay open.
	select {
	case err := <-h.done:
		close(stop)
		t.Fatalf("closed (%v) while the server was writing to it", err)
	case <-time.After(5 * idle):
	}
	close(stop)
	if err := <-h.done; !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("close reason %v, want ErrIdleTimeout once nothing moves", err)
	}
}
