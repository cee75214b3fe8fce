package reactor

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Handler receives a loop's connection events. Every method runs on the
// goroutine of the loop that owns the connection, never concurrently for
// one loop, so a Handler may touch the Conn freely inside them.
type Handler interface {
	// OnOpen runs when a connection has been accepted.
	OnOpen(c *Conn)
	// OnPacket runs for each complete packet, in order. pkt aliases the
	// loop's buffers and is valid only during the call.
	OnPacket(c *Conn, pkt []byte)
	// OnReadEOF runs when the peer shut down its sending side. Reading has
	// stopped; the connection stays open for output until the Handler
	// closes it (Close or CloseWhenFlushed).
	OnReadEOF(c *Conn)
	// OnClose runs exactly once, after the socket is closed. err is why:
	// nil when the Handler closed it, otherwise ErrIdleTimeout,
	// ErrOutputFull, ErrServerClosed, a splitter error or a socket error.
	OnClose(c *Conn, err error)
}

// StreamHandler is implemented by a Handler that parses a listener's byte
// stream itself (a Listener without a Splitter, such as HTTP). OnStream
// gets the connection's unconsumed input and returns how many bytes it
// consumed; the rest is kept and passed again, extended by new bytes, on
// the next read or Kick. It runs on the connection's loop.
type StreamHandler interface {
	OnStream(c *Conn, data []byte) int
}

// Ticker is implemented by a Handler that wants a call on every loop every
// Options.Tick (timeouts of its own).
type Ticker interface {
	OnTick(l *Loop)
}

// Errors that close connections; the master logs them.
var (
	ErrIdleTimeout  = errors.New("idle for longer than heartbeat_idle_time")
	ErrOutputFull   = errors.New("output buffer over buffer_output_size (client not reading)")
	ErrServerClosed = errors.New("server shutting down")
	// ErrLingerLimit: a connection closing after its answer (CloseLingering)
	// went on sending past LingerBytes or LingerTime; it is closed, with a
	// reset if input is left unread.
	ErrLingerLimit = errors.New("client went on sending after the answer past the lingering close's bounds")
)

// Defaults of the lingering close's bounds (Options.Linger*): nginx's
// lingering_time and lingering_timeout, and a byte count that a client
// sending at line rate on a LAN reaches in well under LingerTime.
const (
	DefaultLingerTime    = 30 * time.Second
	DefaultLingerTimeout = 5 * time.Second
	DefaultLingerBytes   = 8 << 20
)

// Options configure a Reactor.
type Options struct {
	Loops       int           // reactor_num, at least 1
	MaxConn     int           // connections open at once over all loops; 0 = unlimited
	IdleTimeout time.Duration // heartbeat_idle_time; 0 = never
	OutputLimit int           // buffer_output_size; 0 = unlimited
	// A connection closed with CloseLingering reads and drops its peer's
	// input for at most LingerTime in all, LingerTimeout between reads
	// and LingerBytes. Zero selects the Default; LingerTime < 0 turns
	// lingering off (CloseLingering is CloseWhenFlushed).
	LingerTime    time.Duration
	LingerTimeout time.Duration
	LingerBytes   int
	Tick          time.Duration // period of Ticker.OnTick, if the Handler is one
	Log           *logrus.Entry
}

// Listener is a listening socket the loops accept on. The Reactor does not
// own FD: the caller keeps it open until the Reactor has stopped accepting.
type Listener struct {
	Index    int    // position in the config's listeners list
	Name     string // address as configured, for logs
	FD       int    // non-blocking listening socket
	Splitter func() Splitter
}

// ListenerFD is the descriptor of ln, for a Listener's FD. ln must stay
// referenced while the reactor polls it: its finalizer closes the
// descriptor.
func ListenerFD(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("%T has no descriptor", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	fd := -1
	raw.Control(func(f uintptr) { fd = int(f) })
	return fd, nil
}

// Reactor is a set of event loops sharing listeners and a connection limit.
type Reactor struct {
	opts  Options
	loops []*Loop
	conns atomic.Int64
	wg    sync.WaitGroup
}

// New creates the loops; Start runs them and StartAccepting lets them accept.
func New(opts Options, lns []*Listener, h Handler) (*Reactor, error) {
	if opts.Loops < 1 || opts.Loops > 255 {
		return nil, fmt.Errorf("reactor: %d loops (want 1 to 255)", opts.Loops)
	}
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	if opts.LingerTime == 0 {
		opts.LingerTime = DefaultLingerTime
	}
	if opts.LingerTimeout <= 0 {
		opts.LingerTimeout = DefaultLingerTimeout
	}
	if opts.LingerBytes <= 0 {
		opts.LingerBytes = DefaultLingerBytes
	}
	for _, ln := range lns {
		if _, ok := h.(StreamHandler); ln.Splitter == nil && !ok {
			return nil, fmt.Errorf("reactor: listener %s has no splitter and %T is no StreamHandler", ln.Name, h)
		}
	}
	r := &Reactor{opts: opts}
	for i := 0; i < opts.Loops; i++ {
		l, err := newLoop(r, i, lns, h)
		if err != nil {
			r.closeLoops()
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	return r, nil
}

// Start runs every loop on its own goroutine.
func (r *Reactor) Start() {
	for _, l := range r.loops {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			l.run()
		}()
	}
}

// Loops returns the loops, indexed by their number.
func (r *Reactor) Loops() []*Loop { return r.loops }

// LoopOf returns the loop that owns connection id.
func (r *Reactor) LoopOf(id uint64) *Loop {
	i := int(id & 0xff)
	if i >= len(r.loops) {
		return nil
	}
	return r.loops[i]
}

// Conns returns the number of open connections.
func (r *Reactor) Conns() int64 { return r.conns.Load() }

// StartAccepting adds the listeners to every loop. Until it is called (and
// after StopAccepting) new connections wait in the kernel's backlog.
func (r *Reactor) StartAccepting() error {
	errs := make(chan error, len(r.loops))
	for _, l := range r.loops {
		l.Post(Task{Fn: func(l *Loop, _ *Task) { errs <- l.startAccepting() }})
	}
	var first error
	for range r.loops {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// StopAccepting removes the listeners from every loop and returns once no
// loop will accept again. Open connections are untouched.
func (r *Reactor) StopAccepting() {
	var wg sync.WaitGroup
	for _, l := range r.loops {
		wg.Add(1)
		l.Post(Task{Fn: func(l *Loop, _ *Task) {
			l.stopAccepting()
			wg.Done()
		}})
	}
	wg.Wait()
}

// Stop closes every connection (OnClose with ErrServerClosed), ends the
// loops and waits for them.
func (r *Reactor) Stop() {
	for _, l := range r.loops {
		l.Post(Task{Fn: func(l *Loop, _ *Task) { l.shutdown() }})
	}
	r.wg.Wait()
	r.closeLoops()
}

func (r *Reactor) closeLoops() {
	for _, l := range r.loops {
		unix.Close(l.epfd)
		unix.Close(l.evfd)
	}
}

// Task is work posted to a loop from another goroutine. Fn runs on the
// loop's goroutine with the Task itself, so callers can pass data without a
// closure: ID, Data, Err and Arg are for Fn to interpret.
type Task struct {
	Fn   func(l *Loop, t *Task)
	ID   uint64
	Data []byte
	Err  error
	Arg  int
}

// FDHandler receives epoll events for a descriptor registered with Watch.
type FDHandler interface {
	HandleEvent(l *Loop, events uint32)
}

// Flusher is work deferred to the end of a loop iteration (see Loop.Defer).
type Flusher interface {
	Flush(l *Loop)
}

// Loop is one event loop. Its methods must be called on its goroutine
// (inside Handler, FDHandler, Flusher or Task callbacks) unless they say
// otherwise.
type Loop struct {
	r    *Reactor
	http httpLoop // HTTP connections' scratch (httpconn.go)
	idx  int
	h    Handler
	sh   StreamHandler // h, when it is one
	tk   Ticker        // h, when it is one and Options.Tick is set
	epfd int
	evfd int

	lns       []*Listener
	accepting bool
	acceptAt  time.Time // accepting resumes then after EMFILE

	byFD  []fdEntry
	conns map[uint64]*Conn
	seq   uint64
	buf   []byte // read buffer shared by the loop's connections

	dirty     []*Conn
	flushers  []Flusher
	lingering []*Conn // connections in their lingering close (may hold closed ones until the next sweep)

	inboxMu sync.Mutex
	inbox   []Task
	spare   []Task

	now       time.Time
	lastYield time.Time // see yieldEvery
	lastSweep time.Time
	nextTick  time.Time
	done      bool
	lastWarn  time.Time
}

type fdEntry interface{ event(l *Loop, ev uint32) }

const (
	readBufSize = 64 << 10
	evIn        = unix.EPOLLIN | unix.EPOLLRDHUP
)

func newLoop(r *Reactor, idx int, lns []*Listener, h Handler) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("reactor: epoll_create: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("reactor: eventfd: %w", err)
	}
	l := &Loop{r: r, idx: idx, h: h, epfd: epfd, evfd: evfd, lns: lns,
		conns: make(map[uint64]*Conn), buf: make([]byte, readBufSize), now: time.Now()}
	l.sh, _ = h.(StreamHandler)
	if tk, ok := h.(Ticker); ok && r.opts.Tick > 0 {
		l.tk = tk
		l.nextTick = l.now.Add(r.opts.Tick)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("reactor: watch eventfd: %w", err)
	}
	return l, nil
}

// Index returns the loop's number (0..reactor_num-1).
func (l *Loop) Index() int { return l.idx }

// Now returns the time the current iteration started.
func (l *Loop) Now() time.Time { return l.now }

// Conn returns the open connection with id, or nil.
func (l *Loop) Conn(id uint64) *Conn { return l.conns[id] }

// EachConn calls fn for every open connection of the loop.
func (l *Loop) EachConn(fn func(c *Conn)) {
	for _, c := range l.conns {
		fn(c)
	}
}

// Post queues t to run on the loop's goroutine. Safe from any goroutine;
// tasks run in the order posted.
func (l *Loop) Post(t Task) {
	l.inboxMu.Lock()
	l.inbox = append(l.inbox, t)
	first := len(l.inbox) == 1
	l.inboxMu.Unlock()
	if first {
		var one = [8]byte{1}
		unix.Write(l.evfd, one[:])
	}
}

// Watch registers fd for EPOLLIN events delivered to h.
func (l *Loop) Watch(fd int, h FDHandler) error {
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: evIn, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("reactor: watch fd %d: %w", fd, err)
	}
	l.setEntry(fd, watchEntry{h})
	return nil
}

// WantWrite arms (or disarms) EPOLLOUT for a watched fd. Safe from any
// goroutine: epoll_ctl is.
func (l *Loop) WantWrite(fd int, on bool) {
	ev := uint32(evIn)
	if on {
		ev |= unix.EPOLLOUT
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)})
}

// Unwatch removes fd; it does not close it.
func (l *Loop) Unwatch(fd int) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	if fd < len(l.byFD) {
		l.byFD[fd] = nil
	}
}

// Defer runs f.Flush at the end of the current iteration, after every event
// of the iteration was handled. Deferring the same f twice runs it twice.
func (l *Loop) Defer(f Flusher) { l.flushers = append(l.flushers, f) }

func (l *Loop) setEntry(fd int, e fdEntry) {
	for fd >= len(l.byFD) {
		l.byFD = append(l.byFD, make([]fdEntry, len(l.byFD)+64)...)
	}
	l.byFD[fd] = e
}

// yieldEvery is how often a loop busy with events yields its thread to the
// Go scheduler. A goroutine that never yields is seen by the runtime's
// monitor (sysmon) as running one time slice for ever: every 10 ms it takes
// the loop's P away while epoll_wait blocks, and each time it resets its
// own polling to every 20 µs. Under the hello benchmark at 256 connections
// that cost the master about 2,000 extra sleeps and wake-ups a second; one
// yield every few milliseconds (two context switches on a locked thread)
// lets the monitor sleep 10 ms at a time.
const yieldEvery = 5 * time.Millisecond

func (l *Loop) run() {
	// The loop's goroutine stays on one thread: epoll_wait blocks in the
	// kernel, and handing the thread around buys nothing.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]unix.EpollEvent, 512)
	for !l.done {
		n, err := unix.EpollWait(l.epfd, events, l.timeout())
		if err != nil && err != unix.EINTR {
			l.r.opts.Log.WithError(err).WithField("loop", l.idx).Error("epoll_wait failed; reactor loop stops")
			return
		}
		l.now = time.Now()
		if l.now.Sub(l.lastYield) >= yieldEvery {
			l.lastYield = l.now
			runtime.Gosched()
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.evfd {
				l.runInbox()
				continue
			}
			if fd < len(l.byFD) && l.byFD[fd] != nil {
				l.byFD[fd].event(l, events[i].Events)
			}
		}
		l.flush()
		l.timers()
	}
}

// timeout is epoll_wait's timeout in ms: the next timer, or forever.
func (l *Loop) timeout() int {
	t := -1
	if l.r.opts.IdleTimeout > 0 {
		t = 1000
	}
	if !l.acceptAt.IsZero() || len(l.lingering) > 0 {
		t = 100
	}
	if l.tk != nil {
		ms := int(time.Until(l.nextTick).Milliseconds()) + 1
		if t < 0 || ms < t {
			t = max(ms, 0)
		}
	}
	return t
}

func (l *Loop) timers() {
	if l.tk != nil && !l.now.Before(l.nextTick) {
		l.nextTick = l.now.Add(l.r.opts.Tick)
		l.tk.OnTick(l)
		l.flush()
	}
	if !l.acceptAt.IsZero() && !l.now.Before(l.acceptAt) {
		l.acceptAt = time.Time{}
		if err := l.startAccepting(); err != nil {
			l.r.opts.Log.WithError(err).Error("cannot resume accepting")
		}
	}
	if len(l.lingering) > 0 {
		l.sweepLingering()
	}
	idle := l.r.opts.IdleTimeout
	if idle <= 0 || l.now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = l.now
	cutoff := l.now.Add(-idle).UnixNano()
	for _, c := range l.conns {
		if c.lastRead < cutoff && !c.lingering {
			c.Close(ErrIdleTimeout)
		}
	}
	l.flush()
}

// sweepLingering closes the lingering connections past LingerTime (with
// ErrLingerLimit) or quiet for LingerTimeout (with nil), and forgets
// closed ones.
func (l *Loop) sweepLingering() {
	now := l.now.UnixNano()
	quiet := now - int64(l.r.opts.LingerTimeout)
	keep := l.lingering[:0]
	for _, c := range l.lingering {
		switch {
		case c.closed:
		case c.lingerEnd <= now:
			c.Close(ErrLingerLimit)
		case c.lastRead <= quiet:
			c.Close(nil) // the peer went quiet: nothing is left unread
		}
		if !c.closed {
			keep = append(keep, c)
		}
	}
	clear(l.lingering[len(keep):])
	l.lingering = keep
}

func (l *Loop) runInbox() {
	var b [8]byte
	unix.Read(l.evfd, b[:])
	l.inboxMu.Lock()
	tasks := l.inbox
	l.inbox = l.spare[:0]
	l.inboxMu.Unlock()
	for i := range tasks {
		tasks[i].Fn(l, &tasks[i])
		tasks[i] = Task{}
	}
	l.spare = tasks[:0]
}

// flush writes what the iteration buffered: deferred flushers first (they
// may buffer connection output), then connections, again until both are
// done (a connection's NotifyWritten hook may defer a flusher).
func (l *Loop) flush() {
	for len(l.flushers) > 0 || len(l.dirty) > 0 {
		for i := 0; i < len(l.flushers); i++ {
			l.flushers[i].Flush(l)
			l.flushers[i] = nil
		}
		l.flushers = l.flushers[:0]
		for i := 0; i < len(l.dirty); i++ {
			c := l.dirty[i]
			l.dirty[i] = nil
			c.dirty = false
			if !c.closed {
				c.flush()
			}
		}
		l.dirty = l.dirty[:0]
	}
}

func (l *Loop) stopAccepting() {
	if !l.accepting {
		return
	}
	l.accepting = false
	for _, ln := range l.lns {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.FD, nil)
		l.byFD[ln.FD] = nil
	}
}

func (l *Loop) startAccepting() error {
	if l.accepting || l.done {
		return nil
	}
	for _, ln := range l.lns {
		// EPOLLEXCLUSIVE wakes one loop per incoming connection instead of all.
		ev := &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(ln.FD)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.FD, ev); err != nil {
			return fmt.Errorf("reactor: watch listener %s: %w", ln.Name, err)
		}
		l.setEntry(ln.FD, (*listenEntry)(ln))
	}
	l.accepting = true
	return nil
}

func (l *Loop) shutdown() {
	l.stopAccepting()
	for _, c := range l.conns {
		// One last non-blocking write: answers produced just before the
		// stop still reach clients whose socket has room.
		if c.Buffered() > 0 {
			c.flush()
		}
		c.Close(ErrServerClosed)
	}
	l.flush()
	l.done = true
}

// warnf logs at most one warning a second per loop, so a flood of refused
// connections cannot flood the log.
func (l *Loop) warn(fields logrus.Fields, msg string) {
	if l.now.Sub(l.lastWarn) < time.Second {
		return
	}
	l.lastWarn = l.now
	l.r.opts.Log.WithFields(fields).Warn(msg)
}

type listenEntry Listener

func (e *listenEntry) event(l *Loop, _ uint32) {
	ln := (*Listener)(e)
	// Accept a bounded batch so one busy listener cannot starve the loop.
	for i := 0; i < 64 && l.accepting; i++ {
		fd, sa, err := unix.Accept4(ln.FD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED:
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors: stop accepting for a moment rather than spin
				// on a listener that stays readable.
				l.warn(logrus.Fields{"listener": ln.Name, "loop": l.idx, "error": err.Error()},
					"accept failed; pausing accepts for 100ms (raise the open-files limit or lower max_conn)")
				l.stopAccepting()
				l.acceptAt = l.now.Add(100 * time.Millisecond)
			default:
				l.warn(logrus.Fields{"listener": ln.Name, "loop": l.idx, "error": err.Error()}, "accept failed")
			}
			return
		}
		if max := l.r.opts.MaxConn; max > 0 && l.r.conns.Load() >= int64(max) {
			unix.Close(fd)
			l.warn(logrus.Fields{"listener": ln.Name, "max_conn": max},
				"connection refused: max_conn reached (closed at once; raise max_conn to admit more)")
			continue
		}
		l.open(fd, sa, ln)
	}
}

type watchEntry struct{ h FDHandler }

func (w watchEntry) event(l *Loop, ev uint32) { w.h.HandleEvent(l, ev) }
