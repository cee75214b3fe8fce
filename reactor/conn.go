package reactor

import (
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a client connection owned by one loop. Its methods must be called
// on that loop's goroutine; other goroutines reach it with Loop.Post and the
// connection id.
type Conn struct {
	l     *Loop
	id    uint64
	fd    int
	ln    *Listener
	split Splitter
	sa    unix.Sockaddr

	in     []byte // unconsumed input when a packet spans reads
	want   int    // size of the pending packet, when the splitter knows it
	out    []byte // output not yet written
	outOff int    // written prefix of out

	lastRead int64 // UnixNano of the iteration that last read or wrote data (heartbeat_idle_time)
	opened   int64 // UnixNano of the iteration that accepted it
	// Bytes read from and written to the socket (the access log).
	recvd, sent uint64

	closed     bool
	dirty      bool // queued for the end-of-iteration flush
	writeArmed bool // EPOLLOUT registered
	paused     bool // EPOLLIN removed by PauseRead
	eof        bool // the peer shut down its side
	closeAfter bool // close once out is written
	linger     bool // … lingering: CloseLingering asked for it
	lingering  bool // output done and shut down: reading and dropping input until lingerEnd
	lingerEnd  int64
	lingerLeft int // bytes still dropped before the connection is closed

	written func(*Conn) // NotifyWritten's hook
	reader  Reader      // ReadInto's hook

	// Ctx is the Handler's per-connection state.
	Ctx any
}

func (l *Loop) open(fd int, sa unix.Sockaddr, ln *Listener) {
	l.seq++
	c := &Conn{l: l, id: l.seq<<8 | uint64(l.idx), fd: fd, ln: ln, sa: sa, lastRead: l.now.UnixNano(), opened: l.now.UnixNano()}
	if ln.Splitter != nil {
		c.split = ln.Splitter()
	}
	if _, ok := sa.(*unix.SockaddrInet4); ok {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	} else if _, ok := sa.(*unix.SockaddrInet6); ok {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: evIn, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		l.warn(map[string]any{"listener": ln.Name, "error": err.Error()}, "connection dropped: epoll_ctl failed")
		return
	}
	l.setEntry(fd, c)
	l.conns[c.id] = c
	l.r.conns.Add(1)
	l.h.OnOpen(c)
}

// ID returns the connection's id, unique within the master's lifetime. Its
// low byte is the owning loop's index.
func (c *Conn) ID() uint64 { return c.id }

// Loop returns the owning loop.
func (c *Conn) Loop() *Loop { return c.l }

// Listener returns the listener the connection arrived on.
func (c *Conn) Listener() *Listener { return c.ln }

// Closed reports whether Close has run.
func (c *Conn) Closed() bool { return c.closed }

// Opened is when the connection was accepted (its loop's time then).
func (c *Conn) Opened() time.Time { return time.Unix(0, c.opened) }

// BytesIn and BytesOut are the bytes read from and written to the socket
// so far (not what waits in the output buffer).
func (c *Conn) BytesIn() uint64  { return c.recvd }
func (c *Conn) BytesOut() uint64 { return c.sent }

// RemoteAddr formats the peer address: "ip:port" for TCP, "" for an
// unnamed Unix socket peer.
func (c *Conn) RemoteAddr() string {
	switch a := c.sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrUnix:
		return a.Name
	}
	return ""
}

// RemoteIP returns the peer's IP bytes (nil for Unix sockets).
func (c *Conn) RemoteIP() []byte {
	switch a := c.sa.(type) {
	case *unix.SockaddrInet4:
		return a.Addr[:]
	case *unix.SockaddrInet6:
		return a.Addr[:]
	}
	return nil
}

// Buffered returns the number of output bytes not yet written.
func (c *Conn) Buffered() int { return len(c.out) - c.outOff }

// Unsent returns the bytes written to the socket that the kernel still
// holds because the peer has not acknowledged them (SIOCOUTQ): an answer
// a client does not read can sit there, out of Buffered's sight. 0 on
// error.
func (c *Conn) Unsent() int {
	if c.closed {
		return 0
	}
	n, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ)
	if err != nil {
		return 0
	}
	return n
}

// Write appends b to the output; it is written at the end of the iteration
// (or when the socket drains). Over the output limit the connection closes
// with ErrOutputFull.
func (c *Conn) Write(b []byte) {
	if c.closed || c.closeAfter {
		return
	}
	if lim := c.l.r.opts.OutputLimit; lim > 0 && c.Buffered()+len(b) > lim {
		c.Close(ErrOutputFull)
		return
	}
	if c.outOff > 0 && c.outOff == len(c.out) {
		c.out, c.outOff = c.out[:0], 0
	}
	c.out = append(c.out, b...)
	c.markDirty()
}

// WriteDirect writes head, body and tail (any may be empty) in that
// order, as three Writes would; but when none of c's output is waiting, it
// writes them to the socket at once with one writev and keeps only what
// the socket did not take: a large answer then leaves from the caller's
// buffer instead of being copied into c's output first. NotifyWritten's
// fn is not called for it: the caller accounts for what it wrote. An
// error leaves the bytes buffered; the next flush meets it and closes c.
func (c *Conn) WriteDirect(head, body, tail []byte) {
	if c.closed || c.closeAfter {
		return
	}
	total := len(head) + len(body) + len(tail)
	if c.Buffered() > 0 || c.writeArmed || total == 0 {
		c.writeParts(head, body, tail, total)
		return
	}
	iov := [3][]byte{head, body, tail}
	var n int
	for {
		var err error
		n, err = unix.Writev(c.fd, iov[:])
		if err != unix.EINTR {
			break
		}
	}
	if n <= 0 {
		c.writeParts(head, body, tail, total)
		return
	}
	c.sent += uint64(n)
	c.lastRead = c.l.now.UnixNano()
	if n == total {
		return
	}
	for i := range iov {
		k := min(n, len(iov[i]))
		iov[i], n = iov[i][k:], n-k
	}
	// The socket is full: the rest waits for it to drain (not for the end
	// of the iteration: writeArmed keeps it off the dirty list).
	c.writeArmed = true
	c.updateEvents()
	c.writeParts(iov[0], iov[1], iov[2], len(iov[0])+len(iov[1])+len(iov[2]))
}

// writeParts appends head, body and tail (total bytes) to the output, as
// Write does.
func (c *Conn) writeParts(head, body, tail []byte, total int) {
	if lim := c.l.r.opts.OutputLimit; lim > 0 && c.Buffered()+total > lim {
		c.Close(ErrOutputFull)
		return
	}
	if c.outOff > 0 && c.outOff == len(c.out) {
		c.out, c.outOff = c.out[:0], 0
	}
	c.out = append(append(append(c.out, head...), body...), tail...)
	c.markDirty()
}

func (c *Conn) markDirty() {
	if !c.dirty && !c.writeArmed {
		c.dirty = true
		c.l.dirty = append(c.l.dirty, c)
	}
}

// CloseWhenFlushed closes the connection once its output is written;
// nothing more is read or written meanwhile.
func (c *Conn) CloseWhenFlushed() {
	if c.closed || c.closeAfter {
		return
	}
	c.closeAfter = true
	c.PauseRead()
	if c.Buffered() == 0 {
		c.flushed()
		return
	}
	c.markDirty()
}

// CloseLingering is CloseWhenFlushed for a connection whose peer may still
// be sending (the server refused a request before reading all of it):
// once the output is written, the sending side is shut down (the peer
// reads a clean end of stream after the answer) and what the peer still
// sends is read and dropped until it closes, for at most
// Options.LingerTime in all, Options.LingerTimeout between reads and
// Options.LingerBytes, then the socket is closed. Closing at once would
// make the kernel answer the unread input with a reset, and the peer may
// lose the answer with it: nginx's lingering_close, net/http's
// closeWriteAndWait. A lingering connection still counts against MaxConn
// (it holds a descriptor); its OnClose runs when it ends, with nil or
// ErrLingerLimit.
func (c *Conn) CloseLingering() {
	if c.closed || c.closeAfter {
		return
	}
	c.linger = !c.eof && c.l.r.opts.LingerTime > 0
	c.CloseWhenFlushed()
}

// Lingering reports whether c, its output written, is reading and
// dropping its peer's last input before it closes (CloseLingering).
func (c *Conn) Lingering() bool { return c.lingering }

// flushed ends a connection closing once its output is written: it closes,
// or starts lingering.
func (c *Conn) flushed() {
	if !c.linger || c.eof {
		c.Close(nil)
		return
	}
	l := c.l
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		c.Close(nil) // the peer is gone already
		return
	}
	c.lingering = true
	c.lingerEnd = l.now.Add(l.r.opts.LingerTime).UnixNano()
	c.lingerLeft = l.r.opts.LingerBytes
	c.lastRead = l.now.UnixNano()
	c.in, c.out, c.outOff = nil, nil, 0
	c.paused = false
	c.updateEvents()
	l.lingering = append(l.lingering, c)
	// Not read here: this may run inside read, whose data aliases the
	// loop's buffer. epoll reports what is waiting on the next wait.
}

// drop reads and discards what a lingering connection's peer sent; it
// closes on the peer's end of stream, an error or past LingerBytes.
func (c *Conn) drop() {
	l := c.l
	for i := 0; i < 4; i++ { // a bounded batch; epoll reports the rest
		n, err := unix.Read(c.fd, l.buf)
		switch {
		case n > 0:
			c.lastRead = l.now.UnixNano()
			if c.lingerLeft -= n; c.lingerLeft <= 0 {
				c.Close(ErrLingerLimit)
				return
			}
			continue
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		}
		c.Close(nil) // end of stream (or a reset): done
		return
	}
}

// PauseRead stops reading from the connection (backpressure).
func (c *Conn) PauseRead() {
	if c.closed || c.paused || c.lingering {
		return
	}
	c.paused = true
	c.updateEvents()
}

// ResumeRead undoes PauseRead.
func (c *Conn) ResumeRead() {
	if c.closed || !c.paused || c.closeAfter {
		return
	}
	c.paused = false
	c.updateEvents()
}

func (c *Conn) updateEvents() {
	var ev uint32
	if !c.paused && !c.eof {
		ev |= evIn
	}
	if c.writeArmed {
		ev |= unix.EPOLLOUT
	}
	unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)})
}

// Close closes the socket at once, dropping unwritten output, and runs
// OnClose with err. Closing twice does nothing.
func (c *Conn) Close(err error) {
	if c.closed {
		return
	}
	c.closed, c.lingering = true, false
	l := c.l
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	l.byFD[c.fd] = nil
	delete(l.conns, c.id)
	l.r.conns.Add(-1)
	c.in, c.out = nil, nil
	l.h.OnClose(c, err)
}

// Abort closes the connection with a reset (SO_LINGER 0) instead of a
// FIN: the kernel drops what it still holds for the peer instead of going
// on delivering it to a client that does not read, as nginx's
// reset_timedout_connection does. Then it is Close.
func (c *Conn) Abort(err error) {
	if c.closed {
		return
	}
	unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	c.Close(err)
}

func (c *Conn) event(l *Loop, ev uint32) {
	if c.lingering {
		c.drop()
		return
	}
	if ev&unix.EPOLLOUT != 0 {
		c.flush()
		if c.closed {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.paused && !c.eof {
		c.read()
	}
}

func (c *Conn) read() {
	l := c.l
	var data []byte
	if len(c.in) == 0 && c.reader != nil {
		if dst := c.reader.ReadBuffer(); len(dst) > 0 {
			n, err := unix.Read(c.fd, dst)
			if n <= 0 {
				c.readFailed(err)
				return
			}
			c.lastRead = l.now.UnixNano()
			c.reader.ReadDone(n)
			return
		}
	}
	if len(c.in) == 0 {
		n, err := unix.Read(c.fd, l.buf)
		if n <= 0 {
			c.readFailed(err)
			return
		}
		c.recvd += uint64(n)
		data = l.buf[:n]
	} else {
		c.growIn()
		n, err := unix.Read(c.fd, c.in[len(c.in):cap(c.in)])
		if n <= 0 {
			c.readFailed(err)
			return
		}
		c.recvd += uint64(n)
		c.in = c.in[:len(c.in)+n]
		data = c.in
	}
	c.lastRead = l.now.UnixNano()
	if c.split == nil {
		c.stream(data)
		return
	}
	off := 0
	for !c.closed {
		n, want, err := c.split.Split(data[off:])
		if err != nil {
			c.Close(err)
			return
		}
		if n == 0 {
			c.want = want
			break
		}
		l.h.OnPacket(c, data[off:off+n])
		off += n
	}
	if c.closed || c.lingering {
		c.in = nil // lingering: what is left is dropped
		return
	}
	rest := data[off:]
	switch {
	case len(rest) == 0:
		if cap(c.in) > readBufSize {
			c.in = nil // do not pin a large packet's buffer on an idle connection
		} else {
			c.in = c.in[:0]
		}
	case len(c.in) == 0: // data is the loop's buffer: keep the partial packet
		c.in = append(make([]byte, 0, c.inCap(len(rest), 0)), rest...)
	default:
		c.in = c.in[:copy(c.in, rest)]
	}
}

// growIn makes room in c.in for the next read.
func (c *Conn) growIn() {
	if cap(c.in)-len(c.in) >= readBufSize/4 || c.want > len(c.in) && cap(c.in) >= c.want {
		return
	}
	nb := make([]byte, len(c.in), c.inCap(len(c.in), cap(c.in)))
	copy(nb, c.in)
	c.in = nb
}

// inCap is the capacity of a receive buffer holding n bytes of a partial
// packet (its previous capacity was old): another chunk, doubling, and at
// most the pending packet's declared size. The declared size is reserved
// only once a quarter of it has arrived: a length header alone must not
// make the master reserve package_max_length (1,000 clients that each sent
// a header declaring 2 MiB reserved 2 GiB). The buffer is thus at most
// about four times the bytes received, with a few copies per packet.
func (c *Conn) inCap(n, old int) int {
	size := max(n+readBufSize/4, 2*old)
	if c.want > n {
		if 4*n >= c.want {
			return c.want
		}
		size = min(size, c.want)
	}
	return size
}

func (c *Conn) readFailed(err error) {
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil {
		c.Close(err)
		return
	}
	c.eof = true
	c.in = nil
	c.updateEvents()
	c.l.h.OnReadEOF(c)
}

// Reader takes a connection's reads into memory of its own (Conn.ReadInto).
type Reader interface {
	// ReadBuffer is where the connection's next read goes while none of
	// its input waits unconsumed: nil or empty, the loop's buffer (and the
	// bytes go to the handler as usual). Runs on the connection's loop.
	ReadBuffer() []byte
	// ReadDone: the read put n > 0 bytes at the start of the slice
	// ReadBuffer returned. An end of stream or an error is handled as for
	// any read (OnReadEOF, Close), and ReadDone is not called.
	ReadDone(n int)
}

// ReadInto makes c ask r where each read goes (nil: the loop's buffer
// always): a large request body is then read straight into the buffer it
// is kept in, in reads as large as its rest, instead of 64 KiB at a time
// into the loop's buffer and copied from there.
func (c *Conn) ReadInto(r Reader) { c.reader = r }

// NotifyWritten makes each flush of c that writes output call fn, on c's
// loop, once it has written what the socket took; nil stops the calls. The
// master grants flow-control credit this way as a response leaves its
// buffer. fn may write to c and to other descriptors.
func (c *Conn) NotifyWritten(fn func(*Conn)) { c.written = fn }

func (c *Conn) flush() {
	start := c.outOff
	for c.outOff < len(c.out) {
		n, err := unix.Write(c.fd, c.out[c.outOff:])
		if n > 0 {
			c.outOff += n
			c.sent += uint64(n)
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if !c.writeArmed {
				c.writeArmed = true
				c.updateEvents()
			}
			if c.written != nil && c.outOff > start {
				c.written(c)
			}
			return
		}
		c.Close(err)
		return
	}
	wrote := c.outOff > start
	if wrote {
		// A connection the server is still writing to (a long answer, a
		// stream of events) is not idle.
		c.lastRead = c.l.now.UnixNano()
	}
	if cap(c.out) > readBufSize {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	c.outOff = 0
	if c.writeArmed {
		c.writeArmed = false
		c.updateEvents()
	}
	if c.closeAfter {
		c.flushed()
		return
	}
	if c.written != nil && wrote {
		c.written(c)
	}
}

// stream hands data (the loop's buffer or c.in) to the StreamHandler and
// keeps what it did not consume in c.in.
func (c *Conn) stream(data []byte) {
	n := c.l.sh.OnStream(c, data)
	if c.closed || c.lingering {
		c.in = nil // lingering: what is left is dropped
		return
	}
	rest := data[n:]
	switch {
	case len(rest) == 0:
		if cap(c.in) > readBufSize {
			c.in = nil
		} else {
			c.in = c.in[:0]
		}
	case len(c.in) == 0: // data is the loop's buffer
		c.in = append(make([]byte, 0, len(rest)+readBufSize/4), rest...)
	default:
		c.in = c.in[:copy(c.in, rest)]
	}
}

// Buffered input: Pending returns the number of received bytes the
// StreamHandler has not consumed yet.
func (c *Conn) Pending() int { return len(c.in) }

// Kick hands the unconsumed input to the StreamHandler again, for when it
// could not take it before (a pipelined request waiting for the previous
// answer). It does nothing when there is none.
func (c *Conn) Kick() {
	if c.closed || len(c.in) == 0 || c.split != nil {
		return
	}
	c.stream(c.in)
}
