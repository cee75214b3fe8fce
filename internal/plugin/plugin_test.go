package plugin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// hook records log entries and lets a test wait for one without polling.
type hook struct {
	mu      sync.Mutex
	entries []*logrus.Entry
	changed chan struct{} // closed and replaced on every entry
}

func newHook() *hook { return &hook{changed: make(chan struct{})} }

func (h *hook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *hook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, e)
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

func (h *hook) all() []*logrus.Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*logrus.Entry(nil), h.entries...)
}

// wait returns the first entry with message msg (or, for a handler's output
// line, output msg), failing the test after d.
func (h *hook) wait(t *testing.T, msg string, d time.Duration) *logrus.Entry {
	t.Helper()
	deadline := time.After(d)
	for {
		h.mu.Lock()
		for _, e := range h.entries {
			if e.Message == msg || e.Data["output"] == msg {
				h.mu.Unlock()
				return e
			}
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log entry %q within %v", msg, d)
		}
	}
}

func testLog(t *testing.T) (*logrus.Entry, *hook) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	h := newHook()
	l.AddHook(h)
	return l.WithField("worker_id", 7), h
}

// helperCmd returns the test binary as a handler playing role, with a fresh
// socket pair as fd 3 (ours is returned), its own process group and
// Pdeathsig, like the manager prepares a worker.
func helperCmd(t *testing.T, role string) (*exec.Cmd, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "DROVER_TEST_MARK=mark-"+role)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The child has its copy once started; ours goes at the end of the test.
	t.Cleanup(func() { theirs.Close() })
	return cmd, conn
}

// cleanupProcess kills the process group of p and waits for the exit.
func cleanupProcess(t *testing.T, p *Process) {
	t.Cleanup(func() {
		select {
		case <-p.Exited():
		default:
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.Exited()
		}
	})
}

// cleanupCmd kills whatever a failed Start may have left of cmd (nothing,
// if Start kept its promise) so a failing test leaks no process.
func cleanupCmd(t *testing.T, cmd *exec.Cmd) {
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestStartServeLifecycle(t *testing.T) {
	log, h := testLog(t)
	cmd, pair := helperCmd(t, "worker")
	cmd.Dir = t.TempDir()
	cleanupCmd(t, cmd)

	began := time.Now()
	p, err := Start(cmd, Options{
		Checksum:     fileSHA256(t, os.Args[0]),
		StartTimeout: 10 * time.Second,
		Log:          log,
	})
	if err != nil {
		t.Fatal(err)
	}
	cleanupProcess(t, p)
	t.Logf("start to attached: %v", time.Since(began))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	st, err := p.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Goroutines < 2 || st.HeapAlloc == 0 || st.HeapSys < st.HeapAlloc ||
		st.GOMAXPROCS < 1 || st.UptimeMS < 0 || st.UptimeMS > 60_000 {
		t.Errorf("Stats not sane: %+v", st)
	}

	// fd 3 is our socket pair, and Dir, Env and SysProcAttr were left alone.
	pair.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(pair)
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read report from fd 3: %v", err)
	}
	var rep report
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("report %q: %v", line, err)
	}
	want := report{FD3IsSocket: true, Cwd: cmd.Dir, Mark: "mark-worker", Pid: p.Pid(), Pgid: p.Pid()}
	if rep != want {
		t.Errorf("child reports %+v, want %+v", rep, want)
	}

	// Stdout before and after Serve ends up in the logs, and the control
	// connection does not notice.
	for _, msg := range []string{"early stdout", "late stdout"} {
		e := h.wait(t, msg, 10*time.Second)
		if e.Data["stream"] != "stdout" || e.Level != logrus.InfoLevel {
			t.Errorf("%q logged as %v %v", msg, e.Data, e.Level)
		}
	}
	if err := p.Health(ctx); err != nil {
		t.Fatalf("Health after stdout writes: %v", err)
	}

	if _, err := pair.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	var echo [1]byte
	if _, err := io.ReadFull(br, echo[:]); err != nil || echo[0] != 'x' {
		t.Fatalf("echo on fd 3: %q, %v", echo, err)
	}

	last := h.wait(t, "stderr line 24", 10*time.Second)
	if last.Data["stream"] != "stderr" || last.Data["worker_id"] != 7 || last.Data["pid"] != p.Pid() {
		t.Errorf("stderr line fields: %v", last.Data)
	}
	if e := h.wait(t, "level=warning msg=careful", time.Second); e.Level != logrus.WarnLevel {
		t.Errorf("logrus warning line logged at %v", e.Level)
	}
	tail := p.Tail()
	if len(tail) != DefaultTailLines || tail[0] != "stderr line 5" || tail[len(tail)-1] != "stderr line 24" {
		t.Errorf("Tail = %q", tail)
	}

	if err := p.RequestStop(ctx); err != nil {
		t.Fatalf("RequestStop: %v", err)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not exit after RequestStop")
	}
	if st := p.ExitState(); st == nil || !st.Success() {
		t.Fatalf("ExitState = %v, want exit status 0", st)
	}
	if err := p.Health(ctx); !errors.Is(err, ErrReleased) {
		t.Errorf("Health after exit = %v, want ErrReleased", err)
	}

	// go-plugin's internals are logged at Debug only, and were logged.
	var internal int
	for _, e := range h.all() {
		if e.Data["component"] == "go-plugin" {
			internal++
			if e.Level != logrus.DebugLevel {
				t.Errorf("go-plugin logged at %v: %s", e.Level, e.Message)
			}
		}
	}
	if internal == 0 {
		t.Error("no go-plugin debug lines")
	}
}

func TestChecksumMismatch(t *testing.T) {
	log, _ := testLog(t)
	cmd, _ := helperCmd(t, "worker")
	cleanupCmd(t, cmd)
	_, err := Start(cmd, Options{Checksum: strings.Repeat("ab", 32), Log: log})
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("err = %v, want ErrChecksumMismatch", err)
	}
	if !strings.Contains(err.Error(), fileSHA256(t, os.Args[0])) {
		t.Errorf("error does not name the actual sum: %v", err)
	}
	if cmd.Process != nil {
		t.Fatal("a process was started despite the checksum mismatch")
	}

	_, err = Start(cmd, Options{Checksum: "not-hex", Log: log})
	if err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("bad checksum: err = %v", err)
	}
}

func TestStartTimeoutKills(t *testing.T) {
	log, _ := testLog(t)
	cmd, _ := helperCmd(t, "silent")
	cleanupCmd(t, cmd)
	began := time.Now()
	_, err := Start(cmd, Options{StartTimeout: 500 * time.Millisecond, Log: log})
	took := time.Since(began)
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err = %v, want a *StartError timeout", err)
	}
	if took > 5*time.Second {
		t.Errorf("Start took %v with a 500ms timeout", took)
	}
	ws, ok := se.State.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("State = %v, want killed by SIGKILL", se.State)
	}
	// Reaped, and its group is gone: no orphan, no zombie.
	if err := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists: %v", cmd.Process.Pid, err)
	}
}

func TestStartCrashReportsExitAndTail(t *testing.T) {
	log, h := testLog(t)
	cmd, _ := helperCmd(t, "crash")
	cleanupCmd(t, cmd)
	_, err := Start(cmd, Options{StartTimeout: 10 * time.Second, Log: log})
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StartError", err)
	}
	if se.State == nil || se.State.ExitCode() != 78 {
		t.Errorf("State = %v, want exit status 78", se.State)
	}
	if !reflect.DeepEqual(se.Tail, []string{"boot failed: missing config"}) {
		t.Errorf("Tail = %q", se.Tail)
	}
	h.wait(t, "boot failed: missing config", time.Second)
}

func TestKilledChildReportsSignal(t *testing.T) {
	log, _ := testLog(t)
	cmd, _ := helperCmd(t, "worker")
	cleanupCmd(t, cmd)
	p, err := Start(cmd, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cleanupProcess(t, p)
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("Exited not closed after kill -9")
	}
	ws, ok := p.ExitState().Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("ExitState = %v, want killed by SIGKILL", p.ExitState())
	}
}

// TestStartOnCallerThread proves that cmd.Start runs on the goroutine that
// calls Start: the child's Pdeathsig fires when that goroutine's locked
// thread exits.
func TestStartOnCallerThread(t *testing.T) {
	log, _ := testLog(t)
	cmd, _ := helperCmd(t, "worker")
	cleanupCmd(t, cmd)
	started := make(chan *Process, 1)
	failed := make(chan error, 1)
	onThreadThatExits(func() {
		p, err := Start(cmd, Options{Log: log})
		if err != nil {
			failed <- err
			return
		}
		started <- p
	})
	var p *Process
	select {
	case p = <-started:
	case err := <-failed:
		t.Fatal(err)
	}
	cleanupProcess(t, p)
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("child outlived the thread that started it: cmd.Start ran elsewhere")
	}
	ws, _ := p.ExitState().Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("ExitState = %v, want SIGKILL from Pdeathsig", p.ExitState())
	}
}

// onThreadThatExits runs fn in a new goroutine locked to an OS thread that
// terminates when fn returns. The runtime never terminates the main thread
// (a goroutine exiting locked to it parks it instead), so a goroutine that
// lands there keeps it locked and retries from another one.
func onThreadThatExits(fn func()) {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if syscall.Gettid() != syscall.Getpid() {
			fn()
			return
		}
		done := make(chan struct{})
		onThreadThatExits(func() {
			defer close(done)
			fn()
		})
		<-done
		runtime.UnlockOSThread()
	}()
}

// TestReleaseKeepsProcess: Release drops the control connection and leaves
// the handler running (no go-plugin Shutdown, no kill).
func TestReleaseKeepsProcess(t *testing.T) {
	log, _ := testLog(t)
	cmd, pair := helperCmd(t, "worker")
	cleanupCmd(t, cmd)
	p, err := Start(cmd, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cleanupProcess(t, p)
	p.Release()
	p.Release()
	ctx := context.Background()
	if err := p.Health(ctx); !errors.Is(err, ErrReleased) {
		t.Errorf("Health after Release = %v, want ErrReleased", err)
	}
	// Still alive and serving fd 3.
	pair.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(pair)
	if _, err := br.ReadBytes('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Write([]byte{'y'}); err != nil {
		t.Fatal(err)
	}
	if b, err := br.ReadByte(); err != nil || b != 'y' {
		t.Fatalf("echo after Release: %q, %v", b, err)
	}
	select {
	case <-p.Exited():
		t.Fatalf("process exited after Release: %v", p.ExitState())
	default:
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	if ws := p.ExitState().Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGTERM {
		t.Errorf("ExitState = %v, want SIGTERM", p.ExitState())
	}
}

// TestServeWithoutCookie: running a handler by hand, Serve returns
// ErrNotPluginLaunch and prints nothing (go-plugin's message never appears).
func TestServeWithoutCookie(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=nocookie")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if string(out) != "true\n" || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want \"true\\n\" and nothing", out, stderr.String())
	}
}

func TestStartRejectsPreparedOutput(t *testing.T) {
	log, _ := testLog(t)
	cmd := exec.Command(os.Args[0])
	cmd.Stdout = io.Discard
	if _, err := Start(cmd, Options{Log: log}); err == nil || cmd.Process != nil {
		t.Fatalf("Start with cmd.Stdout set: err = %v, process %v", err, cmd.Process)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		line    string
		inPanic bool
		want    logrus.Level
		panics  bool
	}{
		{"hello", false, logrus.InfoLevel, false},
		{`time="2024" level=warning msg="x"`, false, logrus.WarnLevel, false},
		{"level=error msg=x", false, logrus.ErrorLevel, false},
		{"loglevel=error", false, logrus.InfoLevel, false},
		{`{"level":"debug","msg":"x"}`, false, logrus.DebugLevel, false},
		{`{"@level":"error","@message":"x"}`, false, logrus.ErrorLevel, false},
		{`{"level":"fatal"}`, false, logrus.ErrorLevel, false},
		{`{"not":"a log"}`, false, logrus.InfoLevel, false},
		{"[WARN] careful", false, logrus.WarnLevel, false},
		{"[some] bracket", false, logrus.InfoLevel, false},
		{"panic: boom", false, logrus.ErrorLevel, true},
		{"fatal error: all goroutines are asleep", false, logrus.ErrorLevel, true},
		{"goroutine 1 [running]:", true, logrus.ErrorLevel, true},
	} {
		got, panics := classify(tc.line, tc.inPanic)
		if got != tc.want || panics != tc.panics {
			t.Errorf("classify(%q, %v) = %v, %v; want %v, %v", tc.line, tc.inPanic, got, panics, tc.want, tc.panics)
		}
	}
}

func TestOutputRingAndLineWriter(t *testing.T) {
	log, h := testLog(t)
	o := newOutput(log, 3)
	w := &lineWriter{fn: func(s string) { o.line("stdout", s) }}
	for _, chunk := range []string{"a\nb", "\n", "c\r\nd\ne", "\n"} {
		w.Write([]byte(chunk))
	}
	if got := o.tail(); !reflect.DeepEqual(got, []string{"c", "d", "e"}) {
		t.Errorf("tail = %q", got)
	}
	if n := len(h.all()); n != 5 {
		t.Errorf("%d entries logged, want 5", n)
	}
	if got := newOutput(log, 0); len(got.tail()) != 0 {
		t.Error("zero ring kept lines")
	}
	if !isHandshakeLine("1|1|unix|/tmp/plugin-dir1/plugin2|grpc|") || isHandshakeLine("early stdout") ||
		isHandshakeLine("a|b|unix|x") {
		t.Error("isHandshakeLine")
	}
}
