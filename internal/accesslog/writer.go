// Package accesslog writes the master's access log without slowing the
// reactor loops that produce it. Each loop formats its lines into a Buffer
// of its own (no lock, and no allocation per line once its buffers exist)
// and hands full buffers, or what it has at each tick, to the Writer's one
// goroutine through a bounded queue; that goroutine writes each buffer with
// one write(2). A loop never waits for the file: when the queue is full
// and a loop's buffer has no room left, the buffer's lines are dropped and
// counted, and a second goroutine logs the count (at most once a second)
// with the reason. Memory is bounded by the queue: Queue buffers of
// BufferSize bytes waiting, plus one per loop and one being written.
//
// The file is opened as log_file is (internal/logfile: O_NOFOLLOW, owner
// checks, mode 0640) and reopened by Reopen (drover reopen-logs); the path
// "-" writes to the process's stdout.
package accesslog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/logfile"
)

// Stdout is the path that means the process's stdout.
const Stdout = "-"

// Defaults of Options' bounds.
const (
	// DefaultBufferSize is the size of each buffer: a loop hands its buffer
	// over when a line might not fit in what is left.
	DefaultBufferSize = 64 << 10
	// DefaultQueue is how many full buffers may wait for the writer
	// (2 MiB with the default size); beyond it lines are dropped.
	DefaultQueue = 32
	// DefaultCloseWait bounds how long Close waits for the writer to write
	// what is queued: a writer stuck on a stdout nobody reads must not
	// hold a stop.
	DefaultCloseWait = 2 * time.Second
)

// Options configure Open.
type Options struct {
	// Path is the file to append to, or Stdout.
	Path string
	// JSON selects one JSON object a line; otherwise the combined format.
	JSON bool
	// Log receives drops and write failures; it must not be the access
	// log itself.
	Log *logrus.Entry
	// Bounds; 0 means the default.
	BufferSize int
	Queue      int
	CloseWait  time.Duration
	// Out, if set, is written to instead of Path (tests).
	Out io.Writer
}

// Writer is the access log's destination and its writing goroutine. Open
// starts it; Close stops it. Buffers (NewBuffer) are its producers.
type Writer struct {
	// Set by Open, then read-only.
	path      string
	json      bool
	size      int
	closeWait time.Duration
	out       io.Writer
	file      *logfile.Writer // nil when out is stdout (or Options.Out)
	log       *logrus.Entry

	queue   chan chunk    // full buffers, in the order they were handed over
	free    chan []byte   // written buffers, for reuse
	dropSig chan struct{} // a drop happened (one pending at most)
	stop    chan struct{} // closed by Close
	wrote   chan struct{} // closed when the writing goroutine ended
	told    chan struct{} // closed when the reporting goroutine ended

	// Written by the buffers' loops and the writer, read by the reporter.
	dropped atomic.Uint64
	// writing is the line count of the chunk being written (writer
	// goroutine), for Close to count what a stuck write holds.
	writing atomic.Int64
}

// chunk is a buffer handed to the writer and how many lines it holds.
type chunk struct {
	b     []byte
	lines int
}

// Open opens the access log and starts its goroutines. The caller Closes
// it once every Buffer's loop has stopped.
func Open(opts Options) (*Writer, error) {
	w := &Writer{path: opts.Path, json: opts.JSON, size: opts.BufferSize, closeWait: opts.CloseWait, log: opts.Log,
		dropSig: make(chan struct{}, 1), stop: make(chan struct{}), wrote: make(chan struct{}), told: make(chan struct{})}
	if w.size <= 0 {
		w.size = DefaultBufferSize
	}
	q := opts.Queue
	if q <= 0 {
		q = DefaultQueue
	}
	if w.closeWait <= 0 {
		w.closeWait = DefaultCloseWait
	}
	if w.log == nil {
		w.log = logrus.NewEntry(logrus.StandardLogger())
	}
	w.log = w.log.WithField("access_log", opts.Path)
	switch {
	case opts.Out != nil:
		w.out = opts.Out
	case opts.Path == Stdout:
		w.out = os.Stdout
	default:
		f, err := logfile.Open(opts.Path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil, fmt.Errorf("access_log: %w (create its directory or fix its permissions)", err)
			}
			return nil, fmt.Errorf("access_log: %w", err)
		}
		w.file, w.out = f, f
	}
	w.queue = make(chan chunk, q)
	w.free = make(chan []byte, q+1)
	go w.run()
	go w.report()
	return w, nil
}

// Path is the path the Writer was opened with.
func (w *Writer) Path() string { return w.path }

// Dropped is how many lines were dropped so far.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Reopen opens the file anew (after logrotate renamed it); lines written
// from then on go to the new file, each buffer whole to one file. On error
// the old file goes on receiving them. With stdout it does nothing.
func (w *Writer) Reopen() error {
	if w.file == nil {
		return nil
	}
	if err := w.file.Reopen(); err != nil {
		return fmt.Errorf("access_log: %w", err)
	}
	return nil
}

// Close hands over the lines left in bufs (whose loops must have stopped),
// waits up to CloseWait for the writer to write everything queued, and
// closes the file. Lines it cannot write in time are counted and logged as
// lost; a writer stuck in a write keeps its file open (closing it would
// wait for that write) until the process exits. Safe to call once.
func (w *Writer) Close(bufs []*Buffer) error {
	deadline := time.NewTimer(w.closeWait)
	defer deadline.Stop()
	lost := 0
	for _, b := range bufs {
		if b == nil || b.lines == 0 {
			continue
		}
		select {
		case w.queue <- chunk{b.b, b.lines}:
		case <-deadline.C:
			lost += b.lines
			deadline.Reset(0) // expired: the rest goes the same way at once
		}
		b.b, b.lines = nil, 0
	}
	close(w.stop)
	stuck := false
	select {
	case <-w.wrote:
	case <-deadline.C:
		stuck = true
		// Stuck in a write: what waits behind it is lost.
		for n := len(w.queue); n > 0; n-- {
			select {
			case c := <-w.queue:
				lost += c.lines
			default:
			}
		}
		lost += int(w.writing.Load())
	}
	<-w.told
	if lost > 0 {
		w.log.WithFields(logrus.Fields{"lines": lost, "close_wait": w.closeWait.String()}).
			Warn("access log not flushed at stop: its writer is stuck (a slow disk, or nobody reads stdout); these lines are lost")
	}
	if w.file != nil && !stuck {
		return w.file.Close()
	}
	return nil
}

// run writes the queued buffers in order until Close; then what is queued.
func (w *Writer) run() {
	defer close(w.wrote)
	failing := false
	write := func(c chunk) {
		w.writing.Store(int64(c.lines))
		_, err := w.out.Write(c.b)
		w.writing.Store(0)
		switch {
		case err != nil:
			w.drop(c.lines)
			if !failing {
				failing = true
				w.log.WithError(err).Error("access log write failed; its lines are dropped until a write succeeds (check the disk, or reopen-logs)")
			}
		case failing:
			failing = false
			w.log.Info("access log written again")
		}
		w.recycle(c.b)
	}
	for {
		select {
		case c := <-w.queue:
			write(c)
		case <-w.stop:
			for {
				select {
				case c := <-w.queue:
					write(c)
				default:
					return
				}
			}
		}
	}
}

// report logs drops: at the first after a quiet spell, it waits a second
// to gather the burst, then says how many and why.
func (w *Writer) report() {
	defer close(w.told)
	var said uint64
	tell := func() {
		n := w.dropped.Load()
		if n == said {
			return
		}
		w.log.WithFields(logrus.Fields{"dropped": n - said, "dropped_total": n}).
			Warn("access log lines dropped: its writer is behind (a slow disk, or nobody reads stdout); serving goes on")
		said = n
	}
	for {
		select {
		case <-w.dropSig:
			t := time.NewTimer(time.Second)
			select {
			case <-t.C:
			case <-w.stop:
				t.Stop()
			}
			tell()
		case <-w.stop:
			tell()
			return
		}
	}
}

// drop counts n lines dropped and wakes the reporter. Safe from any
// goroutine; never blocks.
func (w *Writer) drop(n int) {
	w.dropped.Add(uint64(n))
	select {
	case w.dropSig <- struct{}{}:
	default:
	}
}

// recycle offers a written buffer for reuse; one grown far past the size
// (a huge line) is left to the collector.
func (w *Writer) recycle(b []byte) {
	if cap(b) > 2*w.size {
		return
	}
	select {
	case w.free <- b[:0]:
	default:
	}
}

// take returns an empty buffer: a written one, or a new one (only while
// fewer than the queue's worth plus one per loop exist: the free list then
// has one whenever a handover succeeded). Safe from any goroutine.
func (w *Writer) take() []byte {
	select {
	case b := <-w.free:
		return b
	default:
		return make([]byte, 0, w.size)
	}
}
