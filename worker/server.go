package worker

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/internal/pluginhook"
	"github.com/drover-dev/drover/ipc"
)

// SDK is the name this package announces in its hello ("sdk" key).
const SDK = "go"

// Events are a worker's callbacks, named after Swoole's. Every field is
// optional. The Server argument is the same for every call. Callbacks for
// one connection never overlap, but callbacks for different connections
// run concurrently (unless the concurrency is 1), so state they share needs
// a lock.
type Events struct {
	// OnStart runs once, before the worker says hello to the master and
	// receives events: open databases, load configuration here. An error
	// (or a panic) ends the process with ipc.ExitBootFailure after the error
	// is printed on stderr.
	OnStart func(s *Server) error
	// OnConnect is the first event of a connection.
	OnConnect func(s *Server, conn uint64, info ipc.ConnInfo)
	// OnReceive gets one packet of conn, framed as it arrived (the
	// listener's length header or EOF marker included). data is valid only
	// during the call: copy what you keep.
	OnReceive func(s *Server, conn uint64, data []byte)
	// OnClose is the last event of a connection; sending to it no longer
	// reaches anyone.
	OnClose func(s *Server, conn uint64)
	// OnMessage gets a message another worker sent with SendMessage (from
	// is its worker id). data is valid only during the call. Messages from
	// one sender arrive in order.
	OnMessage func(s *Server, from int, data []byte)
}

// WithOnMessage sets Events.OnMessage, for ServeHTTP and RunHTTP.
func WithOnMessage(fn func(s *Server, from int, data []byte)) Option {
	return func(o *options) { o.onMessage = fn }
}

// Option configures Serve and Run.
type Option func(*options)

type options struct {
	concurrency int
	errorLog    *log.Logger
	// onStopFrame, for tests, runs when the stop frame has been read.
	// onServer receives the Server once it exists (plugin stop requests).
	onServer    func(*Server)
	onStopFrame func()
	// onWindowWait, for tests, runs when a response waits for credit.
	onWindowWait func()
	// onLeaderStart, for tests, runs when a goroutine is started to read.
	onLeaderStart func()
	onMessage     func(s *Server, from int, data []byte) // WithOnMessage
	role          string                                 // ipc.RoleWorker unless a user process
	http          httpOptions                            // ServeHTTP's
	// lendThreshold is lendThreshold (dispatch.go); tests change it.
	lendThreshold time.Duration
	// arenas are the body arenas the manager passed (arena.go), nil
	// without; tests set their own.
	arenas *arenas
}

// DefaultConcurrency returns the concurrency a worker declares without
// WithConcurrency: 64 × GOMAXPROCS. CPU-bound handlers saturate the cores
// with far fewer, and extra slots cost nothing while unused (no goroutine
// waits in advance); handlers that wait on a database or an RPC need about
// rate × latency events in flight, and 64 per core sustains 6,400 events/s
// per core at 10 ms each. The bound remains useful: every event in flight
// holds a copy of its packet, and past it the master queues (then refuses)
// instead of piling work onto a struggling worker.
func DefaultConcurrency() int { return 64 * runtime.GOMAXPROCS(0) }

// WithConcurrency sets how many events the worker handles at once, the
// concurrency it declares in its hello; events of one connection still run
// one at a time. 1 runs every callback on the goroutine that reads the
// channel, without copying packets: the lowest latency for callbacks that
// do not block, but one slow callback then delays every connection. Values
// below 1 mean 1.
func WithConcurrency(n int) Option {
	return func(o *options) { o.concurrency = max(n, 1) }
}

// WithErrorLog sets the logger for recovered panics and undecodable
// payloads; the default writes to stderr.
func WithErrorLog(l *log.Logger) Option {
	return func(o *options) { o.errorLog = l }
}

func newOptions(opts []Option) options {
	o := options{concurrency: DefaultConcurrency(), lendThreshold: lendThreshold}
	for _, f := range opts {
		f(&o)
	}
	if o.errorLog == nil {
		o.errorLog = log.New(os.Stderr, "", log.LstdFlags)
	}
	return o
}

// maxSendFrame is the largest Send payload the SDK writes. The master cuts
// off a worker whose frame exceeds package_max_length + 64 KiB, and
// package_max_length is at least 64 bytes, so 64 KiB always fits.
const maxSendFrame = 64 << 10

// Run is the usual main of a worker: it calls Serve and exits with 0 after a
// graceful stop, ipc.ExitBootFailure (78) when OnStart failed, and 1
// otherwise (run by hand, master gone), printing the error on stderr.
func Run(ev Events, opts ...Option) {
	err := Serve(ev, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(ipc.ExitCode(err))
}

// Serve runs the worker until the master stops it, and then returns nil once
// every event has been handled and answered. It returns an error wrapping
// ipc.ErrNotStarted when drover did not start the process, one wrapping
// ipc.ErrBootFailure when OnStart failed, and the read error, at once, when
// the master went away (io.EOF) or sent a malformed frame; callbacks still
// running then keep running, and their Sends fail. Serve closes fd 3 before
// it returns.
func Serve(ev Events, opts ...Option) error {
	return serveRole(ipc.RoleWorker, ev, newOptions(opts))
}

// serveRole is Serve for a worker or a user process (role).
func serveRole(role string, ev Events, o options) error {
	o.role = role
	f, err := ipc.OpenWorkerEnd(role)
	if err != nil {
		return err
	}
	defer f.Close()
	// Started with launch: plugin, the go-plugin handshake comes first (served
	// by worker/plugin when the handler imports it, an error otherwise); the
	// socket pair is fd 3 in both launch modes, so nothing below changes.
	var running atomic.Pointer[Server]
	if err := pluginhook.ServeIfLaunched(func() {
		if s := running.Load(); s != nil {
			s.Stop()
		}
	}); err != nil {
		return fmt.Errorf("%w: plugin handshake: %v", ipc.ErrBootFailure, err)
	}
	onServer := o.onServer
	o.onServer = func(s *Server) {
		running.Store(s)
		if onServer != nil {
			onServer(s)
		}
	}
	if role == ipc.RoleWorker && o.arenas == nil {
		o.arenas = openArenas(o.http.handler != nil)
	}
	ch := channel{
		r:            ipc.NewReader(f, ipc.DefaultMaxPayload),
		w:            ipc.NewWriter(f, ipc.WriterBacklog),
		shutdownRead: func() error { return ipc.ShutdownRead(f) },
	}
	return serve(ch, ipc.WorkerID(), ev, o)
}

// channel is the worker's end of its socket pair; tests build one on a
// socket pair of their own.
type channel struct {
	r            *ipc.Reader
	w            *ipc.Writer
	shutdownRead func() error
}

// Server is the worker's view of drover: what a callback uses to answer.
// Its methods are safe for concurrent use.
type Server struct {
	id  int
	ch  channel
	ev  Events
	opt options

	stopping atomic.Bool
	sendMu   sync.RWMutex // held exclusively by a Send cut into several frames

	// Concurrency > 1: busy holds a queue for each connection whose events
	// are being handled; its drainer handles queued events in order.
	mu     sync.Mutex
	busy   map[uint64]*connQueue
	active sync.WaitGroup // one per busy connection
	result chan error     // the reading goroutines' verdict, sent once
	leadFn func()         // s.lead, bound once: go s.leadFn() does not allocate
	// draining: the stop frame was read with HTTP requests in flight;
	// reading goes on for their frames only. Touched by the goroutine
	// holding the reading role.
	draining bool
	role     atomic.Int32 // roleReading or roleLent (dispatch.go)
	// lendTimer runs checkLend while the role is lent (dispatch.go): lendSeq
	// counts lends, lendSeen is the one its last check saw.
	lendTimer *time.Timer
	lendSeq   atomic.Uint64
	lendSeen  atomic.Uint64
	lendArmed atomic.Bool
	http      httpState // HTTP requests in flight (http.go)
	tasks     taskTable // tasks waited for (tasks.go)
}

// WorkerID returns the worker's slot number, 0..worker_num-1 (DROVER_WORKER_ID).
func (s *Server) WorkerID() int { return s.id }

// Send queues data for connection conn — any connection, not only the one
// whose event is being handled. It writes the frame to the channel, or
// queues it behind a write in progress (blocking only while more than
// ipc.WriterBacklog bytes wait), and never waits for the master; data may
// be reused after Send returns. The bytes of one Send reach
// the connection together, never mixed with another Send's, and Sends from
// one goroutine arrive in order. Data over 64 KiB goes out as several
// frames, which a stream connection receives as one byte sequence (a
// datagram cannot be that long anyway). Sending to a closed connection is
// not an error here: the master drops the bytes. Send fails only when the
// channel to the master is broken or closed (after Serve returned).
func (s *Server) Send(conn uint64, data []byte) error {
	var err error
	if len(data) <= maxSendFrame {
		s.sendMu.RLock()
		err = s.ch.w.WriteFrame(ipc.TypeSend, 0, conn, data)
		s.sendMu.RUnlock()
	} else {
		// Exclusive, so that no other Send lands between the pieces.
		s.sendMu.Lock()
		for len(data) > 0 && err == nil {
			n := min(len(data), maxSendFrame)
			err = s.ch.w.WriteFrame(ipc.TypeSend, 0, conn, data[:n])
			data = data[n:]
		}
		s.sendMu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("worker: send to conn %d: %w", conn, err)
	}
	return nil
}

// Close asks the master to close connection conn once everything sent to it
// before has been written. OnClose follows as the connection's last event.
func (s *Server) Close(conn uint64) error {
	if err := s.ch.w.WriteFrame(ipc.TypeCloseConn, 0, conn, nil); err != nil {
		return fmt.Errorf("worker: close conn %d: %w", conn, err)
	}
	return nil
}

// Stop stops the worker from inside: it reads no further event, lets the
// running callbacks finish and Serve return nil (Run exits 0), and the
// manager starts a successor. Events the master had already sent and the
// worker had not begun are failed by the master, as for any worker that
// exits; prefer max_request and reload, which lose nothing. Stop does not
// wait and may be called more than once.
func (s *Server) Stop() {
	if s.stopping.Swap(true) {
		return
	}
	// Wake the reading goroutine from read(2); it sees stopping and ends.
	_ = s.ch.shutdownRead()
}

// serve runs a worker on ch: OnStart, hello, then the event loop.
func serve(ch channel, id int, ev Events, o options) error {
	if ev.OnMessage == nil {
		ev.OnMessage = o.onMessage
	}
	s := &Server{id: id, ch: ch, ev: ev, opt: o}
	if o.onServer != nil {
		o.onServer(s)
	}
	current.Store(s)
	defer current.CompareAndSwap(s, nil)
	if err := s.start(); err != nil {
		return err
	}
	arenas := o.arenas != nil && o.http.handler != nil
	if err := ipc.WriteHello(ch.w, ipc.Hello{Role: cmp.Or(o.role, ipc.RoleWorker), SDK: SDK, Concurrency: o.concurrency, Flow: true, Arenas: arenas}); err != nil {
		return fmt.Errorf("worker %d: %w", id, err)
	}
	var err error
	// HTTP requests always take the leader/follower path: their body and
	// cancel frames must be read while the handler runs.
	if o.concurrency == 1 && o.http.handler == nil {
		err = s.readInline()
	} else {
		s.busy = make(map[uint64]*connQueue)
		s.http.reqs = make(map[uint64]*exchange)
		if o.http.handler != nil {
			ch.r.SetAlloc(s.allocPiece)
		}
		s.result = make(chan error, 1)
		s.leadFn = s.lead
		s.lendTimer = time.AfterFunc(time.Hour, s.checkLend)
		s.lendTimer.Stop()
		defer s.lendTimer.Stop()
		go s.leadFn()
		if err = <-s.result; err == nil {
			s.active.Wait()
		}
	}
	if err != nil {
		return err
	}
	if err := ch.w.Close(); err != nil && !errors.Is(err, ipc.ErrWriterClosed) {
		return fmt.Errorf("worker %d: flush before exit: %w", id, err)
	}
	return nil
}

// start runs OnStart; a failure or panic is a boot failure.
func (s *Server) start() (err error) {
	if s.ev.OnStart == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: worker %d: OnStart panicked: %v\n%s", ipc.ErrBootFailure, s.id, r, stack())
		}
	}()
	if err := s.ev.OnStart(s); err != nil {
		return fmt.Errorf("%w: worker %d: OnStart: %w", ipc.ErrBootFailure, s.id, err)
	}
	return nil
}

// readInline is the event loop for concurrency 1: callbacks run here, on
// the payload in the read buffer.
func (s *Server) readInline() error {
	for {
		h, payload, err := s.ch.r.ReadFrame()
		if err != nil || s.stopping.Load() {
			return s.readEnded(err)
		}
		switch h.Type {
		case ipc.TypeStop:
			s.stopFrame()
			return nil
		case ipc.TypeConnect, ipc.TypeData, ipc.TypeClose:
			s.handle(h.Type, h.ID, payload)
			s.done(h.ID)
			if s.stopping.Load() { // Stop called by the callback
				return nil
			}
		case ipc.TypeRequest:
			s.refuseHTTP(h.ID)
		}
		// Other types are newer than this SDK: ignored, without Done.
	}
}

// readEnded turns the end of reading into Serve's verdict: nil after Stop,
// the cause otherwise.
func (s *Server) readEnded(err error) error {
	if s.stopping.Load() {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("worker %d: master closed the channel (fd %d), exiting: %w", s.id, ipc.WorkerFD, err)
	}
	return fmt.Errorf("worker %d: read from master: %w", s.id, err)
}

func (s *Server) stopFrame() {
	s.stopping.Store(true)
	if s.opt.onStopFrame != nil {
		s.opt.onStopFrame()
	}
}

// done answers one event.
func (s *Server) done(conn uint64) {
	// An error means the master is gone; the reader sees it too and ends.
	_ = s.ch.w.WriteFrame(ipc.TypeDone, 0, conn, nil)
}

// handle runs the callback for one event and recovers its panic.
func (s *Server) handle(t ipc.Type, conn uint64, payload []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.recovered(t, conn, r)
		}
	}()
	switch t {
	case ipc.TypeConnect:
		if s.ev.OnConnect != nil {
			var info ipc.ConnInfo
			if err := ipc.Unmarshal(payload, &info); err != nil {
				s.opt.errorLog.Printf("worker %d: conn %d: connect info: %v", s.id, conn, err)
			}
			s.ev.OnConnect(s, conn, info)
		}
	case ipc.TypeData:
		if s.ev.OnReceive != nil {
			s.ev.OnReceive(s, conn, payload)
		}
	case ipc.TypeClose:
		if s.ev.OnClose != nil {
			s.ev.OnClose(s, conn)
		}
	}
}

func (s *Server) recovered(t ipc.Type, conn uint64, r any) {
	cb, closed := "OnReceive", "; connection closed"
	switch t {
	case ipc.TypeConnect:
		cb = "OnConnect"
	case ipc.TypeClose:
		cb, closed = "OnClose", ""
	}
	s.opt.errorLog.Printf("worker %d: panic in %s (conn %d)%s: %v\n%s", s.id, cb, conn, closed, r, stack())
	if closed != "" {
		_ = s.Close(conn)
	}
}

// stack returns the calling goroutine's stack.
func stack() []byte {
	buf := make([]byte, 64<<10)
	return buf[:runtime.Stack(buf, false)]
}
