package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
)

// TestMain runs this test binary as drover (its main) when the test asks
// for a process in the manager role: the os/exec helper-process pattern.
func TestMain(m *testing.M) {
	if os.Getenv(ipc.EnvRole) == ipc.RoleManager {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A manager whose stderr nobody reads any more (the master's log reader
// gone) keeps running: a write to it fails with EPIPE instead of killing
// the manager, and with it every worker, by SIGPIPE. It stops when told.
func TestManagerSurvivesAClosedStderr(t *testing.T) {
	ours, theirs, err := ipc.SocketPair(unix.SOCK_SEQPACKET)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	ctl, err := ipc.NewControl(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // nobody reads the manager's log
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ipc.EnvRole+"="+ipc.RoleManager, "DROVER_LOG_FORMAT=json", "DROVER_LOG_LEVEL=debug")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})
	cfg, _ := json.Marshal(config.Config{})
	if err := ctl.Send(ipc.CtlInit, 0, ipc.Init{Config: cfg, LogFormat: "json", LogLevel: "debug"}); err != nil {
		t.Fatal(err)
	}
	// It logs "manager running" (to the closed pipe), then answers a stats
	// request: it is alive after the write.
	if err := ctl.Send(ipc.CtlStats, 1, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		h, _, _, err := ctl.Recv()
		if err == nil && h.Type != ipc.CtlStatsReply {
			err = os.ErrInvalid
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("no stats reply from the manager: %v (exit: %v)", err, <-exited)
		}
	case err := <-exited:
		t.Fatalf("the manager died writing to a closed stderr: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no stats reply from the manager within 10s")
	}
	// A signal sent to the whole tree does not stop it either.
	syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
	if err := ctl.Send(ipc.CtlStats, 2, nil); err != nil {
		t.Fatal(err)
	}
	if h, _, _, err := ctl.Recv(); err != nil || h.Type != ipc.CtlStatsReply {
		t.Fatalf("after SIGTERM: %v %v", h.Type, err)
	}
	if err := ctl.Send(ipc.CtlShutdown, 0, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the manager's exit after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the manager did not exit within 10s of its shutdown")
	}
}
