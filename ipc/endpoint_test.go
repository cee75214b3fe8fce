package ipc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// dupEnv points DROVER_FD at a duplicate of f, which OpenWorkerEnd may own.
func dupEnv(t *testing.T, f *os.File) int {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFD, strconv.Itoa(fd))
	return fd
}

func TestOpenWorkerEndErrors(t *testing.T) {
	const hint = "this program is a drover worker: start it with `drover start -c drover.yaml` (worker.cmd), not by hand"
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	sa, sb, err := SocketPair(unix.SOCK_SEQPACKET)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	defer sb.Close()
	closed, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(closed)

	for _, tc := range []struct {
		name, role, fd string
		want           error
		msg            string
	}{
		{"no role", "", "", ErrNotStarted, hint + " (DROVER_ROLE is not set)"},
		{"other role", RoleTaskWorker, "", ErrBootFailure, `this program is a drover worker but was started as DROVER_ROLE "task_worker": list it under worker.cmd, not task_worker.cmd`},
		{"bad fd", RoleWorker, "three", ErrBootFailure, `DROVER_FD="three" is not a file descriptor`},
		{"closed fd", RoleWorker, strconv.Itoa(closed), ErrNotStarted, fmt.Sprintf("%s (fd %d is not open)", hint, closed)},
		{"pipe", RoleWorker, strconv.Itoa(int(pr.Fd())), ErrNotStarted, fmt.Sprintf("%s (fd %d is not a socket)", hint, pr.Fd())},
		{"seqpacket", RoleWorker, strconv.Itoa(int(sa.Fd())), ErrNotStarted, "not SOCK_STREAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRole, tc.role)
			t.Setenv(EnvFD, tc.fd)
			f, err := OpenWorkerEnd(RoleWorker)
			if f != nil {
				t.Fatalf("got a file for %s", tc.name)
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestOpenWorkerEndAndHello(t *testing.T) {
	mf, wf, err := SocketPair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	defer wf.Close()
	t.Setenv(EnvRole, RoleTaskWorker)
	fd := dupEnv(t, wf)
	// Inherited descriptors are not close-on-exec: OpenWorkerEnd must set it.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	f, err := OpenWorkerEnd(RoleTaskWorker)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("fd flags %#x (%v): the channel must be close-on-exec", flags, err)
	}
	if err := WriteHello(NewWriter(f, WriterBacklog), Hello{Role: RoleTaskWorker, SDK: "go"}); err != nil {
		t.Fatal(err)
	}
	h, p, err := NewReader(mf, 1<<10).ReadFrame()
	if err != nil || h.Type != TypeHello || h.ID != 0 || h.Flags != 0 {
		t.Fatalf("frame %+v (%v), want hello", h, err)
	}
	var hello Hello
	if err := Unmarshal(p, &hello); err != nil {
		t.Fatal(err)
	}
	want := Hello{Version: ProtocolVersion, PID: os.Getpid(), Concurrency: 1, Role: RoleTaskWorker, SDK: "go"}
	if hello != want {
		t.Fatalf("hello %+v, want %+v", hello, want)
	}
}

// TestShutdownRead wakes a blocked reader with EOF; the shut end can still
// write, and the peer's writes fail.
func TestShutdownRead(t *testing.T) {
	mf, wf, err := SocketPair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	defer wf.Close()
	if _, err := mf.Write(AppendFrame(nil, TypeData, 0, 1, []byte("before"))); err != nil {
		t.Fatal(err)
	}
	r := NewReader(wf, 1<<10)
	got := make(chan error, 1)
	go func() {
		if _, p, err := r.ReadFrame(); err != nil || string(p) != "before" {
			got <- fmt.Errorf("first frame %q, %v", p, err)
			return
		}
		_, _, err := r.ReadFrame()
		got <- err
	}()
	if err := ShutdownRead(wf); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, io.EOF) {
		t.Fatalf("blocked read returned %v, want EOF", err)
	}
	if _, err := wf.Write(AppendFrame(nil, TypeDone, 0, 1, nil)); err != nil {
		t.Fatalf("write after ShutdownRead: %v", err)
	}
	if h, _, err := NewReader(mf, 1<<10).ReadFrame(); err != nil || h.Type != TypeDone {
		t.Fatalf("peer read %v, %v", h.Type, err)
	}
	if _, err := mf.Write([]byte("x")); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("peer write after ShutdownRead: %v, want EPIPE", err)
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{fmt.Errorf("%w: OnStart: %w", ErrBootFailure, errors.New("x")), ExitBootFailure},
		{&notStartedError{"by hand"}, 1},
		{fmt.Errorf("read: %w", io.EOF), 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestWorkerID(t *testing.T) {
	t.Setenv(EnvWorkerID, "7")
	if got := WorkerID(); got != 7 {
		t.Fatalf("WorkerID() = %d, want 7", got)
	}
	t.Setenv(EnvWorkerID, "")
	if got := WorkerID(); got != -1 {
		t.Fatalf("WorkerID() = %d unset, want -1", got)
	}
}
