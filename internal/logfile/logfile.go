// Package logfile is a log destination that survives log rotation. A
// Writer appends to a file; Reopen opens the same path anew — after
// logrotate (or an operator) renamed the old file — and switches to the new
// file between two writes, so that no line is lost, split or interleaved.
//
// The master usually runs as root and its workers as a less privileged
// user, whose output it writes to the log: every open is checked (see
// OpenFile) so that the file cannot be another one in disguise (nginx's
// CVE-2016-1247).
package logfile

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Mode is the permission a log file is created with.
const Mode = 0o640

// Writer appends to the file at a path and can reopen it. It is safe for
// concurrent use: every Write goes whole to exactly one file (the one open
// when the call began) in one append, and calls never interleave.
type Writer struct {
	path string

	mu    sync.Mutex
	f     *os.File // nil once closed
	stdio bool     // descriptors 1 and 2 follow the file (CaptureStdio)
}

// Open opens path for appending, creating it with Mode, and returns a
// Writer on it. The caller closes the Writer.
func Open(path string) (*Writer, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &Writer{path: path, f: f}, nil
}

func openFile(path string) (*os.File, error) { return OpenFile(path) }

// Path returns the path the Writer opens.
func (w *Writer) Path() string { return w.path }

// Write appends p to the current file in one write. After Close it
// returns os.ErrClosed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, os.ErrClosed
	}
	return w.f.Write(p)
}

// Reopen opens the Writer's path anew and makes it the destination of every
// Write that begins after it returns; Writes in progress finish on the old
// file, which is then closed. If the path cannot be opened (its directory
// is gone, permissions changed) the Writer keeps writing to the old file
// and Reopen returns an error saying so.
func (w *Writer) Reopen() error {
	// Opened outside the lock: writers never wait for the file system.
	f, err := openFile(w.path)
	if err != nil {
		return fmt.Errorf("reopen log file: %w; logs still go to the file open before "+
			"(create the directory or make it writable, then reopen again)", err)
	}
	w.mu.Lock()
	if w.f == nil {
		w.mu.Unlock()
		f.Close()
		return fmt.Errorf("reopen log file %s: %w", w.path, os.ErrClosed)
	}
	if w.stdio {
		if err := dupStdio(f); err != nil {
			w.mu.Unlock()
			f.Close()
			return fmt.Errorf("reopen log file %s: %w; logs still go to the file open before", w.path, err)
		}
	}
	old := w.f
	w.f = f
	w.mu.Unlock()
	return old.Close()
}

// CaptureStdio points descriptors 1 and 2 of this process at the current
// file, and again after every successful Reopen, so that what bypasses
// the logger — a Go panic's stack trace, a race report — lands in the
// current log too. It is meant for a daemon, whose stdout and stderr are
// its log anyway.
func (w *Writer) CaptureStdio() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	if err := dupStdio(w.f); err != nil {
		return fmt.Errorf("log file %s: %w", w.path, err)
	}
	w.stdio = true
	return nil
}

func dupStdio(f *os.File) error {
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("point descriptor %d at the log file: %w", fd, err)
		}
	}
	return nil
}

// Close closes the current file; later Writes and Reopens fail with
// os.ErrClosed. Descriptors captured by CaptureStdio stay as they are.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	err := w.f.Close()
	w.f = nil
	return err
}
