// Command relay is a ceiling measurement for drover's data plane with
// large bodies (issue 17): a stripped-down master that does only what the
// process model must. One epoll loop on one thread accepts HTTP/1.1
// clients, reads a request head (just enough of it: request line, header
// lines, Content-Length), buffers the body before dispatch (as drover's
// http_body_buffer_size rule asks), sends the request to a worker process
// over a socket pair in drover's own frames (TypeRequest, TypeRequestBody
// of at most 64 KiB, flow-control credit as in ipc.FlowWindow), and writes
// the worker's TypeResponse/TypeResponseBody frames back as HTTP/1.1
// (Content-Length when the answer is one frame, chunked otherwise). It has
// no timeouts, limits, logs or dispatch modes: it measures the copies and
// system calls, not drover's checks.
//
// The workers are real drover workers: by default examples/hello (the Go
// SDK, as in scripts/bench/http.sh), or -worker raw, a minimal worker in
// this binary that reads each frame into one buffer and writes its answer
// from it (the floor of any SDK).
//
// Modes (-mode), how bytes cross the master:
//
//	copy    the body is read from the client straight into one buffer and
//	        written to the socket pair from it with writev; answers are
//	        read into one buffer and written to the client from it (2 kernel
//	        copies each way in the master, as net/http's 1).
//	bounce  copy, plus the body goes through a 64 KiB read buffer first,
//	        as drover's master reads it today (one more user-space copy).
//	splice  the body goes client socket → pipe (buffered there before
//	        dispatch) → socket pair, and answers socket pair → pipe →
//	        client socket, by splice(2): pages move by reference
//	        (tcp_splice_read, unix_stream_splice_read, MSG_SPLICE_PAGES in
//	        AF_UNIX and TCP sendmsg), so the master copies only what it
//	        reads to parse: request heads, frame headers and what a read of
//	        -wread bytes brings along.
//	shm     (-worker raw only; a prototype, not drover's wire) bodies do
//	        not cross the socket pair: the master reads a request body
//	        into a memfd the workers map read-only, one slot per
//	        connection; the worker writes its answer's body into a memfd
//	        of its own, which the master maps read-only and writes to the
//	        client from. The socket pair carries the frames without bodies
//	        (FlagShm: the body is in the connection's slot).
//
//	relay -addr 127.0.0.1:18090 -mode splice -worker bin/hello
//	relay -mode copy -worker raw
//
// On exit (SIGINT/SIGTERM) it prints its counters (requests, bytes spliced
// and copied, stalls) on stderr.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
)

var (
	flagAddr    = flag.String("addr", "127.0.0.1:18090", "listen address (TCP)")
	flagMode    = flag.String("mode", "copy", "copy, bounce or splice (see the doc comment)")
	flagWorkers = flag.Int("workers", 2, "worker processes")
	flagWorker  = flag.String("worker", "bin/hello", "worker command (space-separated argv), or raw for the minimal worker in this binary")
	flagPipe    = flag.Int("pipe", 1<<20, "splice: pipe size (F_SETPIPE_SZ), request and answer pipes of each connection")
	flagSockBuf = flag.Int("sockbuf", ipc.SocketBufferSize, "SO_SNDBUF and SO_RCVBUF of the socket pairs (0: the kernel's default)")
	flagWRead   = flag.Int("wread", 4096, "splice: bytes read from a socket pair at once; the rest of a large frame's body is spliced")
	flagSplMin  = flag.Int("splicemin", 16<<10, "splice: the smallest rest of a frame body that is spliced rather than read")
	flagHeadBuf = flag.Int("headbuf", 4096, "splice: bytes read from a client at once for a request head (the body that comes with it is copied)")
	flagFrame   = flag.Int("bodyframe", ipc.MaxInlineBody, "largest request body frame sent to a worker")
	flagSlot    = flag.Int("shmslot", 1<<20, "shm: bytes of a connection's slot (the largest body)")
	flagSlots   = flag.Int("shmslots", 256, "shm: slots (the most connections)")
	flagOutCopy = flag.Bool("outcopy", false, "copy, bounce: copy what a write to a worker's socket pair left unwritten into one buffer, as drover's master does")
	flagNoFlow  = flag.Bool("noflow", false, "ignore the workers' flow control: forward request bodies whole (answers are credited anyway)")
)

type mode int

const (
	modeCopy mode = iota
	modeBounce
	modeSplice
	modeShm
)

// FlagShm (prototype) marks a TypeRequest whose body is in the request
// memfd at the slot named by Request.Listener, and a TypeResponse whose
// payload is the body's length (4 bytes, big-endian) and then a Response
// head without body: the body is in the worker's answer memfd at the
// request's slot.
const FlagShm uint8 = 0x80

// counters are printed on exit.
type counters struct {
	requests, splicedIn, splicedOut, copiedIn, copiedOut int64
	pipeFullIn, pipeFullOut, readsW, splicesW, writesC   int64
	outCopied                                            int64
}

func main() {
	if os.Getenv("RELAY_RAW_WORKER") == "1" {
		rawWorker()
		return
	}
	flag.Parse()
	var m mode
	switch *flagMode {
	case "copy":
		m = modeCopy
	case "bounce":
		m = modeBounce
	case "splice":
		m = modeSplice
	case "shm":
		m = modeShm
		if *flagWorker != "raw" {
			fmt.Fprintln(os.Stderr, "relay: -mode shm needs -worker raw (the Go SDK does not speak the prototype)")
			os.Exit(2)
		}
	default:
		fmt.Fprintf(os.Stderr, "relay: -mode %q: want copy, bounce or splice\n", *flagMode)
		os.Exit(2)
	}
	l, err := newLoop(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			l.dump.Store(true)
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		l.stop()
		os.Exit(0)
	}()
	fmt.Fprintf(os.Stderr, "relay: %s mode, %d workers (%s), listening on %s\n", *flagMode, len(l.workers), *flagWorker, *flagAddr)
	l.run()
}

// loop is the master: one epoll loop on one locked thread owns everything.
type loop struct {
	mode    mode
	epfd    int
	lfd     int
	fds     []handler // by descriptor
	workers []*worker
	cmds    []*exec.Cmd
	rr      int
	seq     uint64
	conns   map[uint64]*conn
	dirty   []*worker // workers with queued output, flushed at the end of an iteration
	bounce  []byte    // modeBounce's read buffer
	date    []byte
	dateAt  int64
	st      counters
	dump    atomic.Bool // SIGUSR1: print the state on stderr
	// shm: the request memfd (mapped here read-write, by the workers
	// read-only) and the free slots.
	shmFD  int
	shmReq []byte
	slots  []int
}

// memfd returns a memfd of size bytes mapped with prot.
func memfd(name string, size int, prot int, seal bool) (int, []byte, error) {
	flags := unix.MFD_CLOEXEC
	if seal {
		flags |= unix.MFD_ALLOW_SEALING
	}
	fd, err := unix.MemfdCreate(name, flags)
	if err != nil {
		return -1, nil, err
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return -1, nil, err
	}
	b, err := unix.Mmap(fd, 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return -1, nil, err
	}
	if seal {
		// No new writable mapping: the workers map it read-only.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_FUTURE_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW); err != nil {
			return -1, nil, fmt.Errorf("seal: %w", err)
		}
	}
	return fd, b, nil
}

func (l *loop) dumpState() {
	for _, c := range l.conns {
		fmt.Fprintf(os.Stderr, "conn %d: st %d events %#x cl %d have %d sent %d cred %d ended %v reqPiped %d items %d out %d outPiped %d owed %d w %v\n",
			c.id, c.st, c.events, c.cl, c.have, c.sent, c.cred, c.ended, c.reqPiped, c.pipeItems, len(c.out)-c.outOff, c.outPiped, c.respIn-c.respCred, c.w != nil)
	}
	for _, w := range l.workers {
		sp := uint64(0)
		if w.spl != nil {
			sp = w.spl.id
		}
		fmt.Fprintf(os.Stderr, "worker %d: outq %d armed %v spl %d left %d stalled %v in %d\n", w.id, len(w.outq), w.armed, sp, w.splLeft, w.stalled != nil, len(w.in)-w.beg)
	}
}

type handler interface{ event(l *loop, ev uint32) }

func newLoop(m mode) (*loop, error) {
	l := &loop{mode: m, conns: make(map[uint64]*conn), bounce: make([]byte, 64<<10)}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if err := l.listen(*flagAddr); err != nil {
		return nil, err
	}
	if m == modeShm {
		var err error
		if l.shmFD, l.shmReq, err = memfd("relay-requests", *flagSlot**flagSlots, unix.PROT_READ|unix.PROT_WRITE, true); err != nil {
			return nil, fmt.Errorf("request memfd: %w", err)
		}
		for i := *flagSlots - 1; i >= 0; i-- {
			l.slots = append(l.slots, i)
		}
	}
	for i := range *flagWorkers {
		if err := l.spawn(i); err != nil {
			l.stop()
			return nil, err
		}
	}
	return l, nil
}

func (l *loop) listen(addr string) error {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: host}); err != nil {
		return fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(fd, 1024); err != nil {
		return err
	}
	l.lfd = fd
	l.set(fd, listener{})
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

func splitHostPort(addr string) ([4]byte, int, error) {
	var ip [4]byte
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return ip, 0, fmt.Errorf("address %q: want host:port", addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		return ip, 0, fmt.Errorf("address %q: %w", addr, err)
	}
	parts := strings.Split(addr[:i], ".")
	if len(parts) != 4 {
		return ip, 0, fmt.Errorf("address %q: want an IPv4 host", addr)
	}
	for k, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 {
			return ip, 0, fmt.Errorf("address %q: bad IPv4 host", addr)
		}
		ip[k] = byte(v)
	}
	return ip, port, nil
}

func (l *loop) set(fd int, h handler) {
	for fd >= len(l.fds) {
		l.fds = append(l.fds, nil)
	}
	l.fds[fd] = h
}

// spawn starts worker i on a new socket pair and waits for its hello.
func (l *loop) spawn(i int) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if *flagSockBuf > 0 {
		for _, fd := range fds {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, *flagSockBuf)
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, *flagSockBuf)
		}
	}
	child := os.NewFile(uintptr(fds[1]), "worker-end")
	var cmd *exec.Cmd
	env := append(os.Environ(), ipc.EnvRole+"="+ipc.RoleWorker, ipc.EnvWorkerID+"="+strconv.Itoa(i),
		ipc.EnvWorkerNum+"="+strconv.Itoa(*flagWorkers))
	if *flagWorker == "raw" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cmd = exec.Command(exe)
		env = append(env, "RELAY_RAW_WORKER=1")
	} else {
		argv := strings.Fields(*flagWorker)
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{child}
	var respFD int
	var resp []byte
	if l.mode == modeShm {
		if respFD, resp, err = memfd("relay-answers", *flagSlot**flagSlots, unix.PROT_READ, false); err != nil {
			return fmt.Errorf("answer memfd: %w", err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(l.shmFD), "requests"), os.NewFile(uintptr(respFD), "answers"))
		cmd.Env = append(cmd.Env, "RELAY_SHM="+strconv.Itoa(*flagSlot)+","+strconv.Itoa(*flagSlots))
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		child.Close()
		unix.Close(fds[0])
		return fmt.Errorf("worker %d: %w", i, err)
	}
	child.Close()
	if respFD > 0 {
		unix.Close(respFD)
	}
	l.cmds = append(l.cmds, cmd)
	w := &worker{id: i, fd: fds[0], in: make([]byte, 0, 256<<10), resp: resp}
	// The hello, read blocking before the descriptor joins the loop.
	var hdr [ipc.HeaderSize]byte
	if err := readFull(w.fd, hdr[:]); err != nil {
		return fmt.Errorf("worker %d: hello: %w", i, err)
	}
	h, err := ipc.ParseHeader(hdr[:], ipc.MaxHelloSize)
	if err != nil || h.Type != ipc.TypeHello {
		return fmt.Errorf("worker %d: want a hello, got %v %v", i, h.Type, err)
	}
	payload := make([]byte, h.Length)
	if err := readFull(w.fd, payload); err != nil {
		return fmt.Errorf("worker %d: hello: %w", i, err)
	}
	hello, err := ipc.DecodeHello(payload)
	if err != nil {
		return fmt.Errorf("worker %d: %w", i, err)
	}
	w.flow = hello.Flow
	unix.SetNonblock(w.fd, true)
	l.set(w.fd, w)
	l.workers = append(l.workers, w)
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, w.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(w.fd)})
}

func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("end of stream")
		}
		b = b[n:]
	}
	return nil
}

func (l *loop) stop() {
	s := l.st
	fmt.Fprintf(os.Stderr, "relay: %d requests; spliced %d B in, %d B out; copied %d B in, %d B out; pipe full %d in, %d out; worker reads %d, splices %d; client writes %d; -outcopy copied %d B\n",
		s.requests, s.splicedIn, s.splicedOut, s.copiedIn, s.copiedOut, s.pipeFullIn, s.pipeFullOut, s.readsW, s.splicesW, s.writesC, s.outCopied)
	for _, c := range l.cmds {
		c.Process.Kill() // reaped by init once this process exits
	}
}

func (l *loop) run() {
	runtime.LockOSThread()
	evs := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.epfd, evs, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay: epoll_wait:", err)
			os.Exit(1)
		}
		for i := range n {
			if fd := int(evs[i].Fd); fd < len(l.fds) && l.fds[fd] != nil {
				l.fds[fd].event(l, evs[i].Events)
			}
		}
		if l.dump.Swap(false) {
			l.dumpState()
		}
		for len(l.dirty) > 0 {
			w := l.dirty[len(l.dirty)-1]
			l.dirty = l.dirty[:len(l.dirty)-1]
			w.dirty = false
			w.flush(l)
		}
	}
}

// httpDate is the Date header's value, formatted once a second.
func (l *loop) httpDate() []byte {
	now := time.Now()
	if now.Unix() != l.dateAt {
		l.dateAt = now.Unix()
		l.date = now.UTC().AppendFormat(l.date[:0], http.TimeFormat)
	}
	return l.date
}

type listener struct{}

func (listener) event(l *loop, _ uint32) {
	for {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		l.seq++
		// Edge-triggered, so that no epoll_ctl is made per request: every
		// read goes on until EAGAIN, and input that arrives while a request
		// is at a worker is read when it is answered (readable).
		c := &conn{fd: fd, id: l.seq, events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, in: make([]byte, 0, 64<<10)}
		c.reqPipe, c.outPipe = [2]int{-1, -1}, [2]int{-1, -1}
		if l.mode == modeSplice {
			if c.reqPipe, err = newPipe(); err == nil {
				c.outPipe, err = newPipe()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "relay: pipe:", err)
				c.close(l)
				continue
			}
		}
		c.slot = -1
		if l.mode == modeShm {
			if len(l.slots) == 0 {
				fmt.Fprintln(os.Stderr, "relay: no free shm slot (-shmslots)")
				c.close(l)
				continue
			}
			c.slot = l.slots[len(l.slots)-1]
			l.slots = l.slots[:len(l.slots)-1]
		}
		l.conns[c.id] = c
		l.set(fd, c)
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: c.events, Fd: int32(fd)})
	}
}

func newPipe() ([2]int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return [2]int{-1, -1}, err
	}
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, *flagPipe); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return [2]int{-1, -1}, fmt.Errorf("F_SETPIPE_SZ %d: %w (see /proc/sys/fs/pipe-max-size)", *flagPipe, err)
	}
	return p, nil
}

// Connection phases.
const (
	stHead  = iota // reading a request head
	stBody         // buffering the body before dispatch
	stAtW          // at a worker: body being forwarded, or waiting for the answer
	stClose        // closed
)

// conn is a client connection.
type conn struct {
	id       uint64
	fd       int
	events   uint32
	readable bool // input arrived (an edge) while the request was at a worker
	st       int
	in       []byte // unconsumed input (request head, body bytes that came with it)

	// The request at hand.
	cl    int    // Content-Length
	req   []byte // the TypeRequest frame (header and payload)
	body  []byte // copy, bounce: the body; splice: the part that came with the head
	have  int    // body bytes buffered (in body, then in reqPipe)
	w     *worker
	sent  int // body bytes queued for the worker
	cred  int // body bytes the worker credited
	ended bool

	// splice: the body's pipe, and the answer's.
	reqPipe, outPipe [2]int
	reqPiped         int // bytes in reqPipe
	pipeItems        int // worker output items that splice from reqPipe
	outPiped         int // bytes in outPipe

	// The answer: head sent, framing, output waiting for the client:
	// out first, then outPipe.
	started, chunked bool
	out              []byte
	outOff           int
	respIn, respCred int    // answer body bytes received from the worker, and credited
	slot             int    // shm: the connection's slot in the memfds
	pre, post, pend  []byte // framing around a body piece; pend: a spliced chunk's CRLF not yet written
}

func (c *conn) event(l *loop, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		c.flushOut(l)
	}
	if c.st == stClose {
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 {
		switch c.st {
		case stHead:
			c.readHead(l)
		case stBody:
			c.readBody(l)
		case stAtW:
			if c.have < c.cl {
				c.readBody(l) // dispatched when the pipe was full
				return
			}
			c.readable = true
			fallthrough
		default:
			if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.close(l)
			}
		}
	}
}

func (c *conn) close(l *loop) {
	if c.st == stClose {
		return
	}
	c.st = stClose
	l.fds[c.fd] = nil
	unix.Close(c.fd)
	if c.w != nil {
		// The worker stops working on the request (the Go SDK fails its
		// body and ends the answer, which nobody reads).
		c.w.queue(l, item{b: ipc.AppendHeader(nil, ipc.TypeCancel, ipc.FlagEnd, c.id, 0)})
	}
	c.closePipes()
	if c.w == nil {
		c.forget(l)
	}
	// Else the request's frames still arrive: the last one forgets c.
}

// forget drops a closed connection, and frees its shm slot.
func (c *conn) forget(l *loop) {
	delete(l.conns, c.id)
	if c.slot >= 0 {
		l.slots = append(l.slots, c.slot)
		c.slot = -1
	}
}

// closePipes closes a closed connection's pipes once no frame still
// splices from them (a frame promised its bytes: they must go out).
func (c *conn) closePipes() {
	if c.pipeItems > 0 {
		return
	}
	for _, p := range [][2]int{c.reqPipe, c.outPipe} {
		if p[0] >= 0 {
			unix.Close(p[0])
			unix.Close(p[1])
		}
	}
	c.reqPipe, c.outPipe = [2]int{-1, -1}, [2]int{-1, -1}
}

func (c *conn) readHead(l *loop) {
	for c.st == stHead {
		if i := bytes.Index(c.in, []byte("\r\n\r\n")); i >= 0 {
			if !c.startRequest(l, c.in[:i+4]) {
				c.close(l)
				return
			}
			continue
		}
		if len(c.in) == cap(c.in) {
			c.close(l) // head too long for this tool
			return
		}
		room := c.in[len(c.in):cap(c.in)]
		if l.mode == modeSplice && len(room) > *flagHeadBuf {
			room = room[:*flagHeadBuf]
		}
		n, err := unix.Read(c.fd, room)
		if n <= 0 {
			if err != unix.EAGAIN && err != unix.EINTR {
				c.close(l)
			}
			c.readable = false
			return
		}
		c.in = c.in[:len(c.in)+n]
		// A read that filled its room may have left more (edge-triggered:
		// no new event comes for it).
		c.readable = n == len(room)
	}
	if c.st == stBody {
		c.readBody(l)
	}
}

// startRequest parses the head at the start of c.in and builds the
// TypeRequest frame; the body that came with it moves to c.body.
func (c *conn) startRequest(l *loop, head []byte) bool {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	parts := bytes.SplitN(line, []byte(" "), 3)
	if len(parts) != 3 {
		return false
	}
	r := ipc.Request{Method: string(parts[0]), Target: string(parts[1]), Proto: string(parts[2]), Remote: "127.0.0.1:1"}
	c.cl = 0
	for len(rest) > 2 {
		var hl []byte
		hl, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(hl, []byte(":"))
		if !ok {
			return false
		}
		value = bytes.TrimSpace(value)
		if bytes.EqualFold(name, []byte("Content-Length")) {
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return false
			}
			c.cl = n
		}
		r.Headers = append(r.Headers, string(name), string(value))
	}
	r.ContentLength = int64(c.cl)
	c.in = c.in[:copy(c.in, c.in[len(head):])]
	take := min(len(c.in), c.cl)
	c.body = append(c.body[:0], c.in[:take]...)
	c.in = c.in[:copy(c.in, c.in[take:])]
	c.have, c.sent, c.cred = take, 0, 0
	c.started, c.chunked = false, false
	c.respIn, c.respCred = 0, 0
	if c.cl <= ipc.MaxInlineBody && take == c.cl {
		r.Body = c.body
	} else {
		r.BodyFollows = true
	}
	var shm uint8
	if l.mode == modeShm {
		if c.cl > *flagSlot {
			return false
		}
		copy(l.shmSlot(c), c.body)
		r.Body, r.BodyFollows, r.Listener = nil, false, c.slot
		shm = FlagShm
	}
	c.ended = !r.BodyFollows
	c.req = ipc.AppendHeader(c.req[:0], ipc.TypeRequest, 0, c.id, 0)
	c.req = ipc.AppendRequest(c.req, &r)
	c.req = ipc.AppendHeader(c.req[:0], ipc.TypeRequest, shm, c.id, len(c.req)-ipc.HeaderSize)[:len(c.req)]
	l.st.requests++
	if r.BodyFollows || shm != 0 && c.have < c.cl {
		c.st = stBody
		if l.mode != modeSplice && cap(c.body) < c.cl {
			c.body = append(make([]byte, 0, c.cl), c.body...)
		}
		return true
	}
	c.dispatch(l)
	return true
}

// readBody buffers the body; the request goes to a worker once it is
// whole (or, splice, once the pipe is full: the rest follows as the
// worker takes it).
func (c *conn) readBody(l *loop) {
	for c.have < c.cl {
		var n int
		var err error
		switch l.mode {
		case modeSplice:
			var k int64
			k, err = unix.Splice(c.fd, nil, c.reqPipe[1], nil, c.cl-c.have, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
			n = int(k)
			if n > 0 {
				c.reqPiped += n
				l.st.splicedIn += int64(n)
			} else if err == unix.EAGAIN && c.reqPiped > 0 && socketReadable(c.fd) {
				// The pipe is full: dispatch now, the rest follows as the
				// worker takes the pipe's bytes (flush calls again).
				l.st.pipeFullIn++
				if c.st == stBody {
					c.dispatch(l)
				}
				return
			}
		case modeShm:
			n, err = unix.Read(c.fd, l.shmSlot(c)[c.have:c.cl])
			if n > 0 {
				l.st.copiedIn += int64(n)
			}
		case modeBounce:
			n, err = unix.Read(c.fd, l.bounce[:min(len(l.bounce), c.cl-c.have)])
			if n > 0 {
				c.body = append(c.body, l.bounce[:n]...)
				l.st.copiedIn += int64(n)
			}
		default:
			n, err = unix.Read(c.fd, c.body[c.have:c.cl])
			if n > 0 {
				c.body = c.body[:c.have+n]
				l.st.copiedIn += int64(n)
			}
		}
		if n <= 0 {
			if err == unix.EAGAIN {
			} else if err != unix.EINTR {
				c.close(l)
			}
			return
		}
		c.have += n
		if c.st == stAtW {
			c.pump(l)
		}
	}
	// The body's end read: what follows it (pipelined) is read when the
	// request is answered.
	c.readable = true
	if c.st == stBody {
		c.dispatch(l)
	}
}

// shmSlot is c's slot in the request memfd.
func (l *loop) shmSlot(c *conn) []byte {
	return l.shmReq[c.slot**flagSlot : (c.slot+1)**flagSlot]
}

func socketReadable(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return err == nil && n > 0
}

// dispatch sends the request to the next worker, round robin.
func (c *conn) dispatch(l *loop) {
	c.w = l.workers[l.rr%len(l.workers)]
	l.rr++
	c.st = stAtW
	if c.have == c.cl {
	}
	c.w.queue(l, item{b: c.req})
	c.pump(l)
}

// pump forwards buffered body bytes within the worker's credit.
func (c *conn) pump(l *loop) {
	if c.ended || c.st == stClose {
		return
	}
	w := c.w
	for c.sent < c.have {
		k := min(*flagFrame, c.have-c.sent)
		if w.flow && !*flagNoFlow {
			room := ipc.FlowWindow - (c.sent - c.cred)
			if room <= 0 {
				return
			}
			k = min(k, room)
		}
		var flags uint8
		if c.sent+k == c.cl {
			flags = ipc.FlagEnd
			c.ended = true
		}
		it := item{b: ipc.AppendHeader(make([]byte, 0, ipc.HeaderSize), ipc.TypeRequestBody, flags, c.id, k)}
		if l.mode != modeSplice {
			w.queue(l, it)
			w.queue(l, item{b: c.body[c.sent : c.sent+k]})
		} else {
			// The part that came with the head is in c.body, the rest in
			// the pipe.
			if c.sent < len(c.body) {
				u := min(k, len(c.body)-c.sent)
				it.b = append(it.b, c.body[c.sent:c.sent+u]...)
				w.queue(l, it)
				if k > u {
					w.queue(l, item{pipe: c.reqPipe[0], n: k - u, c: c})
					c.pipeItems++
				}
			} else {
				w.queue(l, it)
				w.queue(l, item{pipe: c.reqPipe[0], n: k, c: c})
				c.pipeItems++
			}
		}
		c.sent += k
	}
}

// credit takes the worker's credit for n body bytes.
func (c *conn) credit(l *loop, n int) {
	c.cred += n
	if c.st == stAtW {
		c.pump(l)
	}
}

// Answers.

// outLimit bounds the answer bytes held for a client before the worker
// stops getting credit: drover's buffer_output_size (2 MiB) less a window.
const outLimit = 2<<20 - ipc.FlowWindow

func (c *conn) held() int { return len(c.out) - c.outOff + c.outPiped }

// appendHead appends the HTTP head of the answer to dst; end says the
// answer is whole in its first frame (Content-Length), else it is chunked.
func (c *conn) appendHead(l *loop, dst []byte, v *respHead, end bool) []byte {
	b := append(dst, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(v.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(v.status)...)
	b = append(b, "\r\n"...)
	for i := 0; i+1 < len(v.headers); i += 2 {
		b = append(append(append(append(b, v.headers[i]...), ": "...), v.headers[i+1]...), "\r\n"...)
	}
	b = append(append(append(b, "Date: "...), l.httpDate()...), "\r\n"...)
	if end {
		b = strconv.AppendInt(append(b, "Content-Length: "...), int64(v.bodyLen), 10)
		b = append(b, "\r\n\r\n"...)
	} else {
		b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
		c.chunked = true
	}
	c.started = true
	return b
}

// chunkHead returns the chunk header of a body piece of n bytes.
func chunkHead(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 16)
	return append(dst, "\r\n"...)
}

// emit writes b to the client after what is already waiting; b is not kept.
func (c *conn) emit(l *loop, b ...[]byte) {
	if c.st == stClose {
		return
	}
	total := 0
	for _, p := range b {
		total += len(p)
	}
	if total == 0 {
		return
	}
	if c.outPiped > 0 {
		// Behind the pipe: into the pipe, so that the order holds.
		for _, p := range b {
			for len(p) > 0 {
				n, err := unix.Write(c.outPipe[1], p)
				if n <= 0 {
					if err == unix.EINTR {
						continue
					}
					// Pipe full: this tool gives up on such a client.
					fmt.Fprintln(os.Stderr, "relay: answer pipe full, closing the connection:", err)
					c.close(l)
					return
				}
				p = p[n:]
				c.outPiped += n
			}
		}
		return
	}
	if len(c.out) > c.outOff {
		for _, p := range b {
			c.out = append(c.out, p...)
		}
		return
	}
	n, err := unix.Writev(c.fd, b)
	l.st.writesC++
	if n < 0 {
		n = 0
		if err != unix.EAGAIN && err != unix.EINTR {
			c.close(l)
			return
		}
	}
	l.st.copiedOut += int64(n)
	if n == total {
		return
	}
	c.out, c.outOff = c.out[:0], 0
	for _, p := range b {
		k := min(n, len(p))
		n -= k
		c.out = append(c.out, p[k:]...)
	}
}

// flushOut writes what waits for the client: out, then the pipe.
func (c *conn) flushOut(l *loop) {
	for len(c.out) > c.outOff {
		n, err := unix.Write(c.fd, c.out[c.outOff:])
		l.st.writesC++
		if n <= 0 {
			if err == unix.EAGAIN {
				return
			}
			if err != unix.EINTR {
				c.close(l)
				return
			}
			continue
		}
		c.outOff += n
		l.st.copiedOut += int64(n)
	}
	c.out, c.outOff = c.out[:0], 0
	for c.outPiped > 0 {
		n, err := unix.Splice(c.outPipe[0], nil, c.fd, nil, c.outPiped, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		l.st.writesC++
		if n <= 0 {
			if err == unix.EAGAIN {
				return
			}
			if err != unix.EINTR {
				c.close(l)
				return
			}
			continue
		}
		c.outPiped -= int(n)
		l.st.splicedOut += n
	}
	if c.w != nil && c.respIn > c.respCred {
		c.w.credit(l, c.id, c.respIn-c.respCred)
		c.respCred = c.respIn
	}
	// A worker stalled on this connection's full pipe reads on.
	for _, w := range l.workers {
		if w.stalled == c {
			w.stall(l, nil)
			w.event(l, unix.EPOLLIN)
		}
	}
}

// answered ends the exchange: the connection reads its next request.
func (c *conn) answered(l *loop) {
	c.w = nil
	if c.st == stClose {
		c.forget(l)
		return
	}
	c.st = stHead
	c.body = c.body[:0]
	if len(c.in) > 0 || c.readable {
		c.readable = false
		c.readHead(l)
	}
}

// worker is the master's side of one worker's socket pair.
type worker struct {
	id    int
	fd    int
	flow  bool
	in    []byte // in[beg:] is read and not yet handled
	beg   int
	dirty bool
	outq  []item // frames waiting for the socket pair, in order
	armed bool   // EPOLLOUT

	// splice: the frame body being spliced to a client.
	spl      *conn
	splLeft  int
	splEnd   bool // the frame had FlagEnd
	small    bool // the last frame was spliced: read only a header next
	stalled  *conn
	head     respHead
	resp     []byte // shm: the worker's answer memfd, mapped read-only
	pendConn *conn  // its pend waits for the next frame, until the end of the event
}

// item is a piece of the socket pair's output: bytes, or n bytes to
// splice from a pipe (and then the pipe's owner c has that many fewer).
type item struct {
	b    []byte
	pipe int
	n    int
	c    *conn
}

func (w *worker) queue(l *loop, it item) {
	w.outq = append(w.outq, it)
	if !w.dirty && !w.armed {
		w.dirty = true
		l.dirty = append(l.dirty, w)
	}
}

// credit sends TypeWindow credit for n answer body bytes of connection id.
func (w *worker) credit(l *loop, id uint64, n int) {
	if !w.flow || n <= 0 {
		return
	}
	b := ipc.AppendHeader(make([]byte, 0, ipc.HeaderSize+4), ipc.TypeWindow, 0, id, 4)
	w.queue(l, item{b: ipc.AppendWindow(b, uint32(n))})
}

// flush writes the queue: runs of bytes with one writev, pipes by splice.
func (w *worker) flush(l *loop) {
	var iov [][]byte
	for len(w.outq) > 0 {
		if w.outq[0].n > 0 {
			it := &w.outq[0]
			n, err := unix.Splice(it.pipe, nil, w.fd, nil, it.n, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
			if n <= 0 {
				if err == unix.EINTR {
					continue
				}
				if err == unix.EAGAIN {
					w.arm(l, true)
					return
				}
				fmt.Fprintln(os.Stderr, "relay: splice to worker:", err)
				os.Exit(1)
			}
			it.n -= int(n)
			it.c.reqPiped -= int(n)
			if it.n == 0 {
				c := it.c
				w.outq = w.outq[1:]
				c.pipeItems--
				if c.st == stClose {
					c.closePipes()
				} else if c.st == stAtW && c.have < c.cl {
					c.readBody(l) // the pipe has room again
				}
			}
			continue
		}
		iov = iov[:0]
		total := 0
		for _, it := range w.outq {
			if it.n > 0 || len(iov) == 64 {
				break
			}
			iov = append(iov, it.b)
			total += len(it.b)
		}
		n, err := unix.Writev(w.fd, iov)
		if n <= 0 {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				w.arm(l, true)
				return
			}
			fmt.Fprintln(os.Stderr, "relay: write to worker:", err)
			os.Exit(1)
		}
		for n > 0 {
			k := min(n, len(w.outq[0].b))
			w.outq[0].b = w.outq[0].b[k:]
			n -= k
			if len(w.outq[0].b) == 0 {
				w.outq = w.outq[1:]
			}
		}
		for len(w.outq) > 0 && w.outq[0].n == 0 && len(w.outq[0].b) == 0 {
			w.outq = w.outq[1:]
		}
		if len(w.outq) > 0 && *flagOutCopy {
			// As drover's master (worker.writeBodies): what the socket
			// pair did not take is copied into the worker's output.
			var b []byte
			for _, it := range w.outq {
				b = append(b, it.b...)
			}
			w.outq = append(w.outq[:0], item{b: b})
			l.st.outCopied += int64(len(b))
		}
	}
	w.outq = w.outq[:0]
	w.arm(l, false)
}

func (w *worker) arm(l *loop, on bool) {
	if w.armed != on {
		w.armed = on
		w.setEvents(l)
	}
}

// stall stops reading the socket pair while a frame waits for c's pipe to
// drain (nil: read on).
func (w *worker) stall(l *loop, c *conn) {
	if (w.stalled == nil) != (c == nil) {
		w.stalled = c
		w.setEvents(l)
	}
}

func (w *worker) setEvents(l *loop) {
	ev := uint32(unix.EPOLLRDHUP)
	if w.stalled == nil {
		ev |= unix.EPOLLIN
	}
	if w.armed {
		ev |= unix.EPOLLOUT
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, w.fd, &unix.EpollEvent{Events: ev, Fd: int32(w.fd)})
}

func (w *worker) event(l *loop, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		w.flush(l)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) == 0 || w.stalled != nil {
		return
	}
	// Copy modes read once (level-triggered: the loop comes back for
	// more); splice reads small, so it goes on for a few reads.
	reads := 1
	if l.mode == modeSplice {
		reads = 16
	}
	for range reads {
		if w.spl != nil && !w.splice(l) {
			break
		}
		if !w.readOnce(l) {
			break
		}
	}
	if c := w.pendConn; c != nil {
		w.pendConn = nil
		if len(c.pend) > 0 {
			c.emit(l, c.pend)
			c.pend = c.pend[:0]
		}
	}
}

// readOnce reads the socket pair once and handles the whole frames; false
// when there was nothing to read.
func (w *worker) readOnce(l *loop) bool {
	// in[beg:] is unhandled; a partial frame stays in place while the
	// rest of it fits behind it (as the master's roomIn), so that a large
	// frame is not moved after each read.
	pending := len(w.in) - w.beg
	want := 16 << 10 // the least room for a read (copy modes)
	if pending >= ipc.HeaderSize {
		if h, err := ipc.ParseHeader(w.in[w.beg:], ipc.DefaultMaxPayload); err == nil {
			want = max(want, min(int(h.Length)+ipc.HeaderSize-pending, 256<<10))
		}
	}
	if l.mode == modeSplice {
		// Small reads: what a read brings along of a large frame's body
		// is copied; the rest is spliced.
		want = *flagWRead
		if w.small {
			want = ipc.HeaderSize
		}
		if pending >= ipc.HeaderSize {
			if h, err := ipc.ParseHeader(w.in[w.beg:], ipc.DefaultMaxPayload); err == nil {
				want = min(int(h.Length)+ipc.HeaderSize-pending, *flagWRead)
			}
		} else if pending > 0 {
			want = ipc.HeaderSize - pending
		}
	}
	if cap(w.in)-len(w.in) < want {
		if w.beg > 0 && cap(w.in)-pending >= want {
			w.in = w.in[:copy(w.in, w.in[w.beg:])]
		} else {
			nb := make([]byte, pending, max(2*cap(w.in), pending+want))
			copy(nb, w.in[w.beg:])
			w.in = nb
		}
		w.beg = 0
	}
	room := w.in[len(w.in):cap(w.in)]
	if l.mode == modeSplice {
		room = room[:want]
	}
	n, err := unix.Read(w.fd, room)
	l.st.readsW++
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return false
		}
		fmt.Fprintln(os.Stderr, "relay: worker", w.id, "went away:", err)
		os.Exit(1)
	}
	w.in = w.in[:len(w.in)+n]
	w.small = false
	for {
		h, payload, k, err := ipc.Next(w.in[w.beg:], ipc.DefaultMaxPayload)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay: worker", w.id, "malformed frame:", err)
			os.Exit(1)
		}
		if k == 0 {
			// A partial frame: splice the rest of a large body.
			if l.mode == modeSplice && len(w.in)-w.beg >= ipc.HeaderSize {
				if w.startSplice(l, h, w.in[w.beg+ipc.HeaderSize:]) {
					w.beg = len(w.in)
				}
			}
			break
		}
		w.beg += k
		w.frame(l, h, payload)
	}
	if w.beg == len(w.in) {
		w.in, w.beg = w.in[:0], 0
	}
	return true
}

// frame handles one whole frame.
func (w *worker) frame(l *loop, h ipc.Header, payload []byte) {
	c := l.conns[h.ID]
	switch h.Type {
	case ipc.TypeWindow:
		if n, err := ipc.ParseWindow(payload); err == nil && c != nil {
			c.credit(l, int(n))
		}
		return
	case ipc.TypeResponse, ipc.TypeResponseBody:
	default:
		return
	}
	if c == nil || c.w != w {
		return
	}
	end := h.Flags&ipc.FlagEnd != 0
	body := payload
	pre := append(c.pre[:0], c.pend...)
	c.pend = c.pend[:0]
	if h.Flags&FlagShm != 0 {
		// The body is in the worker's answer memfd, at c's slot: written
		// from there (what the client does not take now is copied to
		// c.out, so the slot is free once the frame is handled).
		if h.Type != ipc.TypeResponse || !end || len(payload) < 4 || !w.head.parse(payload[4:]) {
			fmt.Fprintln(os.Stderr, "relay: bad shm response frame")
			os.Exit(1)
		}
		n := int(binary.BigEndian.Uint32(payload))
		if n > *flagSlot {
			fmt.Fprintln(os.Stderr, "relay: shm response longer than a slot")
			os.Exit(1)
		}
		w.head.bodyLen = n
		pre = c.appendHead(l, pre, &w.head, true)
		c.pre = pre
		c.emit(l, pre, w.resp[c.slot**flagSlot:c.slot**flagSlot+n])
		c.answered(l)
		return
	}
	if h.Type == ipc.TypeResponse {
		if !w.head.parse(payload) || w.head.bodyOff+w.head.bodyLen != len(payload) {
			fmt.Fprintln(os.Stderr, "relay: undecodable response frame")
			os.Exit(1)
		}
		pre = c.appendHead(l, pre, &w.head, end)
		body = payload[w.head.bodyOff:]
	}
	post := c.post[:0]
	if c.chunked && len(body) > 0 {
		pre = chunkHead(pre, len(body))
		post = append(post, "\r\n"...)
	}
	if c.chunked && end {
		post = append(post, "0\r\n\r\n"...)
	}
	c.pre, c.post = pre, post
	c.emit(l, pre, body, post)
	c.arrived(l, w, len(body), end)
	if end {
		c.answered(l)
	}
}

// arrived counts n answer body bytes from the worker and credits them,
// half a window at a time, while what the client has not taken stays
// under outLimit (flushOut credits the rest as it drains), as drover's
// master does. The last frame needs no credit.
func (c *conn) arrived(l *loop, w *worker, n int, end bool) {
	c.respIn += n
	if end || c.held() >= outLimit {
		return
	}
	if c.respIn-c.respCred >= ipc.FlowWindow/2 {
		w.credit(l, c.id, c.respIn-c.respCred)
		c.respCred = c.respIn
	}
}

// startSplice handles a partial frame whose body's rest is large: have is
// what was read of its payload. It reports false when the frame must
// rather be read whole.
func (w *worker) startSplice(l *loop, h ipc.Header, have []byte) bool {
	c := l.conns[h.ID]
	if c == nil || c.w != w || h.Type != ipc.TypeResponse && h.Type != ipc.TypeResponseBody {
		return false
	}
	if int(h.Length)-len(have) < *flagSplMin {
		return false
	}
	end := h.Flags&ipc.FlagEnd != 0
	body := have
	n := int(h.Length)
	pre := append(c.pre[:0], c.pend...)
	if h.Type == ipc.TypeResponse {
		if !w.head.parse(have) {
			return false // the head is not all here yet
		}
		if w.head.bodyOff+w.head.bodyLen != int(h.Length) {
			fmt.Fprintln(os.Stderr, "relay: response frame whose body is not its last field")
			os.Exit(1)
		}
		pre = c.appendHead(l, pre, &w.head, end)
		body, n = have[w.head.bodyOff:], w.head.bodyLen
	}
	c.pend = c.pend[:0]
	if c.chunked {
		pre = chunkHead(pre, n)
	}
	c.pre = pre
	c.emit(l, pre, body)
	c.arrived(l, w, n, end)
	w.spl, w.splLeft, w.splEnd = c, n-len(body), end
	return true
}

// splice moves the rest of the current frame's body from the socket pair
// to its client's pipe, and on to the client. It reports whether the
// frame is done.
func (w *worker) splice(l *loop) bool {
	c := w.spl
	for w.splLeft > 0 {
		if c.st == stClose {
			// Nobody to send to: drop the rest.
			n, err := unix.Read(w.fd, l.bounce[:min(w.splLeft, len(l.bounce))])
			if n <= 0 {
				if err == unix.EAGAIN || err == unix.EINTR {
					return false
				}
				fmt.Fprintln(os.Stderr, "relay: worker", w.id, "went away:", err)
				os.Exit(1)
			}
			w.splLeft -= n
			continue
		}
		n, err := unix.Splice(w.fd, nil, c.outPipe[1], nil, w.splLeft, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		l.st.splicesW++
		if n <= 0 {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				if socketReadable(w.fd) {
					// The client's pipe is full: wait for the client.
					l.st.pipeFullOut++
					w.stall(l, c)
					c.flushOut(l)
				}
				return false
			}
			fmt.Fprintln(os.Stderr, "relay: splice from worker:", err)
			os.Exit(1)
		}
		w.splLeft -= int(n)
		c.outPiped += int(n)
		if len(c.out) == c.outOff {
			c.flushOut(l)
		}
	}
	w.spl = nil
	w.small = true
	// The chunk's CRLF goes out with what follows (the next chunk's
	// header, or the last chunk), or at the end of the event.
	if c.chunked {
		c.pend = append(c.pend, "\r\n"...)
	}
	if w.splEnd {
		if c.chunked {
			c.pend = append(c.pend, "0\r\n\r\n"...)
		}
		c.emit(l, c.pend)
		c.pend = c.pend[:0]
		c.answered(l)
	} else {
		w.pendConn = c
	}
	return true
}

// respHead is a TypeResponse payload's head: everything but the body's
// bytes, which are its last field.
type respHead struct {
	status  int
	headers [][]byte
	bodyOff int
	bodyLen int
}

// parse decodes the head from the start of a TypeResponse payload (the
// body's bytes need not be there); false when the head is incomplete.
func (v *respHead) parse(p []byte) bool {
	d := ipc.NewMsgReader(p)
	v.status, v.headers, v.bodyOff, v.bodyLen = 0, v.headers[:0], len(p), 0
	n, err := d.MapLen()
	if err != nil {
		return false
	}
	for range n {
		key, _, err := d.Bytes()
		if err != nil {
			return false
		}
		switch string(key) {
		case "status":
			s, err := d.Int()
			if err != nil {
				return false
			}
			v.status = int(s)
		case "headers":
			k, err := d.ArrayLen()
			if err != nil {
				return false
			}
			for range k {
				b, _, err := d.Bytes()
				if err != nil {
					return false
				}
				v.headers = append(v.headers, b)
			}
		case "body":
			off := d.Offset()
			if off >= len(p) {
				return false
			}
			var hl, bl int
			switch p[off] {
			case 0xc4:
				hl = 2
				if off+hl > len(p) {
					return false
				}
				bl = int(p[off+1])
			case 0xc5:
				hl = 3
				if off+hl > len(p) {
					return false
				}
				bl = int(p[off+1])<<8 | int(p[off+2])
			case 0xc6:
				hl = 5
				if off+hl > len(p) {
					return false
				}
				bl = int(p[off+1])<<24 | int(p[off+2])<<16 | int(p[off+3])<<8 | int(p[off+4])
			default:
				return false
			}
			v.bodyOff, v.bodyLen = off+hl, bl
			return true // the body is the last field (ipc.AppendResponseHead)
		default:
			if err := d.Skip(); err != nil {
				return false
			}
		}
	}
	v.bodyOff = d.Offset()
	return true
}
