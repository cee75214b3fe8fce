package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const echoConfig = `
worker_num: 2
worker:
  cmd: [{{bin}}/echo]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: length
    package_length_type: N
    package_length_offset: 0
    package_body_offset: 4
`

const commandsConfig = `
worker_num: 2
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: commands}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: length
    package_length_type: N
    package_body_offset: 4
    package_max_length: 100K
`

// client is a length-protocol client connection.
type client struct {
	t *testing.T
	c net.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", tcpAddr(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

// roundTrip sends body as one packet and returns the body of the answer.
func (c *client) roundTrip(body string) (string, error) {
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(frame(body)); err != nil {
		return "", err
	}
	return c.read()
}

func (c *client) read() (string, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
		return "", err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c.c, body); err != nil {
		return "", err
	}
	return string(body), nil
}

func TestEchoRandomPacketsOver50Connections(t *testing.T) {
	s := startServer(t, echoConfig)
	const conns, packets = 50, 1000
	parallel(t, conns, func(i int) error {
		c, err := net.Dial("tcp", tcpAddr(s.addrs[0]))
		if err != nil {
			return err
		}
		defer c.Close()
		rng := rand.New(rand.NewSource(int64(i)))
		// 20 packets a connection, written while answers are read back.
		var sent [][]byte
		for j := 0; j < packets/conns; j++ {
			body := make([]byte, 1+rng.Intn(64<<10))
			rng.Read(body)
			sent = append(sent, append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
		}
		go func() {
			for _, p := range sent {
				if _, err := c.Write(p); err != nil {
					return
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		for j, p := range sent {
			got := make([]byte, len(p))
			if _, err := io.ReadFull(c, got); err != nil {
				return fmt.Errorf("conn %d packet %d: %v", i, j, err)
			}
			if !bytes.Equal(got, p) {
				return fmt.Errorf("conn %d packet %d: answer differs from what was sent", i, j)
			}
		}
		return nil
	})
	rows := s.status()
	var served uint64
	for _, r := range rows {
		served += r.Requests
	}
	// Every packet is one event; each connection also had connect and close.
	if served < packets {
		t.Errorf("workers report %d events served, want at least %d", served, packets)
	}
}

func TestStatusAndStop(t *testing.T) {
	s := startServer(t, echoConfig)
	rows := s.status()
	roles := map[string]int{}
	for _, r := range rows {
		roles[r.Role]++
		if r.PID <= 0 || r.State == "" {
			t.Errorf("row without pid or state: %+v", r)
		}
	}
	if roles["master"] != 1 || roles["manager"] != 1 || roles["worker"] != 2 {
		t.Fatalf("status roles %v, want 1 master, 1 manager, 2 workers", roles)
	}
	// The Go echo handler is launched through go-plugin (launch: auto), and
	// its control service reports Go runtime figures.
	for _, r := range rows {
		if r.Role == "worker" && (r.Launch != "plugin" || r.Runtime == nil || r.Runtime.Goroutines == 0) {
			t.Errorf("worker %d: launch %q, go_runtime %+v; want plugin with runtime stats", r.ID, r.Launch, r.Runtime)
		}
	}
	// The table form names every process too.
	out, err := s.drover("status", "-c", s.config)
	if err != nil || strings.Count(out, "worker ") < 2 || !strings.Contains(out, "manager") {
		t.Fatalf("drover status: %v\n%s", err, out)
	}
	// Without -c, the only instance of this user is found.
	if out, err := s.drover("status", "--json"); err != nil || !strings.Contains(out, `"manager"`) {
		t.Fatalf("drover status without -c: %v\n%s", err, out)
	}
	pids := allPIDs(rows)
	out, err = s.drover("stop", "-c", s.config)
	if err != nil {
		t.Fatalf("drover stop: %v\n%s", err, out)
	}
	if !strings.Contains(out, "drover stopped") {
		t.Errorf("drover stop printed %q", out)
	}
	// stop returns once the tree is gone: nothing may be left right now.
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d still alive after drover stop returned", p)
		}
	}
	<-s.exited
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("master exit code %d, want 0", code)
	}
	if out, err := s.drover("status", "-c", s.config); err == nil {
		t.Errorf("status after stop succeeded:\n%s", out)
	}
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pid") || strings.HasSuffix(e.Name(), ".sock") {
			t.Errorf("%s left behind after stop", e.Name())
		}
	}
}

func TestKillWorker(t *testing.T) {
	s := startServer(t, commandsConfig)
	a, b := dial(t, s.addrs[0]), dial(t, s.addrs[0])
	// Find which worker each connection is bound to (dispatch mode 2).
	wa, _ := a.roundTrip("whoami")
	wb, _ := b.roundTrip("whoami")
	if wa == wb {
		// Both on one worker: open more until one lands on the other.
		for i := 0; i < 20 && wa == wb; i++ {
			b = dial(t, s.addrs[0])
			wb, _ = b.roundTrip("whoami")
		}
	}
	if wa == wb {
		t.Fatalf("every connection went to %q; dispatch mode 2 should spread them", wa)
	}
	victim := pidFrom(t, wa)
	logs := s.subscribe()
	// An event in flight at the victim when it dies: the handler answers
	// "sleeping" and then holds the event.
	if got, err := a.roundTrip("sleep"); err != nil || got != "sleeping" {
		t.Fatalf("sleep: %q, %v", got, err)
	}
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The connection with the event in flight is closed, with a reason in the log.
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.read(); err == nil {
		t.Fatal("connection with an event in flight at the killed worker got an answer")
	}
	s.waitLog(logs, 5*time.Second, "the failed connection", func(e logEntry) bool {
		return e.msg() == "connection closed" && strings.Contains(e.str("reason"), "went away") && e.str("pid") == strconv.Itoa(victim)
	})
	// The other connection never noticed.
	if got, err := b.roundTrip("hello"); err != nil || got != "hello" {
		t.Fatalf("other connection: %q, %v", got, err)
	}
	e := s.waitLog(logs, 5*time.Second, "the replacement worker", func(e logEntry) bool {
		return e.msg() == "worker ready" && e.str("pid") != strconv.Itoa(victim)
	})
	if d := time.Since(killed); d > time.Second {
		t.Errorf("replacement ready %s after the kill, want within 1s", d)
	}
	t.Logf("worker %d killed; successor pid %s ready after %s", victim, e.str("pid"), time.Since(killed))
	// New connections are served by the full pool again.
	c := dial(t, s.addrs[0])
	if got, err := c.roundTrip("again"); err != nil || got != "again" {
		t.Fatalf("new connection after the kill: %q, %v", got, err)
	}
	rows := s.status()
	restarts := 0
	for _, r := range rows {
		restarts += r.Restarts
		if r.PID == victim {
			t.Errorf("status still lists the killed pid %d", victim)
		}
	}
	if restarts != 1 {
		t.Errorf("status shows %d restarts, want 1", restarts)
	}
}

func pidFrom(t *testing.T, whoami string) int {
	t.Helper()
	f := strings.Fields(whoami)
	if len(f) != 4 {
		t.Fatalf("whoami answered %q", whoami)
	}
	pid, _ := strconv.Atoi(f[3])
	return pid
}

func TestKillManager(t *testing.T) {
	s := startServer(t, echoConfig)
	rows := s.status()
	mgr := pidsOf(rows, "manager")[0]
	oldWorkers := pidsOf(rows, "worker")
	logs := s.subscribe()
	killed := time.Now()
	syscall.Kill(mgr, syscall.SIGKILL)
	s.waitLog(logs, 5*time.Second, "a new manager", func(e logEntry) bool { return e.msg() == "manager started" })
	ready := 0
	s.waitLog(logs, 5*time.Second, "two new workers", func(e logEntry) bool {
		if e.msg() == "worker ready" {
			ready++
		}
		return ready == 2
	})
	c := dial(t, s.addrs[0])
	if got, err := c.roundTrip("back"); err != nil || got != "back" {
		t.Fatalf("after the manager was killed: %q, %v", got, err)
	}
	if d := time.Since(killed); d > 2*time.Second {
		t.Errorf("service back %s after the manager was killed, want within 2s", d)
	}
	t.Logf("manager %d killed; serving again after %s", mgr, time.Since(killed))
	// The old manager's workers died with it.
	waitGone(t, oldWorkers, 2*time.Second)
}

func TestKillMasterLeavesNoProcess(t *testing.T) {
	s := startServer(t, echoConfig)
	pids := allPIDs(s.status())
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	d := waitGone(t, pids, 2*time.Second)
	t.Logf("whole tree gone %s after kill -9 of the master", d)
}

func TestPacketOverMaxLengthClosesOnlyThatConnection(t *testing.T) {
	s := startServer(t, commandsConfig)
	good := dial(t, s.addrs[0])
	bad := dial(t, s.addrs[0])
	logs := s.subscribe()
	bad.c.Write(binary.BigEndian.AppendUint32(nil, 200<<10)) // declares 200 KiB > 100K
	bad.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bad.c.Read(make([]byte, 1)); err == nil {
		t.Fatal("over-long packet was not refused")
	}
	s.waitLog(logs, 5*time.Second, "the over-long packet", func(e logEntry) bool {
		return e.msg() == "connection closed" && strings.Contains(e.str("reason"), "package_max_length")
	})
	if got, err := good.roundTrip("fine"); err != nil || got != "fine" {
		t.Fatalf("other connection: %q, %v", got, err)
	}
}

func TestGarbageFrameFromWorker(t *testing.T) {
	s := startServer(t, commandsConfig)
	a := dial(t, s.addrs[0])
	w, _ := a.roundTrip("whoami")
	victim := pidFrom(t, w)
	logs := s.subscribe()
	a.c.Write(frame("garbage"))
	e := s.waitLog(logs, 5*time.Second, "the protocol violation", func(e logEntry) bool {
		return e.msg() == "worker broke the frame protocol; killing it and starting a successor"
	})
	if e.str("pid") != strconv.Itoa(victim) || e.str("reason") == "" {
		t.Errorf("log line names pid %s reason %q, want pid %d and a reason", e.str("pid"), e.str("reason"), victim)
	}
	s.waitLog(logs, 5*time.Second, "the successor", func(e logEntry) bool {
		return e.msg() == "worker ready" && e.str("pid") != strconv.Itoa(victim)
	})
	waitGone(t, []int{victim}, 2*time.Second)
	c := dial(t, s.addrs[0])
	if got, err := c.roundTrip("ok"); err != nil || got != "ok" {
		t.Fatalf("after the garbage frame: %q, %v", got, err)
	}
}

func TestBadConfigIsRefusedBeforeStart(t *testing.T) {
	s := newServer(t, `
worker_num: 2
wroker_num: 3
worker:
  cmd: [{{bin}}/no-such-handler]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: htp
log_format: text # the messages as a terminal shows them (json escapes their quotes)
`)
	out, err := s.drover("start", "-c", s.config)
	if err == nil {
		t.Fatalf("start with a bad config succeeded:\n%s", out)
	}
	for _, want := range []string{
		`drover.yaml:3: unknown key "wroker_num" (did you mean "worker_num"?)`,
		`drover.yaml:5: worker.cmd:`,
		`drover.yaml:8: listeners[0].protocol: unknown value "htp"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(s.dir); len(entries) != 1 {
		t.Errorf("a refused start left files behind: %v", entries)
	}
}

func TestBootFailureFailsStartWithReason(t *testing.T) {
	s := newServer(t, `
worker_num: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: boot-failure}
  start_timeout: 5s
listeners:
  - address: tcp://127.0.0.1:0
    protocol: raw
`)
	out, err := s.drover("start", "-c", s.config)
	if err == nil {
		t.Fatalf("start with a failing handler succeeded:\n%s", out)
	}
	if !strings.Contains(out, "exited with code 78") || !strings.Contains(out, "cannot connect to database") {
		t.Errorf("start error does not give the exit code and stderr:\n%s", out)
	}
}

func TestRoundRobinSpreadsOneConnection(t *testing.T) {
	s := startServer(t, commandsConfig+"\ndispatch_mode: 1\n")
	c := dial(t, s.addrs[0])
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		w, err := c.roundTrip("whoami")
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.Fields(w)[1]] = true
	}
	if len(seen) != 2 {
		t.Fatalf("round-robin used workers %v, want both", seen)
	}
}

func TestPythonWorkerWithoutSDK(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: the protocol-only worker needs it (CI installs it)")
	}
	wd, _ := os.Getwd()
	s := startServer(t, `
worker_num: 2
worker:
  cmd: [`+py+`, `+wd+`/../examples/python/echo_worker.py]
  launch: exec
listeners:
  - address: tcp://127.0.0.1:0
    protocol: eof
    package_eof: "\r\n"
`)
	c, err := net.Dial("tcp", tcpAddr(s.addrs[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("one\r\ntwo\r\n"))
	got := make([]byte, 10)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "one\r\ntwo\r\n" {
		t.Fatalf("python worker echoed %q, %v", got, err)
	}
	for _, r := range s.status() {
		if r.Role == "worker" && r.State != "ready" {
			t.Errorf("python worker %d is %s", r.ID, r.State)
		}
	}
}

func TestUnixListenerAndDaemonize(t *testing.T) {
	s := newServer(t, `
worker_num: 1
worker:
  cmd: [{{bin}}/echo]
log_file: {{dir}}/drover.log
listeners:
  - address: unix://{{dir}}/echo.sock
    protocol: eof
    package_eof: "\n"
`)
	out, err := s.drover("start", "-d", "-c", s.config)
	if err != nil {
		t.Fatalf("start -d: %v\n%s", err, out)
	}
	if !strings.Contains(out, "started in the background") {
		t.Errorf("start -d printed %q", out)
	}
	rows := s.status()
	t.Cleanup(func() {
		for _, p := range allPIDs(rows) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	c, err := net.Dial("unix", s.dir+"/echo.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("line one\nline two\n"))
	got := make([]byte, 18)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "line one\nline two\n" {
		t.Fatalf("unix echo: %q, %v", got, err)
	}
	// The pid file names the daemon's master.
	pidFiles, _ := filepathGlob(s.dir, "drover/*.pid")
	if len(pidFiles) != 1 {
		t.Fatalf("pid files: %v", pidFiles)
	}
	b, _ := os.ReadFile(pidFiles[0])
	if strings.TrimSpace(string(b)) != strconv.Itoa(rows[0].PID) {
		t.Errorf("pid file says %q, master pid is %d", b, rows[0].PID)
	}
	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	waitGone(t, allPIDs(rows), 2*time.Second)
	if _, err := os.Stat(s.dir + "/echo.sock"); err == nil {
		t.Error("unix socket file left behind after stop")
	}
	logText, _ := os.ReadFile(s.dir + "/drover.log")
	if !strings.Contains(string(logText), "drover ready") || !strings.Contains(string(logText), "drover stopped") {
		t.Errorf("log_file lacks the lifecycle lines:\n%s", logText)
	}
}

func TestSecondStartIsRefused(t *testing.T) {
	s := startServer(t, echoConfig)
	out, err := s.drover("start", "-c", s.config)
	if err == nil || !strings.Contains(out, "already running") {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	c := dial(t, s.addrs[0])
	if got, err := c.roundTrip("still"); err != nil || got != "still" {
		t.Fatalf("first instance after the refused start: %q, %v", got, err)
	}
}

func TestSeveralReactorLoops(t *testing.T) {
	// Three loops: connections and workers land on different loops, so
	// answers, closes and done frames cross loops.
	s := startServer(t, commandsConfig+"\nreactor_num: 3\n")
	parallel(t, 30, func(i int) error {
		c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		cl := &client{t: t, c: c}
		for j := 0; j < 50; j++ {
			want := fmt.Sprintf("conn %d packet %d", i, j)
			if got, err := cl.roundTrip(want); err != nil || got != want {
				return fmt.Errorf("%q: got %q, %v", want, got, err)
			}
		}
		return nil
	})
	// A worker killed with events in flight fails them on whichever loop
	// owns their connections.
	a := dial(t, s.addrs[0])
	w, _ := a.roundTrip("whoami")
	if got, err := a.roundTrip("sleep"); err != nil || got != "sleeping" {
		t.Fatalf("sleep: %q, %v", got, err)
	}
	syscall.Kill(pidFrom(t, w), syscall.SIGKILL)
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.read(); err == nil {
		t.Fatal("connection with an event at the killed worker got an answer")
	}
}

func TestGracefulStopFinishesInFlightEvents(t *testing.T) {
	s := startServer(t, commandsConfig)
	c := dial(t, s.addrs[0])
	logs := s.subscribe()
	fifo, held, release := holdFIFO(t, s.dir)
	c.c.Write(frame("fifo " + fifo))
	// The event is in flight once the worker holds it (it opened the FIFO),
	// and stays so until the drain began (released below): no guess at how
	// long the stop takes to get there.
	held()
	stopped := s.droverAsync("stop", "-c", s.config)
	e := s.waitLog(logs, 5*time.Second, "the drain", func(e logEntry) bool { return e.msg() == "listeners closed; draining in-flight events" })
	if e.str("events_in_flight") != "1" {
		t.Errorf("drain started with %s events in flight, want 1", e.str("events_in_flight"))
	}
	// New connections are refused while the stop drains.
	if nc, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), time.Second); err == nil {
		nc.Close()
		t.Error("a new connection was accepted during the stop")
	}
	release()
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := c.read()
	if err != nil || got != "released" {
		t.Fatalf("in-flight answer during the stop: %q, %v", got, err)
	}
	if out := <-stopped; !strings.Contains(out, "drover stopped") {
		t.Fatalf("drover stop: %s", out)
	}
	<-s.exited
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("master exit code %d, want 0", code)
	}
}

func TestHeartbeatClosesIdleConnections(t *testing.T) {
	s := startServer(t, commandsConfig+"\nheartbeat_idle_time: 1\n")
	logs := s.subscribe()
	idle := dial(t, s.addrs[0])
	if got, err := idle.roundTrip("hi"); err != nil || got != "hi" {
		t.Fatalf("%q, %v", got, err)
	}
	idle.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.c.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection was not closed")
	}
	s.waitLog(logs, 5*time.Second, "the idle close", func(e logEntry) bool {
		return e.msg() == "connection closed" && strings.Contains(e.str("reason"), "heartbeat_idle_time")
	})
}

func TestMaxConnRefusesOverflow(t *testing.T) {
	s := startServer(t, commandsConfig+"\nmax_conn: 2\n")
	logs := s.subscribe()
	a, b := dial(t, s.addrs[0]), dial(t, s.addrs[0])
	for _, c := range []*client{a, b} {
		if got, err := c.roundTrip("in"); err != nil || got != "in" {
			t.Fatalf("%q, %v", got, err)
		}
	}
	third := dial(t, s.addrs[0])
	third.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third connection was served with max_conn 2")
	}
	s.waitLog(logs, 5*time.Second, "the refusal", func(e logEntry) bool { return strings.Contains(e.msg(), "max_conn reached") })
	if got, err := a.roundTrip("still"); err != nil || got != "still" {
		t.Fatalf("admitted connection after the refusal: %q, %v", got, err)
	}
}

func TestChecksumMismatchRefusesTheHandler(t *testing.T) {
	for _, launch := range []string{"exec", "plugin"} {
		t.Run(launch, func(t *testing.T) {
			s := newServer(t, `
worker_num: 1
worker:
  cmd: [{{bin}}/echo]
  launch: `+launch+`
  checksum: "`+strings.Repeat("ab", 32)+`"
  start_timeout: 5s
listeners:
  - address: tcp://127.0.0.1:0
    protocol: raw
`)
			out, err := s.drover("start", "-c", s.config)
			if err == nil {
				t.Fatalf("a handler with the wrong checksum started:\n%s", out)
			}
			if !strings.Contains(out, "checksum") || !strings.Contains(out, strings.Repeat("ab", 32)) {
				t.Errorf("the refusal does not name the checksum:\n%s", out)
			}
		})
	}
}

// Without -c, a command run where a drover.yaml is addresses the drover
// started with that file, not whichever one runs (it once stopped another
// app's drover from a directory whose own was not running).
func TestCommandsWithoutConfigUseTheDirectorysDroverYAML(t *testing.T) {
	s := startServer(t, httpConfig)
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "drover.yaml"), []byte(httpConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(droverBin, args...)
		cmd.Env, cmd.Dir = s.env, dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(other, "stop")
	if err == nil || !strings.Contains(out, filepath.Join(other, "drover.yaml")) {
		t.Fatalf("drover stop where another app's drover.yaml is: %v\n%s", err, out)
	}
	if out, err := run(s.dir, "status", "--json"); err != nil || !strings.Contains(out, `"manager"`) {
		t.Fatalf("drover status in the running drover's directory, without -c: %v\n%s", err, out)
	}
	if out, err := run(other+"/..", "status", "--json"); err != nil || !strings.Contains(out, `"manager"`) {
		t.Fatalf("drover status where no drover.yaml is, without -c (the only instance): %v\n%s", err, out)
	}
}
