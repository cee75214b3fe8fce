package e2e

import (
	"slices"
	"syscall"
	"testing"
	"time"
)

// SIGUSR2 replaces the task workers only; SIGUSR1 every worker and task
// worker, as drover reload does.
func TestReloadBySignal(t *testing.T) {
	s := startServer(t, tasksConfig)
	master := masterPID(t, s)
	rows := s.status()
	workers, tasks := pidsOf(rows, "worker"), pidsOf(rows, "task_worker")

	logs := s.subscribe()
	syscall.Kill(master, syscall.SIGUSR2)
	s.waitLog(logs, 30*time.Second, "the SIGUSR2 reload's end", func(e logEntry) bool { return e.msg() == "reload done" })
	rows = s.status()
	if got := pidsOf(rows, "worker"); !slices.Equal(got, workers) {
		t.Fatalf("SIGUSR2 replaced workers %v with %v; it reloads the task workers only", workers, got)
	}
	for _, p := range pidsOf(rows, "task_worker") {
		if slices.Contains(tasks, p) {
			t.Fatalf("task worker %d still serves after SIGUSR2 (task workers before: %v)", p, tasks)
		}
	}
	tasks = pidsOf(rows, "task_worker")

	syscall.Kill(master, syscall.SIGUSR1)
	s.waitLog(logs, 30*time.Second, "the SIGUSR1 reload's end", func(e logEntry) bool { return e.msg() == "reload done" })
	rows = s.status()
	for _, p := range append(pidsOf(rows, "worker"), pidsOf(rows, "task_worker")...) {
		if slices.Contains(workers, p) || slices.Contains(tasks, p) {
			t.Fatalf("process %d still serves after SIGUSR1 (before: workers %v, task workers %v)", p, workers, tasks)
		}
	}
}

// SIGHUP upgrades as drover upgrade does: a new master takes over, the
// old one drains and exits.
func TestUpgradeBySignal(t *testing.T) {
	s := startServer(t, echoConfig)
	old := masterPID(t, s)
	logs := s.subscribe()
	syscall.Kill(old, syscall.SIGHUP)
	s.waitLog(logs, 30*time.Second, "the new master ready", func(e logEntry) bool {
		return e.msg() == "upgrade: the new master is ready; this one drains and exits"
	})
	if left := waitExited([]int{old}, 15*time.Second); len(left) > 0 {
		t.Fatalf("the old master %d still runs after the upgrade", old)
	}
	if now := masterPID(t, s); now == old {
		t.Fatalf("drover status still reports the old master %d", old)
	}
	c := dial(t, s.addrs[0])
	if got, err := c.roundTrip("after"); err != nil || got != "after" {
		t.Fatalf("echo through the new master: %q, %v", got, err)
	}
}
