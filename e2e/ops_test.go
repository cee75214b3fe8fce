package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opsConfig logs to a file in the test's directory; {{log}} is replaced
// by the test.
const opsConfig = `
worker_num: 2
worker:
  cmd: [{{bin}}/echo]
log_file: {{log}}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: length
    package_length_type: N
    package_body_offset: 4
`

// startDaemon starts s with `drover start -d`, which returns once the
// master serves (its log goes to log_file, not to a pipe the harness
// reads). Clean-up kills the tree and fails the test on a race report in
// any of logs.
func startDaemon(t *testing.T, s *server, logs ...string) []statusRow {
	t.Helper()
	out, err := s.drover("start", "-d", "-c", s.config)
	if err != nil {
		t.Fatalf("drover start -d: %v\n%s", err, out)
	}
	var pid int
	if i := strings.Index(out, "(pid "); i >= 0 {
		fmt.Sscanf(out[i:], "(pid %d", &pid)
	}
	if pid <= 0 {
		t.Fatalf("drover start -d printed no master pid: %q", out)
	}
	t.Cleanup(func() {
		pids := []int{pid}
		if out, err := s.drover("status", "--json", "-c", s.config); err == nil {
			var rows []statusRow
			json.Unmarshal([]byte(out), &rows)
			pids = append(pids, allPIDs(rows)...)
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		if left := waitExited(pids, 5*time.Second); len(left) > 0 {
			t.Errorf("processes %v outlived the test's clean-up", left)
		}
		for _, l := range logs {
			if b, _ := os.ReadFile(l); strings.Contains(string(b), "DATA RACE") {
				t.Errorf("the race detector reported a data race (%s):\n%s", l, b)
			} else if t.Failed() {
				t.Logf("%s:\n%s", l, b)
			}
		}
	})
	return s.status()
}

// readLogFile returns the JSON lines of a log file; a line that is not a
// whole JSON object fails the test.
func readLogFile(t *testing.T, path string) []logEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("%s: not a whole JSON line: %q", filepath.Base(path), sc.Text())
			continue
		}
		out = append(out, e)
	}
	return out
}

func countMsg(es []logEntry, msg string) int {
	n := 0
	for _, e := range es {
		if e.msg() == msg {
			n++
		}
	}
	return n
}

// TestReopenLogsAfterRename rotates log_file the way logrotate does
// (rename, then reopen-logs): the master's lines and the manager's, which
// the master copies, go to the new file from then on.
func TestReopenLogsAfterRename(t *testing.T) {
	s := newServer(t, strings.ReplaceAll(opsConfig, "{{log}}", "{{dir}}/drover.log"))
	logPath, rotated := filepath.Join(s.dir, "drover.log"), filepath.Join(s.dir, "drover.log.1")
	startDaemon(t, s, logPath, rotated)

	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	out, err := s.drover("reopen-logs", "-c", s.config)
	if err != nil || strings.TrimSpace(out) != "logs reopened: "+logPath {
		t.Fatalf("drover reopen-logs: %v\n%s", err, out)
	}
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload: %v\n%s", err, out)
	}
	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("drover stop: %v\n%s", err, out)
	}

	old, cur := readLogFile(t, rotated), readLogFile(t, logPath)
	if countMsg(old, "drover ready") != 1 {
		t.Errorf("the renamed file lacks the lines before the rotation")
	}
	for _, msg := range []string{"log file reopened", "reload done", "drover stopped"} {
		if n, o := countMsg(cur, msg), countMsg(old, msg); n != 1 || o != 0 {
			t.Errorf("%q: %d times in the new file, %d in the renamed one (want 1 and 0)", msg, n, o)
		}
	}
	// The manager's lines come through the master's log output.
	if countMsg(cur, "successor started") == 0 || countMsg(old, "successor started") != 0 {
		t.Errorf("the manager's lines of the reload are not (only) in the new file")
	}
}

// TestReopenLogsFailureKeepsTheOldFile: with log_file's directory gone,
// reopen-logs fails with the reason and drover logs on in the old file.
func TestReopenLogsFailureKeepsTheOldFile(t *testing.T) {
	s := newServer(t, strings.ReplaceAll(opsConfig, "{{log}}", "{{dir}}/log/drover.log"))
	if err := os.Mkdir(filepath.Join(s.dir, "log"), 0o700); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(s.dir, "log.old", "drover.log")
	startDaemon(t, s, moved)
	if err := os.Rename(filepath.Join(s.dir, "log"), filepath.Join(s.dir, "log.old")); err != nil {
		t.Fatal(err)
	}
	out, err := s.drover("reopen-logs", "-c", s.config)
	if err == nil || !strings.Contains(out, "no such file or directory") || !strings.Contains(out, "still go to the file open before") {
		t.Fatalf("drover reopen-logs without the log directory: %v\n%s", err, out)
	}
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload: %v\n%s", err, out)
	}
	es := readLogFile(t, moved)
	if countMsg(es, "log file not reopened; logging to the old file") != 1 || countMsg(es, "reload done") != 1 {
		t.Errorf("the old file lacks the failed reopen or the reload")
	}
	if _, err := os.Stat(filepath.Join(s.dir, "log")); err == nil {
		t.Errorf("a failed reopen created the log directory")
	}
}

// TestReopenLogsWithoutLogFile: logging to stderr, there is nothing to
// reopen, and the command says so without failing.
func TestReopenLogsWithoutLogFile(t *testing.T) {
	s := startServer(t, echoConfig)
	out, err := s.drover("reopen-logs", "-c", s.config)
	if err != nil || !strings.Contains(out, "no log file to reopen") {
		t.Fatalf("drover reopen-logs: %v\n%s", err, out)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// livePID returns the pid of a running process that is not drover; it is
// killed at clean-up.
func livePID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestStalePidFileDoesNotBlockStart: a pid file naming a dead process, a
// live process that is not a drover master, or no pid at all is removed,
// logged, and replaced by the new master's.
func TestStalePidFileDoesNotBlockStart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content func() string
		cause   string
	}{
		{"dead process", func() string { return strconv.Itoa(deadPID(t)) }, "no process has pid"},
		{"not a drover master", func() string { return strconv.Itoa(livePID(t)) }, "not a drover master"},
		{"garbage", func() string { return "hello\n" }, "not a pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, echoConfig+"pid_file: {{dir}}/drover.pid\n")
			pidFile := filepath.Join(s.dir, "drover.pid")
			stale := tc.content()
			if err := os.WriteFile(pidFile, []byte(stale), 0o644); err != nil {
				t.Fatal(err)
			}
			ready := s.subscribe()
			if err := s.start(); err != nil {
				t.Fatal(err)
			}
			e := s.waitLog(ready, 60*time.Second, "drover ready", func(e logEntry) bool {
				return e.msg() == "drover ready" || e.msg() == "drover failed"
			})
			if e.msg() != "drover ready" {
				t.Fatalf("drover did not start over a stale pid file: %s", e.str("error"))
			}
			if !s.hasLog(func(e logEntry) bool {
				return e.msg() == "stale pid file removed; the new one is written once drover serves" &&
					e.str("pid_file") == pidFile && strings.Contains(e.str("cause"), tc.cause)
			}) {
				t.Errorf("no log line about the stale pid file (cause %q)", tc.cause)
			}
			master := s.status()[0].PID
			if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(master) {
				t.Errorf("pid file says %q, the master is %d", b, master)
			}
		})
	}
}

// TestPidFileOfLiveMasterBlocksSecondStart: while a master runs, a second
// start with the same config — or with another config sharing its pid
// file — is refused with the pid and how to stop it; the first one keeps
// serving and keeps its pid file.
func TestPidFileOfLiveMasterBlocksSecondStart(t *testing.T) {
	s := startServer(t, echoConfig+"pid_file: {{dir}}/drover.pid\n")
	pidFile := filepath.Join(s.dir, "drover.pid")
	master := s.status()[0].PID

	out, err := s.drover("start", "-c", s.config)
	want := fmt.Sprintf("drover is already running with this config (master pid %d, pid file %s): stop it first with `drover stop -c %s`",
		master, pidFile, s.config)
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("second start with the same config: %v\n%s\nwant: %s", err, out, want)
	}

	// Another config (and runtime directory) naming the same pid file: the
	// control socket cannot tell, the pid file does.
	other := newServer(t, echoConfig+"pid_file: "+pidFile+"\n")
	out, err = other.drover("start", "-c", other.config)
	if err == nil || !strings.Contains(out, fmt.Sprintf("drover is already running (master pid %d, named by pid file %s)", master, pidFile)) ||
		!strings.Contains(out, fmt.Sprintf("kill -TERM %d", master)) {
		t.Fatalf("start with another config sharing the pid file: %v\n%s", err, out)
	}

	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(master) {
		t.Errorf("pid file says %q after the refused starts, the master is %d", b, master)
	}
	c := dial(t, s.addrs[0])
	if got, err := c.roundTrip("still"); err != nil || got != "still" {
		t.Fatalf("first instance after the refused starts: %q, %v", got, err)
	}
}
