package worker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/drover-dev/drover/ipc"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a worker instead of running the tests
// (the os/exec helper-process pattern).
const helperEnv = "DROVER_WORKER_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "echo":
		Run(Events{
			OnStart: func(s *Server) error {
				fmt.Println("stdout is not the channel") // harmless
				return nil
			},
			OnReceive: func(s *Server, conn uint64, data []byte) {
				if string(data) == "id" {
					data = []byte(strconv.Itoa(s.WorkerID()))
				}
				_ = s.Send(conn, data)
			},
		}, WithConcurrency(4))
	case "bootfail":
		Run(Events{OnStart: func(*Server) error { return errors.New("cannot read /etc/app.conf") }})
	}
	fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
	os.Exit(2)
}

// child is a worker process started by a test, with the master's end of
// its socket pair when it has one.
type child struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	m      *fakeMaster // reads and writes only; no Serve in this process
}

// startChild starts argv as a worker with env added to a clean copy of the
// test's environment (no DROVER_ variables). With pair, fd 3 is a socket
// pair whose other end the returned child's master uses. The process runs
// in its own group, killed at cleanup.
func startChild(t *testing.T, argv []string, pair bool, env ...string) *child {
	t.Helper()
	c := &child{stderr: new(bytes.Buffer)}
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DROVER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The race runtime sleeps 1s before a zero exit unless told otherwise.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if pair {
		mf, wf, err := ipc.SocketPair(unix.SOCK_STREAM)
		if err != nil {
			t.Fatal(err)
		}
		defer wf.Close()
		t.Cleanup(func() { mf.Close() })
		cmd.ExtraFiles = []*os.File{wf}
		c.m = &fakeMaster{t: t, f: mf, r: ipc.NewReader(mf, ipc.DefaultMaxPayload), w: ipc.NewWriter(mf, 1<<20)}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.cmd = cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return c
}

// readHello reads and decodes the child's hello.
func (c *child) readHello(t *testing.T) ipc.Hello {
	t.Helper()
	f := c.m.read()
	var h ipc.Hello
	if f.typ != ipc.TypeHello {
		t.Fatalf("first frame %v, want hello", f)
	}
	if err := ipc.Unmarshal([]byte(f.payload), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// wait waits for the child and checks its exit code and stderr.
func (c *child) wait(t *testing.T, code int, stderr string) {
	t.Helper()
	_ = c.cmd.Wait()
	if got := c.cmd.ProcessState.ExitCode(); got != code {
		t.Errorf("exit code %d, want %d; stderr:\n%s", got, code, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), stderr) {
		t.Errorf("stderr lacks %q:\n%s", stderr, c.stderr)
	}
}

// helper is the argv that runs the test binary as a helper worker.
func helper() []string { return []string{os.Args[0], "-test.run=^$"} }

func workerEnv(mode string) []string {
	return []string{helperEnv + "=" + mode, "DROVER_ROLE=worker", "DROVER_WORKER_ID=2", "DROVER_FD=3", "DROVER_WORKER_NUM=4", "DROVER_LAUNCH=exec"}
}

func TestProcessEchoAndStop(t *testing.T) {
	c := startChild(t, helper(), true, workerEnv("echo")...)
	h := c.readHello(t)
	if h.PID != c.cmd.Process.Pid || h.Concurrency != 4 || h.Role != ipc.RoleWorker || h.SDK != "go" || h.Version != ipc.ProtocolVersion {
		t.Fatalf("hello %+v", h)
	}
	c.m.send(ipc.TypeData, 11, []byte("ping"))
	c.m.expect(sendF(11, "ping"), doneF(11))
	c.m.send(ipc.TypeData, 11, []byte("id"))
	c.m.expect(sendF(11, "2"), doneF(11))
	c.m.send(ipc.TypeStop, 0, nil)
	if f, err := c.m.next(); err == nil {
		t.Fatalf("got %v after stop, want EOF", f)
	}
	c.wait(t, 0, "")
}

func TestProcessMasterGone(t *testing.T) {
	c := startChild(t, helper(), true, workerEnv("echo")...)
	c.readHello(t)
	c.m.f.Close()
	c.wait(t, 1, "master closed the channel (fd 3)")
}

func TestProcessBootFailure(t *testing.T) {
	c := startChild(t, helper(), true, workerEnv("bootfail")...)
	c.wait(t, ipc.ExitBootFailure, "OnStart: cannot read /etc/app.conf")
	if f, err := c.m.next(); err == nil {
		t.Fatalf("a worker that failed to boot sent %v", f)
	}
}

func TestProcessWrongRole(t *testing.T) {
	env := append(workerEnv("echo"), "DROVER_ROLE=task_worker")
	c := startChild(t, helper(), true, env...)
	c.wait(t, ipc.ExitBootFailure, "list it under worker.cmd, not task_worker.cmd")
}

func TestProcessRunByHand(t *testing.T) {
	const msg = "this program is a drover worker: start it with `drover start -c drover.yaml` (worker.cmd), not by hand"
	t.Run("no role", func(t *testing.T) {
		c := startChild(t, helper(), false, helperEnv+"=echo")
		c.wait(t, 1, msg+" (DROVER_ROLE is not set)")
	})
	t.Run("no socket", func(t *testing.T) {
		c := startChild(t, helper(), false, helperEnv+"=echo", "DROVER_ROLE=worker")
		c.wait(t, 1, msg+" (fd 3 is not ")
	})
}
