package worker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"testing"

	"github.com/drover-dev/drover/ipc"
	"golang.org/x/sys/unix"
)

// fakeMaster plays the master on one end of a socket pair. Its methods are
// for the test goroutine only.
type fakeMaster struct {
	t      testing.TB
	f      *os.File
	r      *ipc.Reader
	w      *ipc.Writer
	hello  ipc.Hello
	served chan struct{} // closed when Serve returned
	err    error         // Serve's result, set before served is closed
	logs   *syncBuffer
	// HTTP flow control: credits received from the worker by connection,
	// and whether readH holds back the credit for response bodies.
	credited   map[uint64]int64
	holdCredit bool
}

// frame is a frame read by the fake master, payload copied.
type frame struct {
	typ     ipc.Type
	id      uint64
	payload string
}

func (f frame) String() string { return fmt.Sprintf("%s(%d %q)", f.typ, f.id, f.payload) }

// syncBuffer is a bytes.Buffer for a logger used from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startWorker runs serve on an in-process socket pair and reads the hello.
// wrap, when not nil, wraps the worker's writes.
func startWorker(t testing.TB, ev Events, wrap func(io.Writer) io.Writer, opts ...Option) *fakeMaster {
	t.Helper()
	mf, wf, err := ipc.SocketPair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	o := newOptions(append([]Option{WithErrorLog(log.New(logs, "", 0))}, opts...))
	var out io.Writer = wf
	if wrap != nil {
		out = wrap(wf)
	}
	ch := channel{
		r:            ipc.NewReader(wf, ipc.DefaultMaxPayload),
		w:            ipc.NewWriter(out, ipc.WriterBacklog),
		shutdownRead: func() error { return ipc.ShutdownRead(wf) },
	}
	m := &fakeMaster{t: t, f: mf, r: ipc.NewReader(mf, ipc.DefaultMaxPayload), w: ipc.NewWriter(mf, 1<<20), served: make(chan struct{}), logs: logs}
	go func() {
		err := serve(ch, 3, ev, o)
		wf.Close() // as Serve closes fd 3: the master sees EOF
		m.err = err
		close(m.served)
	}()
	t.Cleanup(func() {
		mf.Close()
		<-m.served
	})
	h := m.read()
	if h.typ != ipc.TypeHello {
		t.Fatalf("first frame is %v, want hello", h)
	}
	if err := ipc.Unmarshal([]byte(h.payload), &m.hello); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *fakeMaster) send(t ipc.Type, id uint64, payload []byte) {
	m.t.Helper()
	if err := m.w.WriteFrame(t, 0, id, payload); err != nil {
		m.t.Fatalf("master: write %s: %v", t, err)
	}
}

func (m *fakeMaster) connect(id uint64) {
	m.t.Helper()
	b, err := ipc.Marshal(ipc.ConnInfo{Listener: 1, Remote: fmt.Sprintf("10.0.0.1:%d", id), Local: "127.0.0.1:9501"})
	if err != nil {
		m.t.Fatal(err)
	}
	m.send(ipc.TypeConnect, id, b)
}

// read returns the next frame from the worker; EOF is a failure.
func (m *fakeMaster) read() frame {
	m.t.Helper()
	f, err := m.next()
	if err != nil {
		m.t.Fatalf("master: read: %v", err)
	}
	return f
}

func (m *fakeMaster) next() (frame, error) {
	h, p, err := m.r.ReadFrame()
	if err != nil {
		return frame{}, err
	}
	return frame{typ: h.Type, id: h.ID, payload: string(p)}, nil
}

// expect reads len(want) frames and compares them with want.
func (m *fakeMaster) expect(want ...frame) {
	m.t.Helper()
	for i, w := range want {
		if got := m.read(); got != w {
			m.t.Fatalf("frame %d: got %v, want %v", i, got, w)
		}
	}
}

// expectEOF reads the end of the channel, after which Serve has returned.
func (m *fakeMaster) expectEOF() error {
	m.t.Helper()
	if f, err := m.next(); !errors.Is(err, io.EOF) {
		m.t.Fatalf("master: got %v (%v), want EOF", f, err)
	}
	return m.wait()
}

// wait waits for Serve to return and returns its result.
func (m *fakeMaster) wait() error {
	<-m.served
	return m.err
}

func sendF(id uint64, s string) frame { return frame{typ: ipc.TypeSend, id: id, payload: s} }
func doneF(id uint64) frame           { return frame{typ: ipc.TypeDone, id: id} }
func closeF(id uint64) frame          { return frame{typ: ipc.TypeCloseConn, id: id} }

// echo is the handler most tests use.
var echo = Events{OnReceive: func(s *Server, conn uint64, data []byte) { _ = s.Send(conn, data) }}
