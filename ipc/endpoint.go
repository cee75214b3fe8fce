package ipc

// Worker-side helpers shared by the SDKs (worker, taskworker): finding and
// checking the socket pair a handler inherits, the hello, and the exit codes
// a handler's main returns. They print nothing; the SDKs decide what to say.

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNotStarted reports a handler that was not started by drover: DROVER_ROLE
// is unset or the channel descriptor (DROVER_FD, default 3) is not a stream
// socket. The error wrapping it says how to start the program; ExitCode maps
// it to 1.
var ErrNotStarted = errors.New("not started by drover")

// ErrBootFailure marks an error that must end a handler with
// ExitBootFailure: its start-up hook failed, or drover started it in a role
// it does not play (a task-worker program under worker.cmd). The manager
// then backs off instead of respawning at once.
var ErrBootFailure = errors.New("boot failure")

// WriterBacklog is the backlog bound of the SDKs' frame Writer: a goroutine
// that sends while more than this many bytes wait for the socket blocks
// until they are written.
const WriterBacklog = 4 << 20

// notStartedError is the friendly message for ErrNotStarted.
type notStartedError struct{ msg string }

func (e *notStartedError) Error() string { return e.msg }
func (e *notStartedError) Unwrap() error { return ErrNotStarted }

// roleHelp names a role and the config key that starts it, for messages.
func roleHelp(role string) (name, key string) {
	switch role {
	case RoleTaskWorker:
		return "task worker", "task_worker.cmd"
	case RoleProcess:
		return "user process", "processes[].cmd"
	}
	return "worker", "worker.cmd"
}

// OpenWorkerEnd returns the calling process's end of its socket pair with the
// master, for a handler playing role (RoleWorker or RoleTaskWorker). It checks
// that DROVER_ROLE is set, that DROVER_FD (default 3) is an open
// SOCK_STREAM socket, and marks the descriptor close-on-exec so that
// processes the handler starts do not inherit the channel (which would keep
// it open after the handler died). The caller owns the returned file.
//
// Errors: one wrapping ErrNotStarted, whose text tells a person who ran the
// program by hand how to start it; one wrapping ErrBootFailure when
// DROVER_ROLE names another role or DROVER_FD is not a number.
func OpenWorkerEnd(role string) (*os.File, error) {
	name, key := roleHelp(role)
	notStarted := func(why string) error {
		return &notStartedError{msg: fmt.Sprintf(
			"this program is a drover %s: start it with `drover start -c drover.yaml` (%s), not by hand (%s)",
			name, key, why)}
	}
	got := os.Getenv(EnvRole)
	if got == "" {
		return nil, notStarted(EnvRole + " is not set")
	}
	if got != role {
		_, gotKey := roleHelp(got)
		return nil, fmt.Errorf("%w: this program is a drover %s but was started as %s %q: list it under %s, not %s",
			ErrBootFailure, name, EnvRole, got, key, gotKey)
	}
	fd := WorkerFD
	if s := os.Getenv(EnvFD); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: %s=%q is not a file descriptor", ErrBootFailure, EnvFD, s)
		}
		fd = n
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	switch {
	case errors.Is(err, unix.EBADF):
		return nil, notStarted(fmt.Sprintf("fd %d is not open", fd))
	case errors.Is(err, unix.ENOTSOCK):
		return nil, notStarted(fmt.Sprintf("fd %d is not a socket", fd))
	case err != nil:
		return nil, notStarted(fmt.Sprintf("fd %d: %v", fd, err))
	case typ != unix.SOCK_STREAM:
		return nil, notStarted(fmt.Sprintf("fd %d is a socket of type %d, not SOCK_STREAM", fd, typ))
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "drover-channel"), nil
}

// WorkerID returns the slot number drover gave this process (DROVER_WORKER_ID),
// or -1 when it is unset or not a number.
func WorkerID() int {
	n, err := strconv.Atoi(os.Getenv(EnvWorkerID))
	if err != nil {
		return -1
	}
	return n
}

// WriteHello writes the hello, the first frame a worker sends: h with this
// process's pid and ProtocolVersion filled in, and a Concurrency of at
// least 1.
func WriteHello(w *Writer, h Hello) error {
	h.Version, h.PID = ProtocolVersion, os.Getpid()
	h.Concurrency = max(h.Concurrency, 1)
	b, err := Marshal(h)
	if err != nil {
		return err
	}
	if err := w.WriteFrame(TypeHello, 0, 0, b); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	return nil
}

// ShutdownRead shuts down the reading side of the socket f, so that a
// goroutine blocked reading it returns io.EOF once the bytes already received
// are consumed. Frames can still be written. The peer's writes fail from
// then on (EPIPE): it learns that no further frame will be read.
func ShutdownRead(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_RD) }); err != nil {
		return err
	}
	return serr
}

// ExitCode is the exit code for the error a handler's Serve returned: 0 for
// nil, ExitBootFailure for an error wrapping ErrBootFailure, 1 otherwise
// (including ErrNotStarted and a master that went away).
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrBootFailure):
		return ExitBootFailure
	}
	return 1
}
