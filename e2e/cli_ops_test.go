package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// drover reload --tasks replaces the task workers only, prints its
// progress and total, and tasks work through the successors.
func TestReloadTasksCommand(t *testing.T) {
	s := startServer(t, tasksConfig)
	rows := s.status()
	workers, tasks := pidsOf(rows, "worker"), pidsOf(rows, "task_worker")
	out, err := s.drover("reload", "--tasks", "-c", s.config)
	if err != nil || !strings.Contains(out, "reloaded 1/2 task workers") || !strings.Contains(out, "reloaded 2 task workers in ") {
		t.Fatalf("drover reload --tasks: %v\n%s", err, out)
	}
	rows = s.status()
	if got := pidsOf(rows, "worker"); !slices.Equal(got, workers) {
		t.Errorf("reload --tasks replaced the workers %v with %v; it replaces task workers only", workers, got)
	}
	now := pidsOf(rows, "task_worker")
	if len(now) != 2 {
		t.Fatalf("%d task workers after the reload, want 2", len(now))
	}
	for _, p := range now {
		if slices.Contains(tasks, p) {
			t.Errorf("task worker %d still serves after reload --tasks (before: %v)", p, tasks)
		}
	}
	if code, body := get(t, httpURL(s, "/fanout?n=8&delay=1ms")); code != 200 || body != "204" {
		t.Fatalf("tasks after reload --tasks: %d %q, want 200 204", code, body)
	}
}

// Without task workers there is nothing for --tasks to replace: drover
// reload --tasks says so and exits 1 instead of reporting "reloaded 0 task
// workers" as a success (a typo'd or misdirected deploy step must not pass).
func TestReloadTasksWithoutTaskWorkers(t *testing.T) {
	s := startServer(t, echoConfig)
	workers := pidsOf(s.status(), "worker")
	out, err := s.drover("reload", "--tasks", "-c", s.config)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "no task workers to reload (task_worker_num is 0)") {
		t.Fatalf("drover reload --tasks without task workers: %v\n%s", err, out)
	}
	if got := pidsOf(s.status(), "worker"); !slices.Equal(got, workers) {
		t.Errorf("the workers were replaced: %v, then %v", workers, got)
	}
}

// watchFrames runs drover status --watch and delivers each screen it
// draws (the text after each clear-screen sequence) on the channel, which
// is closed when the command exits; exited then holds its error.
func watchFrames(t *testing.T, s *server, args ...string) (frames <-chan string, cmd *exec.Cmd, exited *error) {
	t.Helper()
	cmd = exec.Command(droverBin, append([]string{"status", "--watch", "-c", s.config}, args...)...)
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 64)
	exited = new(error)
	done := make(chan struct{})
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	go func() {
		defer close(done)
		defer close(ch)
		const clear = "\033[H\033[2J"
		r := bufio.NewReader(stdout)
		var cur strings.Builder
		started := false
		for {
			b, err := r.ReadByte()
			if err != nil {
				if started {
					ch <- cur.String()
				}
				*exited = cmd.Wait()
				if *exited != nil {
					*exited = fmt.Errorf("%w: %s", *exited, stderr.String())
				}
				return
			}
			cur.WriteByte(b)
			if strings.HasSuffix(cur.String(), clear) {
				if started {
					ch <- strings.TrimSuffix(cur.String(), clear)
				}
				started = true
				cur.Reset()
			}
		}
	}()
	return ch, cmd, exited
}

// nextFrame returns the next screen that ok accepts, failing after 10 s.
func nextFrame(t *testing.T, frames <-chan string, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	last := ""
	for {
		select {
		case f, open := <-frames:
			if !open {
				t.Fatalf("drover status --watch exited while waiting for %s; last screen:\n%s", what, last)
			}
			if ok(f) {
				return f
			}
			last = f
		case <-deadline:
			t.Fatalf("no drover status --watch screen showed %s within 10s; last screen:\n%s", what, last)
		}
	}
}

// drover status --watch redraws the table every second: a reload's new
// workers appear on a later screen; it ends at SIGINT, and by itself (exit
// 1, with the reason) once the instance it watches has stopped.
func TestStatusWatch(t *testing.T) {
	s := startServer(t, httpConfig)
	frames, cmd, exited := watchFrames(t, s)
	hasPIDs := func(pids []int) func(string) bool {
		return func(f string) bool {
			for _, p := range pids {
				if !strings.Contains(f, " "+strconv.Itoa(p)+" ") {
					return false
				}
			}
			return strings.Contains(f, "ROLE") && strings.Contains(f, "master:")
		}
	}
	before := pidsOf(s.status(), "worker")
	nextFrame(t, frames, fmt.Sprintf("workers %v", before), hasPIDs(before))
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload: %v\n%s", err, out)
	}
	after := pidsOf(s.status(), "worker")
	nextFrame(t, frames, fmt.Sprintf("the reloaded workers %v", after), hasPIDs(after))

	// Ctrl-C ends it.
	cmd.Process.Signal(syscall.SIGINT)
	for range frames {
	}
	if *exited == nil || !strings.Contains((*exited).Error(), "interrupt") {
		t.Logf("status --watch after SIGINT: %v", *exited)
	}

	// Watching an instance that stops: the command ends, saying why.
	frames, _, exited = watchFrames(t, s)
	nextFrame(t, frames, "the first screen", hasPIDs(after))
	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("drover stop: %v\n%s", err, out)
	}
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-frames:
		case <-deadline:
			t.Fatal("drover status --watch still runs 10s after the instance stopped")
		}
	}
	var ee *exec.ExitError
	if !errors.As(*exited, &ee) || ee.ExitCode() != 1 || !strings.Contains((*exited).Error(), "no drover is running with config") {
		t.Errorf("status --watch of a stopped instance ended with %v; want exit 1 naming the config", *exited)
	}
}
