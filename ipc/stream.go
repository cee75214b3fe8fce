package ipc

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reader reads frames from a blocking stream (the worker side of a socket
// pair). It is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	max int
	buf []byte
	beg int // start of unconsumed bytes in buf
	end int // end of valid bytes in buf

	lastYield time.Time // see yieldEvery

	alloc func(Header) []byte // SetAlloc's function, or nil
	owned bool                // the last payload is in a buffer from alloc
	small bool                // the last payload was: read little next (directRead)
}

// DirectPayload is the least payload size that ReadFrame reads into a
// buffer from SetAlloc's function rather than into its own buffer.
const DirectPayload = 16 << 10

// directRead bounds the read that follows a frame read into a buffer of
// SetAlloc's function. Such frames tend to come one after another (a long
// body in pieces), and what a read brings along of the next one's payload
// must be copied into its buffer: the next header is read with little
// beside it, so that the next payload goes into its buffer by itself.
const directRead = 512

// yieldEvery is how often ReadFrame yields to the Go scheduler before a read
// that may block. A worker's reading goroutine runs for ever; one that
// never yields is seen by the runtime's monitor (sysmon) as running one
// time slice for ever: every 10 ms it takes the P of the blocked read away,
// and each time it resets its own polling to every 20 µs. Under the hello
// benchmark at 256 connections that was about 1,100 extra sleeps and
// wake-ups a second per worker and 12 % of the worker's CPU time; with the
// yield the workers served about 7 % more requests.
const yieldEvery = 5 * time.Millisecond

// NewReader returns a Reader that refuses payloads over maxPayload bytes.
func NewReader(r io.Reader, maxPayload int) *Reader {
	return &Reader{r: r, max: maxPayload, buf: make([]byte, 64<<10)}
}

// SetAlloc makes ReadFrame read the payload of a large frame into a
// buffer of the caller's instead of its own: for a frame of at least
// DirectPayload bytes whose payload is not buffered whole yet, it calls
// fn with the header, and reads the payload into the buffer fn returns
// (whose capacity must be at least h.Length), after copying there what it
// already holds of it; fn returns nil to decline. ReadFrame then returns
// that buffer as the payload, and Owned reports true: the buffer is the
// caller's again, to keep beyond the next ReadFrame. A payload read so
// saves the copy a caller keeping it would make, and the move of a
// partial frame to the front of the Reader's buffer; fn is called on the
// goroutine calling ReadFrame.
func (r *Reader) SetAlloc(fn func(h Header) []byte) { r.alloc = fn }

// Owned reports whether the payload the last ReadFrame returned is in a
// buffer from SetAlloc's function (see SetAlloc) rather than the Reader's.
func (r *Reader) Owned() bool { return r.owned }

// ReadFrame returns the next frame. The payload aliases the Reader's buffer
// and is valid only until the next call (unless Owned, see SetAlloc). At a
// clean end of stream between frames it returns io.EOF; in the middle of a
// frame io.ErrUnexpectedEOF.
func (r *Reader) ReadFrame() (Header, []byte, error) {
	r.owned = false
	for {
		h, payload, n, err := Next(r.buf[r.beg:r.end], r.max)
		if err != nil {
			return h, nil, err
		}
		if n > 0 {
			r.beg += n
			r.small = false
			return h, payload, nil
		}
		need := HeaderSize
		if r.end-r.beg >= HeaderSize {
			need += int(h.Length)
			if r.alloc != nil && h.Length >= DirectPayload {
				if buf := r.alloc(h); buf != nil && cap(buf) >= int(h.Length) {
					return r.readInto(h, buf[:h.Length])
				}
			}
		}
		r.makeRoom(need)
		room := r.buf[r.end:]
		if r.small && len(room) > directRead {
			room = room[:directRead]
		}
		r.yield()
		m, err := r.r.Read(room)
		r.end += m
		if m > 0 {
			continue
		}
		return h, nil, r.readErr(err, r.end > r.beg)
	}
}

// readInto reads the payload of the frame whose header and first bytes
// are buffered into buf (of the payload's length).
func (r *Reader) readInto(h Header, buf []byte) (Header, []byte, error) {
	// The buffered bytes are all this frame's: it is not complete.
	k := copy(buf, r.buf[r.beg+HeaderSize:r.end])
	r.beg, r.end = 0, 0
	for k < len(buf) {
		r.yield()
		m, err := r.r.Read(buf[k:])
		k += m
		if m == 0 {
			return h, nil, r.readErr(err, true)
		}
	}
	r.owned, r.small = true, true
	return h, buf, nil
}

// readErr is the error of a read that returned no byte; partial says a
// frame was begun.
func (r *Reader) readErr(err error, partial bool) error {
	if err == io.EOF && partial {
		return io.ErrUnexpectedEOF
	}
	if err == nil {
		return io.ErrNoProgress
	}
	return err
}

// yield lets other goroutines run before a read that may block, every
// yieldEvery (see there).
func (r *Reader) yield() {
	if now := time.Now(); now.Sub(r.lastYield) >= yieldEvery {
		r.lastYield = now
		runtime.Gosched()
	}
}

// Ready reports whether a whole frame is buffered, so that the next
// ReadFrame returns without a system call.
func (r *Reader) Ready() bool {
	if r.end-r.beg < HeaderSize {
		return false
	}
	h, err := ParseHeader(r.buf[r.beg:r.end], r.max)
	return err != nil || r.end-r.beg >= HeaderSize+int(h.Length)
}

// makeRoom compacts or grows buf so that a frame of need bytes fits from beg.
func (r *Reader) makeRoom(need int) {
	if r.beg == r.end {
		r.beg, r.end = 0, 0
	}
	if len(r.buf)-r.beg >= need && r.end < len(r.buf) {
		return
	}
	if need <= len(r.buf) {
		r.end = copy(r.buf, r.buf[r.beg:r.end])
		r.beg = 0
		return
	}
	nb := make([]byte, need)
	r.end = copy(nb, r.buf[r.beg:r.end])
	r.beg = 0
	r.buf = nb
}

// ErrWriterClosed is returned by a Writer after Close or after a write failed.
var ErrWriterClosed = errors.New("ipc: writer closed")

// Writer writes frames to a blocking stream from many goroutines and
// batches them: while one goroutine is in the write system call, frames
// that others add accumulate and go out together in the next call. A caller
// never waits for another's write unless the backlog exceeds its bound,
// which keeps memory bounded when the peer stops reading.
type Writer struct {
	w       io.Writer
	mu      sync.Mutex
	room    sync.Cond // signalled when a flush finishes
	buf     []byte    // frames waiting for the next write
	spare   []byte
	writing bool
	held    bool // Hold(true): frames wait for Hold(false) or Flush
	err     error
	limit   int
	// The stream's descriptor for WriteFrameParts (rc nil: it has none;
	// rcKnown: looked up), and the header of its frame; guarded by mu
	// (hdr: by writing).
	rc      syscall.RawConn
	rcKnown bool
	hdr     []byte
}

// holdMax bounds what a held Writer keeps before it writes anyway.
const holdMax = 32 << 10

// NewWriter returns a Writer on w whose backlog blocks callers beyond limit bytes.
func NewWriter(w io.Writer, limit int) *Writer {
	wr := &Writer{w: w, limit: limit, buf: make([]byte, 0, 64<<10), spare: make([]byte, 0, 64<<10)}
	wr.room.L = &wr.mu
	return wr
}

// WriteFrame queues one frame and, unless another goroutine is already
// writing, writes the queue. It returns the error of the write it made or
// of an earlier failed write; frames queued while another goroutine writes
// report a failure on a later call.
func (w *Writer) WriteFrame(t Type, flags uint8, id uint64, payload []byte) error {
	return w.WriteFrameParts(t, flags, id, payload, nil)
}

// DirectFrame is the body size from which WriteFrameParts writes a frame
// from the caller's buffers with one writev instead of copying it into
// the queue, when no other goroutine is writing: below it, the copy costs
// less than what batching saves.
const DirectFrame = 16 << 10

// WriteFrameParts is WriteFrame with the payload in two parts, head and
// then body: a body of DirectFrame bytes or more goes from the caller's
// buffer to the stream with one writev (after the frames queued before
// it), without being copied into the queue, when the stream is a file or
// connection with a descriptor and no other goroutine is writing.
func (w *Writer) WriteFrameParts(t Type, flags uint8, id uint64, head, body []byte) error {
	w.mu.Lock()
	for w.err == nil && w.writing && len(w.buf) > w.limit {
		w.room.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if len(body) < DirectFrame || w.writing || w.rawConn() == nil {
		w.buf = AppendHeader(w.buf, t, flags, id, len(head)+len(body))
		w.buf = append(append(w.buf, head...), body...)
		if w.writing || w.held && len(w.buf) < holdMax {
			w.mu.Unlock()
			return nil
		}
		return w.flushLocked()
	}
	// Written outside the lock, as flushLocked does: frames other
	// goroutines queue meanwhile go out after it.
	w.writing = true
	queued := w.buf
	w.buf = w.spare[:0]
	w.hdr = AppendHeader(w.hdr[:0], t, flags, id, len(head)+len(body))
	iov := [4][]byte{queued, w.hdr, head, body}
	w.mu.Unlock()
	err := writevAll(w.rc, iov[:])
	w.mu.Lock()
	w.spare = queued[:0]
	if err != nil && w.err == nil {
		w.err = err
	}
	w.room.Broadcast()
	return w.flushLocked()
}

// rawConn returns the stream's descriptor access, or nil when it has none
// (a pipe in a test, a buffer); called with mu held.
func (w *Writer) rawConn() syscall.RawConn {
	if !w.rcKnown {
		w.rcKnown = true
		if sc, ok := w.w.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				w.rc = rc
			}
		}
	}
	return w.rc
}

// writevAll writes bufs to rc until all is written or it fails.
func writevAll(rc syscall.RawConn, bufs [][]byte) error {
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
			if len(bufs) == 0 {
				return true
			}
			n, err := unix.Writev(int(fd), bufs)
			switch {
			case err == unix.EAGAIN:
				return false // the poller waits for room
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = err
				return true
			}
			for n > 0 {
				k := min(n, len(bufs[0]))
				bufs[0], n = bufs[0][k:], n-k
				if len(bufs[0]) == 0 {
					bufs = bufs[1:]
				}
			}
		}
	})
	if werr != nil {
		return werr
	}
	return err
}

// flushLocked writes until the queue is empty; called with mu held, returns with it released.
func (w *Writer) flushLocked() error {
	w.writing = true
	for len(w.buf) > 0 && w.err == nil {
		out := w.buf
		w.buf = w.spare[:0]
		w.mu.Unlock()
		_, err := w.w.Write(out)
		w.mu.Lock()
		w.spare = out[:0]
		if err != nil {
			w.err = err
		}
		w.room.Broadcast()
	}
	w.writing = false
	err := w.err
	w.room.Broadcast()
	w.mu.Unlock()
	return err
}

// Hold(true) makes later frames wait in the queue, as TCP_CORK does, until
// Hold(false), Flush or the queue passing 32 KiB writes them together. The
// goroutine that reads the peer's frames holds while it has more of them
// buffered, so that the answers to one read go out in one write; it must
// call Hold(false) before it blocks.
func (w *Writer) Hold(on bool) {
	w.mu.Lock()
	if w.held == on {
		w.mu.Unlock()
		return
	}
	w.held = on
	if on || w.writing || len(w.buf) == 0 || w.err != nil {
		w.mu.Unlock()
		return
	}
	_ = w.flushLocked() // a failure stays in w.err for the next WriteFrame
}

// Flush waits until every queued frame has been written.
func (w *Writer) Flush() error {
	w.mu.Lock()
	for w.writing {
		w.room.Wait()
	}
	if len(w.buf) > 0 && w.err == nil {
		return w.flushLocked()
	}
	err := w.err
	w.mu.Unlock()
	return err
}

// Close flushes and then fails every later write with ErrWriterClosed. It
// does not close the underlying stream.
func (w *Writer) Close() error {
	err := w.Flush()
	w.mu.Lock()
	if w.err == nil {
		w.err = ErrWriterClosed
	}
	w.room.Broadcast()
	w.mu.Unlock()
	return err
}
