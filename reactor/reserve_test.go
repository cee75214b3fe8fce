package reactor

import (
	"bytes"
	"encoding/binary"
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
