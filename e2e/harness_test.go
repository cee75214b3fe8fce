// Package e2e drives the real drover binary: real process trees, real
// sockets on 127.0.0.1, real signals and kill -9. Tests synchronise on
// events (log lines, status replies, accepting sockets), never on sleeps.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	bin        string // directory with drover and the example handlers
	droverBin  string
	helperPath string // this test binary, which doubles as a handler
)

func TestMain(m *testing.M) {
	if role := os.Getenv("E2E_HANDLER"); role != "" {
		runHandler(role)
		return
	}
	dir, err := os.MkdirTemp("", "drbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	for _, pkg := range []string{"cmd/drover", "examples/echo", "examples/hello", "examples/tasks", "examples/hotcache"} {
		out := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-race", "-o", out, "../"+pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	droverBin = filepath.Join(dir, "drover")
	helperPath, _ = os.Executable()
	if err := buildPHPExt(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logEntry is one JSON log line of drover.
type logEntry map[string]any

func (e logEntry) msg() string { s, _ := e["msg"].(string); return s }

func (e logEntry) str(k string) string {
	switch v := e[k].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// server is a drover started by a test.
type server struct {
	t       *testing.T
	dir     string // short temp dir: config, sockets, runtime dir
	config  string
	cmd     *exec.Cmd
	env     []string
	addrs   []string // listener addresses as bound
	exited  chan struct{}
	mu      sync.Mutex
	lines   []string
	entries []logEntry
	subs    []chan logEntry
}

// startServer writes cfg (YAML; "{{bin}}" and "{{dir}}" are replaced) and
// starts drover on it in the foreground, waiting for its ready line.
func startServer(t *testing.T, cfg string) *server {
	t.Helper()
	s := newServer(t, cfg)
	ready := s.subscribe()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-ready:
			if e.msg() == "drover ready" {
				s.addrs = listenerAddrs(e)
				s.unsubscribe(ready)
				return s
			}
		case <-s.exited:
			t.Fatalf("drover exited before it was ready:\n%s", s.logText())
		case <-deadline:
			t.Fatalf("drover not ready after 60s:\n%s", s.logText())
		}
	}
}

func newServer(t *testing.T, cfg string) *server {
	t.Helper()
	dir, err := os.MkdirTemp("", "dr")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dir: dir, config: filepath.Join(dir, "drover.yaml"), exited: make(chan struct{})}
	cfg = strings.ReplaceAll(cfg, "{{bin}}", bin)
	cfg = strings.ReplaceAll(cfg, "{{dir}}", dir)
	cfg = strings.ReplaceAll(cfg, "{{helper}}", helperPath)
	cfg = withPHPExt(cfg)
	if !strings.Contains(cfg, "log_format") {
		cfg += "\nlog_format: json\n"
	}
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The race runtime sleeps a second at exit by default; every CLI call
	// would pay it.
	s.env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "GORACE=atexit_sleep_ms=50")
	// Root's runtime directory is /run/drover whatever XDG_RUNTIME_DIR
	// says: each test names its own.
	s.env = append(s.env, "DROVER_RUNTIME_DIR="+filepath.Join(dir, "drover"))
	t.Cleanup(s.cleanup)
	return s
}

func (s *server) start() error {
	s.cmd = exec.Command(droverBin, "start", "-c", s.config)
	s.cmd.Env = s.env
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	s.cmd.Stdout = os.Stdout
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go s.readLog(stderr)
	return nil
}

func (s *server) readLog(r interface{ Read([]byte) (int, error) }) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var e logEntry
		json.Unmarshal([]byte(line), &e)
		s.mu.Lock()
		s.lines = append(s.lines, line)
		if e != nil {
			s.entries = append(s.entries, e)
			for _, ch := range s.subs {
				select {
				case ch <- e:
				default:
				}
			}
		}
		s.mu.Unlock()
	}
	s.cmd.Wait()
	close(s.exited)
}

// subscribe returns a channel receiving every log entry from now on.
func (s *server) subscribe() chan logEntry {
	ch := make(chan logEntry, 4096)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch
}

func (s *server) unsubscribe(ch chan logEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.subs {
		if c == ch {
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			return
		}
	}
}

// waitLog waits for an entry from ch matching ok.
func (s *server) waitLog(ch chan logEntry, timeout time.Duration, what string, ok func(logEntry) bool) logEntry {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-ch:
			if ok(e) {
				return e
			}
		case <-deadline:
			s.t.Fatalf("no log line for %s within %s:\n%s", what, timeout, s.logText())
		}
	}
}

// hasLog reports whether any entry so far matches ok.
func (s *server) hasLog(ok func(logEntry) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if ok(e) {
			return true
		}
	}
	return false
}

func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// drover runs the CLI against this server's runtime dir.
func (s *server) drover(args ...string) (string, error) {
	cmd := exec.Command(droverBin, args...)
	cmd.Env = s.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// statusRow is one process of drover status --json.
type statusRow struct {
	Role     string `json:"role"`
	ID       int    `json:"id"`
	PID      int    `json:"pid"`
	State    string `json:"state"`
	Requests uint64 `json:"requests"`
	InFlight int    `json:"in_flight"`
	Queued   int    `json:"queued"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit"`
	Launch   string `json:"launch"`
	SDK      string `json:"sdk"`
	// Master only: open client connections.
	Connections int `json:"connections"`
	Runtime     *struct {
		Goroutines int `json:"goroutines"`
	} `json:"go_runtime"`

	// Master only: bytes of bodies and answers held (http_max_buffered).
	HTTPBuffered int64 `json:"http_buffered"`
}

func (s *server) status() []statusRow {
	s.t.Helper()
	out, err := s.drover("status", "--json", "-c", s.config)
	if err != nil {
		s.t.Fatalf("drover status: %v\n%s", err, out)
	}
	var rows []statusRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		s.t.Fatalf("drover status --json: %v\n%s", err, out)
	}
	return rows
}

// waitStatus polls drover status until ok holds for its rows; fatal,
// naming what it waited for, after 10 s.
func (s *server) waitStatus(what string, ok func(rows []statusRow) bool) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(s.status()) {
		if time.Now().After(deadline) {
			s.t.Fatalf("drover status never showed %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling status, not waiting for time to pass
	}
}

// inFlight is the number of events in flight at the processes of role
// ("" for all), as the master counts them: an event counts until it has
// read the worker's Done.
func inFlight(rows []statusRow, role string) int {
	n := 0
	for _, r := range rows {
		if role == "" || r.Role == role {
			n += r.InFlight
		}
	}
	return n
}

// inFlightAt is a waitStatus condition: n events in flight at process pid.
func inFlightAt(pid, n int) func([]statusRow) bool {
	return func(rows []statusRow) bool {
		i := slices.IndexFunc(rows, func(r statusRow) bool { return r.PID == pid })
		return i >= 0 && rows[i].InFlight == n
	}
}

func pidsOf(rows []statusRow, role string) []int {
	var pids []int
	for _, r := range rows {
		if r.Role == role && r.PID > 0 {
			pids = append(pids, r.PID)
		}
	}
	return pids
}

func allPIDs(rows []statusRow) []int {
	var pids []int
	for _, r := range rows {
		if r.PID > 0 {
			pids = append(pids, r.PID)
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// waitGone waits until none of pids is alive, failing after timeout.
func waitGone(t *testing.T, pids []int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if left := waitExited(pids, timeout); len(left) > 0 {
		t.Fatalf("processes %v still alive %s later", left, timeout)
	}
	return time.Since(start)
}

// waitExited waits up to timeout for every process of pids to exit and
// returns those still alive. A pidfd becomes readable when its process
// exits: an event, not a poll.
func waitExited(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	var left []int
	for _, p := range pids {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			continue // already reaped
		}
		for {
			ms := max(int(time.Until(deadline).Milliseconds()), 0)
			_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
			if err != unix.EINTR {
				break
			}
		}
		unix.Close(fd)
		if alive(p) {
			left = append(left, p)
		}
	}
	return left
}

func (s *server) cleanup() {
	if s.cmd != nil && s.cmd.Process != nil {
		var rows []statusRow
		if out, err := s.drover("status", "--json", "-c", s.config); err == nil {
			json.Unmarshal([]byte(out), &rows)
		}
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		pids := allPIDs(rows)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		// Children die with the master (Pdeathsig): wait until they have.
		if left := waitExited(pids, 5*time.Second); len(left) > 0 {
			s.t.Errorf("processes %v outlived the test's clean-up", left)
		}
	}
	if text := s.logText(); strings.Contains(text, "DATA RACE") {
		s.t.Errorf("the race detector reported a data race in drover or a handler:\n%s", text)
	} else if s.t.Failed() {
		s.t.Logf("drover log:\n%s", text)
	}
	os.RemoveAll(s.dir)
}

// listenerAddrs reads the bound addresses from the ready line.
func listenerAddrs(e logEntry) []string {
	var out []string
	if l, ok := e["listeners"].([]any); ok {
		for _, a := range l {
			out = append(out, fmt.Sprint(a))
		}
	}
	return out
}

// tcpAddr strips the scheme of a listener address.
func tcpAddr(a string) string { return strings.TrimPrefix(a, "tcp://") }

func filepathGlob(dir, pattern string) ([]string, error) {
	return filepath.Glob(filepath.Join(dir, pattern))
}

// parallel runs fn(0) … fn(n-1) on n goroutines and reports every error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
