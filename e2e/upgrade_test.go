package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

func masterPID(t *testing.T, s *server) int {
	t.Helper()
	for _, r := range s.status() {
		if r.Role == "master" {
			return r.PID
		}
	}
	t.Fatal("no master in drover status")
	return 0
}

// Three upgrades in a row under load from 64 keep-alive connections: each
// replaces the master (new pid), and no client sees an error.
func TestUpgradeUnderLoadLosesNothing(t *testing.T) {
	s := startServer(t, httpConfig)
	res, stop := load(t, httpURL(s, "/"), 64)
	waitServed(t, res, 500)
	pids := []int{masterPID(t, s)}
	for i := 1; i <= 3; i++ {
		out, err := s.drover("upgrade", "-c", s.config)
		if err != nil || !strings.Contains(out, "upgraded in") {
			t.Fatalf("upgrade %d: %v\n%s", i, err, out)
		}
		pid := masterPID(t, s)
		for _, p := range pids {
			if p == pid {
				t.Fatalf("after upgrade %d the master pid is still %d (pids %v)", i, pid, pids)
			}
		}
		if alive(pids[len(pids)-1]) {
			t.Fatalf("the old master %d is still alive after drover upgrade returned", pids[len(pids)-1])
		}
		pids = append(pids, pid)
		waitServed(t, res, 500)
	}
	stop()
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load during the upgrades: %s", res)
	}
	t.Logf("3 upgrades under 64 connections: %s; master pids %v", res, pids)
}

// An upgrade to a config whose handler cannot start fails with the
// reason; the old master serves on.
func TestUpgradeToBrokenConfigKeepsServing(t *testing.T) {
	s := startServer(t, httpConfig)
	before := masterPID(t, s)
	good, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "env: {E2E_HANDLER: http}", "env: {E2E_HANDLER: boot-failure}", 1)
	if err := os.WriteFile(s.config, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := s.drover("upgrade", "-c", s.config)
	if err == nil || !strings.Contains(out, "upgrade failed") || !strings.Contains(out, "keeps serving") ||
		!strings.Contains(out, "failed to start") {
		t.Fatalf("upgrade to a broken handler: %v\n%s", err, out)
	}
	if pid := masterPID(t, s); pid != before {
		t.Fatalf("master pid %d after a failed upgrade, want the old %d", pid, before)
	}
	if got := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(got, "Hello, World!") {
		t.Fatalf("after the failed upgrade: %q", got)
	}
	// A config that no longer loads: the reason names the file and line.
	if err := os.WriteFile(s.config, []byte("worker_nun: 2\n"+string(good)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = s.drover("upgrade", "-c", s.config)
	if err == nil || !strings.Contains(out, s.config+`:1: unknown key "worker_nun" (did you mean "worker_num"?)`) {
		t.Fatalf("upgrade to an invalid config: %v\n%s", err, out)
	}
	if pid := masterPID(t, s); pid != before {
		t.Fatalf("master pid %d after a failed upgrade, want the old %d", pid, before)
	}
	// Fixed, the next upgrade goes through.
	os.WriteFile(s.config, good, 0o644)
	if out, err := s.drover("upgrade", "-c", s.config); err != nil {
		t.Fatalf("upgrade after the fix: %v\n%s", err, out)
	}
}

// Stream connections survive an upgrade: one open on the old master gets
// the answer to what it sent; new ones land on the new master's workers.
func TestUpgradeStreamConnections(t *testing.T) {
	s := startServer(t, commandsConfig)
	old := dial(t, s.addrs[0])
	who, err := old.roundTrip("whoami")
	if err != nil {
		t.Fatal(err)
	}
	oldWorker := pidFrom(t, who)
	old.c.Write(frame("slow 300")) // in flight across the upgrade
	done := make(chan string, 1)
	go func() {
		out, err := s.drover("upgrade", "-c", s.config)
		if err != nil {
			out += err.Error()
		}
		done <- out
	}()
	old.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := old.read(); err != nil || got != "slow 300" {
		t.Fatalf("answer on the old master's connection: %q, %v", got, err)
	}
	if out := <-done; !strings.Contains(out, "upgraded in") {
		t.Fatalf("drover upgrade: %s", out)
	}
	fresh := dial(t, s.addrs[0])
	who, err = fresh.roundTrip("whoami")
	if err != nil {
		t.Fatal(err)
	}
	if pidFrom(t, who) == oldWorker || alive(oldWorker) {
		t.Fatalf("a new connection after the upgrade reached %q; the old worker %d should be gone", who, oldWorker)
	}
}
