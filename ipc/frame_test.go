package ipc

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf []byte
	buf = AppendFrame(buf, TypeData, 0, 42, []byte("hello"))
	buf = AppendFrame(buf, TypeDone, 0, 1<<60, nil)
	buf = AppendFrame(buf, TypeSend, 3, 7, bytes.Repeat([]byte{0xAB}, 70000))

	want := []struct {
		t     Type
		flags uint8
		id    uint64
		n     int
	}{{TypeData, 0, 42, 5}, {TypeDone, 0, 1 << 60, 0}, {TypeSend, 3, 7, 70000}}
	for i, w := range want {
		h, p, n, err := Next(buf, DefaultMaxPayload)
		if err != nil || n == 0 {
			t.Fatalf("frame %d: n=%d err=%v", i, n, err)
		}
		if h.Type != w.t || h.Flags != w.flags || h.ID != w.id || len(p) != w.n {
			t.Fatalf("frame %d: got %+v payload %d, want %+v", i, h, len(p), w)
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left over", len(buf))
	}
}

func TestHeaderLayout(t *testing.T) {
	got := AppendFrame(nil, TypeData, 0x01, 0x0102030405060708, []byte{0xFF})
	want := []byte{0, 0, 0, 1, 4, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0xFF}
	if !bytes.Equal(got, want) {
		t.Fatalf("header layout\n got %x\nwant %x", got, want)
	}
}

func TestNextPartial(t *testing.T) {
	frame := AppendFrame(nil, TypeData, 0, 9, []byte("abcdef"))
	for i := 0; i < len(frame); i++ {
		if _, _, n, err := Next(frame[:i], 100); n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v, want need-more", i, n, err)
		}
	}
}

func TestNextErrors(t *testing.T) {
	big := AppendHeader(nil, TypeData, 0, 1, 101)
	if _, _, _, err := Next(big, 100); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over-long: err=%v, want ErrFrameTooLarge", err)
	}
	bad := AppendHeader(nil, TypeData, 0, 1, 0)
	bad[6] = 1
	if _, _, _, err := Next(bad, 100); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("reserved bits: err=%v, want ErrBadFrame", err)
	}
	zero := AppendHeader(nil, 0, 0, 1, 0)
	if _, _, _, err := Next(zero, 100); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("type 0: err=%v, want ErrBadFrame", err)
	}
}

// chunkReader returns at most n bytes a call, to exercise partial reads.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

func TestReaderChunks(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var stream []byte
	var sizes []int
	for i := 0; i < 200; i++ {
		n := rng.Intn(100000)
		if i%10 != 0 {
			n = rng.Intn(300)
		}
		p := make([]byte, n)
		rng.Read(p)
		sizes = append(sizes, n)
		stream = AppendFrame(stream, TypeData, 0, uint64(i+1), p)
	}
	for _, chunk := range []int{1, 7, 4096, 1 << 20} {
		r := NewReader(&chunkReader{b: stream, n: chunk}, DefaultMaxPayload)
		off := 0
		for i, n := range sizes {
			h, p, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("chunk %d frame %d: %v", chunk, i, err)
			}
			if h.ID != uint64(i+1) || len(p) != n || !bytes.Equal(p, stream[off+HeaderSize:off+HeaderSize+n]) {
				t.Fatalf("chunk %d frame %d: wrong frame id=%d len=%d", chunk, i, h.ID, len(p))
			}
			off += HeaderSize + n
		}
		if _, _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("chunk %d: at end err=%v, want io.EOF", chunk, err)
		}
	}
	r := NewReader(&chunkReader{b: stream[:HeaderSize+3], n: 5}, DefaultMaxPayload)
	if _, _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: err=%v, want io.ErrUnexpectedEOF", err)
	}
}

// countingWriter counts write calls.
type countingWriter struct {
	mu      sync.Mutex
	calls   int
	buf     bytes.Buffer
	gate    chan struct{} // the first Write waits for it
	entered chan struct{} // closed when the first Write starts
	once    sync.Once
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.once.Do(func() {
		close(c.entered)
		<-c.gate
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.buf.Write(p)
}

func TestWriterBatchesConcurrentFrames(t *testing.T) {
	cw := &countingWriter{gate: make(chan struct{}), entered: make(chan struct{})}
	w := NewWriter(cw, 1<<20)
	first := make(chan error, 1)
	go func() { first <- w.WriteFrame(TypeSend, 0, 0, []byte("first")) }()
	<-cw.entered
	// The first writer is parked in Write; everything queued now is batched.
	var wg sync.WaitGroup
	const n = 100
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := w.WriteFrame(TypeSend, 0, uint64(i), []byte("x")); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	close(cw.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if cw.calls != 2 {
		t.Fatalf("%d write calls for %d frames, want 2", cw.calls, n+1)
	}
	r := NewReader(&cw.buf, 100)
	seen := map[uint64]bool{}
	for i := 0; i <= n; i++ {
		h, _, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		seen[h.ID] = true
	}
	if len(seen) != n+1 {
		t.Fatalf("saw %d distinct frames, want %d", len(seen), n+1)
	}
}

func TestWriterReportsFailure(t *testing.T) {
	a, b, err := SocketPair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b.Close()
	w := NewWriter(a, 1<<20)
	if err := w.WriteFrame(TypeDone, 0, 1, nil); err == nil {
		t.Fatal("write to a closed peer succeeded")
	}
	if err := w.WriteFrame(TypeDone, 0, 2, nil); err == nil {
		t.Fatal("write after a failure succeeded")
	}
}

func TestControlPassesFiles(t *testing.T) {
	a, b, err := SocketPair(unix.SOCK_SEQPACKET)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewControl(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := NewControl(b)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	defer ca.Close()
	defer cb.Close()

	p1, p2, err := SocketPair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	ev := WorkerEvent{Role: RoleWorker, Slot: 1, Gen: 7, PID: 1234}
	if err := ca.Send(CtlWorkerStarted, 7, ev, p1); err != nil {
		t.Fatal(err)
	}
	p1.Close()
	h, payload, files, err := cb.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var got WorkerEvent
	if err := Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	if h.Type != CtlWorkerStarted || h.ID != 7 || got.Slot != 1 || got.Gen != 7 || got.PID != 1234 || len(files) != 1 {
		t.Fatalf("got %+v %+v with %d files", h, got, len(files))
	}
	defer files[0].Close()
	// The passed descriptor is the same socket: bytes written on it reach p2.
	if _, err := files[0].Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(p2, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	flags, err := unix.FcntlInt(files[0].Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("received fd is not close-on-exec (flags %d, %v)", flags, err)
	}
}

func FuzzNext(f *testing.F) {
	f.Add(AppendFrame(nil, TypeData, 0, 1, []byte("abc")))
	f.Add(AppendFrame(AppendFrame(nil, TypeHello, 0, 0, []byte{0x80}), TypeDone, 0, 5, nil))
	f.Add([]byte{0, 0, 0, 200, 4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whole-buffer decoding and the streaming Reader must agree.
		var frames [][]byte
		buf := data
		var err error
		for {
			var n int
			var p []byte
			_, p, n, err = Next(buf, 1024)
			if err != nil || n == 0 {
				break
			}
			if n != HeaderSize+len(p) || n > len(buf) {
				t.Fatalf("n=%d payload=%d buf=%d", n, len(p), len(buf))
			}
			frames = append(frames, p)
			buf = buf[n:]
		}
		r := NewReader(&chunkReader{b: data, n: 3}, 1024)
		for i, want := range frames {
			_, p, rerr := r.ReadFrame()
			if rerr != nil || !bytes.Equal(p, want) {
				t.Fatalf("frame %d: reader got %q, %v; want %q", i, p, rerr, want)
			}
		}
		_, _, rerr := r.ReadFrame()
		switch {
		case err != nil:
			if rerr == nil || rerr.Error() != err.Error() {
				t.Fatalf("Next failed with %v, reader with %v", err, rerr)
			}
		case len(buf) == 0:
			if rerr != io.EOF {
				t.Fatalf("clean end: reader err=%v", rerr)
			}
		default:
			if rerr != io.ErrUnexpectedEOF {
				t.Fatalf("truncated tail: reader err=%v", rerr)
			}
		}
	})
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

func TestWriterHold(t *testing.T) {
	cw := &countingWriter{gate: make(chan struct{}), entered: make(chan struct{})}
	close(cw.gate)
	w := NewWriter(cw, 1<<20)
	w.Hold(true)
	for i := range 10 {
		if err := w.WriteFrame(TypeSend, 0, uint64(i), []byte("held")); err != nil {
			t.Fatal(err)
		}
	}
	if cw.calls != 0 {
		t.Fatalf("%d writes while held, want 0", cw.calls)
	}
	w.Hold(false)
	if cw.calls != 1 {
		t.Fatalf("%d writes after Hold(false), want 1 for the batch", cw.calls)
	}
	// Held, the queue still goes out once it passes holdMax, and on Flush.
	w.Hold(true)
	big := make([]byte, holdMax)
	if err := w.WriteFrame(TypeSend, 0, 1, big); err != nil {
		t.Fatal(err)
	}
	if cw.calls != 2 {
		t.Fatalf("a frame over holdMax was held (%d writes)", cw.calls)
	}
	_ = w.WriteFrame(TypeSend, 0, 2, []byte("x"))
	if err := w.Flush(); err != nil || cw.calls != 3 {
		t.Fatalf("Flush while held: err %v, %d writes, want 3", err, cw.calls)
	}
	r := NewReader(&cw.buf, 1<<20)
	for i := range 12 {
		if _, _, err := r.ReadFrame(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}

func TestReaderReady(t *testing.T) {
	stream := AppendFrame(nil, TypeSend, 0, 1, []byte("one"))
	stream = AppendFrame(stream, TypeSend, 0, 2, []byte("two"))
	r := NewReader(&chunkReader{b: stream, n: len(stream) - 2}, DefaultMaxPayload)
	if r.Ready() {
		t.Fatal("Ready before any read")
	}
	if _, _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if r.Ready() {
		t.Fatal("Ready with a partial frame buffered")
	}
	if h, _, err := r.ReadFrame(); err != nil || h.ID != 2 {
		t.Fatalf("second frame: %v %v", h, err)
	}
	r = NewReader(bytes.NewReader(stream), DefaultMaxPayload)
	if _, _, err := r.ReadFrame(); err != nil || !r.Ready() {
		t.Fatalf("a whole second frame is buffered but Ready is false (err %v)", err)
	}
}

// recordingReader is a chunkReader that records the size of each read's
// buffer.
type recordingReader struct {
	chunkReader
	asked []int
}

func (r *recordingReader) Read(p []byte) (int, error) {
	r.asked = append(r.asked, len(p))
	return r.chunkReader.Read(p)
}

// TestReaderAlloc: with SetAlloc, a large payload not yet buffered whole is
// read into the caller's buffer (what was buffered of it copied there
// first), small ones and declined ones stay in the Reader's buffer, the
// read after a payload read so is small (directRead), and a stream cut
// in such a payload is io.ErrUnexpectedEOF.
func TestReaderAlloc(t *testing.T) {
	big := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	type want struct {
		id    uint64
		body  []byte
		owned bool
	}
	frames := []want{
		{1, []byte("small"), false},
		{2, big(64<<10, 'a'), true}, // first read: its header and part of it
		{3, big(64<<10, 'b'), true}, // header read alone (directRead)
		{4, []byte("window"), false},
		{5, big(DirectPayload-1, 'c'), false}, // under the threshold
		{6, big(64<<10, 'd'), false},          // declined by alloc
	}
	var stream []byte
	for _, f := range frames {
		stream = AppendFrame(stream, TypeRequestBody, 0, f.id, f.body)
	}
	src := &recordingReader{chunkReader: chunkReader{b: stream, n: 1 << 20}}
	r := NewReader(src, DefaultMaxPayload)
	var given [][]byte
	r.SetAlloc(func(h Header) []byte {
		if h.ID == 6 {
			return nil
		}
		b := make([]byte, 0, h.Length)
		given = append(given, b)
		return b
	})
	for _, f := range frames {
		asked := len(src.asked)
		h, p, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", f.id, err)
		}
		if h.ID != f.id || !bytes.Equal(p, f.body) {
			t.Fatalf("frame %d: got id %d, %d bytes, equal %v", f.id, h.ID, len(p), bytes.Equal(p, f.body))
		}
		if r.Owned() != f.owned {
			t.Fatalf("frame %d: Owned %v, want %v", f.id, r.Owned(), f.owned)
		}
		if f.owned && &p[0] != &given[len(given)-1][:1][0] {
			t.Fatalf("frame %d: the payload is not in the buffer alloc gave", f.id)
		}
		if f.id == 3 || f.id == 4 {
			// The first read for the frame after an owned one is small.
			if a := src.asked[asked]; a > directRead {
				t.Fatalf("frame %d: the read after an owned payload asked for %d bytes, want at most %d", f.id, a, directRead)
			}
		}
	}
	if _, _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}

	// Cut in the middle of a payload read into the caller's buffer.
	cut := AppendFrame(nil, TypeRequestBody, 0, 1, big(64<<10, 'x'))[:HeaderSize+30<<10]
	r = NewReader(&chunkReader{b: cut, n: 1000}, DefaultMaxPayload)
	r.SetAlloc(func(h Header) []byte { return make([]byte, 0, h.Length) })
	if _, _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut payload: %v, want io.ErrUnexpectedEOF", err)
	}
}
