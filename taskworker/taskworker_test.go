package taskworker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/drover-dev/drover/ipc"
	"golang.org/x/sys/unix"
)

const helperEnv = "DROVER_TASKWORKER_TEST_HELPER"

// TestMain runs the test binary as a task worker when helperEnv is set (the
// os/exec helper-process pattern).
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "echo":
		Run(Handler{OnTask: echoTask})
	case "bootfail":
		Run(Handler{OnStart: func() error { return errors.New("queue unreachable") }, OnTask: echoTask})
	}
	os.Exit(2)
}

func echoTask(_ context.Context, task []byte) ([]byte, error) { return task, nil }

// fakeMaster runs serve in process on a socket pair and reads the hello.
type fakeMaster struct {
	f      *os.File
	r      *ipc.Reader
	w      *ipc.Writer
	hello  ipc.Hello
	err    error
	served chan struct{}
}

func startTaskWorker(t *testing.T, h Handler) *fakeMaster {
	t.Helper()
	mf, wf, err := ipc.SocketPair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMaster{f: mf, r: ipc.NewReader(mf, 1<<20), w: ipc.NewWriter(mf, 1<<20), served: make(chan struct{})}
	go func() {
		m.err = serve(ipc.NewReader(wf, 1<<20), ipc.NewWriter(wf, 1<<20), 1, h)
		wf.Close()
		close(m.served)
	}()
	t.Cleanup(func() { mf.Close(); <-m.served })
	return m
}

func (m *fakeMaster) readHello(t *testing.T) {
	t.Helper()
	fh, p, err := m.r.ReadFrame()
	if err != nil || fh.Type != ipc.TypeHello {
		t.Fatalf("first frame %v (%v), want hello", fh.Type, err)
	}
	if err := ipc.Unmarshal(p, &m.hello); err != nil {
		t.Fatal(err)
	}
}

func TestHelloAndStop(t *testing.T) {
	m := startTaskWorker(t, Handler{OnStart: func() error { return nil }, OnTask: echoTask})
	m.readHello(t)
	want := ipc.Hello{Version: ipc.ProtocolVersion, PID: os.Getpid(), Concurrency: 1, Role: ipc.RoleTaskWorker, SDK: "go"}
	if m.hello != want {
		t.Fatalf("hello %+v, want %+v", m.hello, want)
	}
	for _, typ := range []ipc.Type{0x50, ipc.TypeData, ipc.TypeStop} { // unknown, not for task workers, stop
		if err := m.w.WriteFrame(typ, 0, 1, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if fh, _, err := m.r.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v (%v), want EOF: nothing is answered", fh.Type, err)
	}
	<-m.served
	if m.err != nil {
		t.Fatalf("Serve = %v, want nil", m.err)
	}
}

func TestMasterGone(t *testing.T) {
	m := startTaskWorker(t, Handler{OnTask: echoTask})
	m.readHello(t)
	m.f.Close()
	<-m.served
	if !errors.Is(m.err, io.EOF) || ipc.ExitCode(m.err) != 1 {
		t.Fatalf("Serve = %v, want EOF", m.err)
	}
}

func TestBootFailure(t *testing.T) {
	for name, h := range map[string]Handler{
		"no OnTask":     {},
		"OnStart error": {OnStart: func() error { return errors.New("queue unreachable") }, OnTask: echoTask},
		"OnStart panic": {OnStart: func() error { panic("nil map") }, OnTask: echoTask},
	} {
		t.Run(name, func(t *testing.T) {
			m := startTaskWorker(t, h)
			<-m.served
			if ipc.ExitCode(m.err) != ipc.ExitBootFailure {
				t.Fatalf("Serve = %v, want a boot failure", m.err)
			}
		})
	}
}

// child starts the test binary as a helper task worker, fd 3 a socket pair
// when pair is set; it is killed with its group at cleanup.
func child(t *testing.T, pair bool, env ...string) (*exec.Cmd, *os.File, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DROVER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The race runtime sleeps 1s before a zero exit unless told otherwise.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mf *os.File
	if pair {
		var wf *os.File
		var err error
		if mf, wf, err = ipc.SocketPair(unix.SOCK_STREAM); err != nil {
			t.Fatal(err)
		}
		defer wf.Close()
		t.Cleanup(func() { mf.Close() })
		cmd.ExtraFiles = []*os.File{wf}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd, mf, stderr
}

func exitCode(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer, code int, msg string) {
	t.Helper()
	_ = cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != code || !strings.Contains(stderr.String(), msg) {
		t.Fatalf("exit code %d, stderr %q; want %d and %q", got, stderr, code, msg)
	}
}

func TestProcess(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		cmd, mf, stderr := child(t, true, helperEnv+"=echo", "DROVER_ROLE=task_worker", "DROVER_WORKER_ID=0")
		r := ipc.NewReader(mf, 1<<20)
		if fh, _, err := r.ReadFrame(); err != nil || fh.Type != ipc.TypeHello {
			t.Fatalf("first frame %v (%v), want hello", fh.Type, err)
		}
		if _, err := mf.Write(ipc.AppendFrame(nil, ipc.TypeStop, 0, 0, nil)); err != nil {
			t.Fatal(err)
		}
		exitCode(t, cmd, stderr, 0, "")
	})
	t.Run("master gone", func(t *testing.T) {
		cmd, mf, stderr := child(t, true, helperEnv+"=echo", "DROVER_ROLE=task_worker")
		if _, _, err := ipc.NewReader(mf, 1<<20).ReadFrame(); err != nil {
			t.Fatal(err)
		}
		mf.Close()
		exitCode(t, cmd, stderr, 1, "master closed the channel (fd 3)")
	})
	t.Run("boot failure", func(t *testing.T) {
		cmd, _, stderr := child(t, true, helperEnv+"=bootfail", "DROVER_ROLE=task_worker")
		exitCode(t, cmd, stderr, ipc.ExitBootFailure, "OnStart: queue unreachable")
	})
	t.Run("wrong role", func(t *testing.T) {
		cmd, _, stderr := child(t, true, helperEnv+"=echo", "DROVER_ROLE=worker")
		exitCode(t, cmd, stderr, ipc.ExitBootFailure, "list it under task_worker.cmd, not worker.cmd")
	})
	t.Run("by hand", func(t *testing.T) {
		cmd, _, stderr := child(t, false, helperEnv+"=echo")
		exitCode(t, cmd, stderr, 1, "this program is a drover task worker: start it with `drover start -c drover.yaml` (task_worker.cmd), not by hand (DROVER_ROLE is not set)")
	})
}

// Each task gets exactly one result with its id: the value, or FlagAbort
// and the error text, a panic included.
func TestTasksAnswered(t *testing.T) {
	m := startTaskWorker(t, Handler{OnTask: func(_ context.Context, task []byte) ([]byte, error) {
		switch string(task) {
		case "fail":
			return nil, errors.New("no such report")
		case "panic":
			panic("handler bug")
		}
		return append([]byte("done: "), task...), nil
	}})
	m.readHello(t)
	for i, task := range []string{"a", "fail", "panic", "b"} {
		if err := m.w.WriteFrame(ipc.TypeTask, 0, uint64(100+i), []byte(task)); err != nil {
			t.Fatal(err)
		}
	}
	want := []struct {
		flags uint8
		body  string
	}{{0, "done: a"}, {ipc.FlagAbort, "no such report"}, {ipc.FlagAbort, "the task panicked: handler bug"}, {0, "done: b"}}
	for i, w := range want {
		fh, p, err := m.r.ReadFrame()
		if err != nil || fh.Type != ipc.TypeTaskResult || fh.ID != uint64(100+i) || fh.Flags != w.flags || string(p) != w.body {
			t.Fatalf("result %d: %v id %d flags %d %q (%v), want id %d flags %d %q", i, fh.Type, fh.ID, fh.Flags, p, err, 100+i, w.flags, w.body)
		}
	}
}

// Messages reach OnMessage with the sender's id; SendMessage writes one.
func TestMessages(t *testing.T) {
	got := make(chan string, 1)
	m := startTaskWorker(t, Handler{OnTask: echoTask, OnMessage: func(from int, data []byte) {
		got <- fmt.Sprintf("%d:%s", from, data)
		if err := SendMessage(from, []byte("ack")); err != nil {
			t.Error(err)
		}
	}})
	m.readHello(t)
	if err := m.w.WriteFrame(ipc.TypeMessage, 0, 1, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "1:hi" {
		t.Fatalf("OnMessage got %q", g)
	}
	fh, p, err := m.r.ReadFrame()
	if err != nil || fh.Type != ipc.TypeMessage || fh.ID != 1 || string(p) != "ack" {
		t.Fatalf("answer %v %d %q (%v)", fh.Type, fh.ID, p, err)
	}
}
