package ipc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// partsBody is the body of frame seq of writer g: its bytes tell where
// they belong.
func partsBody(g, seq int) []byte {
	n := []int{100, DirectFrame, 3 * DirectFrame, 200 << 10}[seq%4]
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g*31 + seq*7 + i)
	}
	return b
}

// Frames written with WriteFrameParts from several goroutines at once,
// small ones queued and large ones written from the callers' buffers,
// arrive whole and, per goroutine, in order; and on a stream without a
// descriptor they are queued like WriteFrame's.
func TestWriteFrameParts(t *testing.T) {
	// A small, non-blocking sending side: large frames are written in
	// several calls, waiting for room in between.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10)
	unix.SetNonblock(fds[0], true)
	unix.SetNonblock(fds[1], true)
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	b.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer a.Close()
	defer b.Close()
	w := NewWriter(a, WriterBacklog)
	const writers, frames = 4, 40
	errs := make(chan error, 1)
	go func() {
		r := NewReader(b, DefaultMaxPayload)
		next := make([]int, writers)
		for range writers * frames {
			h, p, err := r.ReadFrame()
			if err != nil {
				errs <- err
				return
			}
			g, seq := int(h.ID), int(binary.BigEndian.Uint32(p))
			if g >= writers || seq != next[g] {
				errs <- fmt.Errorf("frame %d of writer %d arrived when %d was due", seq, g, next[g])
				return
			}
			next[g]++
			if !bytes.Equal(p[4:], partsBody(g, seq)) {
				errs <- fmt.Errorf("frame %d of writer %d: %d body bytes, not the ones written", seq, g, len(p)-4)
				return
			}
		}
		errs <- nil
	}()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range frames {
				head := binary.BigEndian.AppendUint32(nil, uint32(seq))
				if seq%5 == 0 {
					w.Hold(true) // frames held before a large one go out first
				}
				if err := w.WriteFrameParts(TypeSend, 0, uint64(g), head, partsBody(g, seq)); err != nil {
					return // the reader failed
				}
				w.Hold(false)
			}
		}()
	}
	if err := <-errs; err != nil {
		a.Close() // the writers waiting for room fail
		wg.Wait()
		t.Fatal(err)
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	w = NewWriter(&buf, WriterBacklog)
	body := partsBody(1, 3)
	if err := w.WriteFrameParts(TypeSend, 0, 9, []byte("head"), body); err != nil {
		t.Fatal(err)
	}
	h, p, err := NewReader(&buf, DefaultMaxPayload).ReadFrame()
	if err != nil || h.ID != 9 || string(p[:4]) != "head" || !bytes.Equal(p[4:], body) {
		t.Fatalf("frame through a buffer: %v, id %d, %d bytes; want id 9, head and body", err, h.ID, len(p))
	}
}
