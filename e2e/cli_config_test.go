package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Flags of drover start beat the file's values (configuration.md): the
// file asks for 1 worker, error-level logs and a daemon; the command line
// for 3 workers, info-level logs and the foreground. Started in the
// foreground with info logs is what startVia waits for ("drover ready" on
// stderr), and status lists 3 workers.
func TestStartFlagsOverrideTheFile(t *testing.T) {
	s := newServer(t, `
worker_num: 1
log_level: error
daemonize: true
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	s.startVia(droverBin, "start", "-c", s.config, "--worker-num", "3", "--log-level", "info", "--daemonize=false")
	if n := len(pidsOf(s.status(), "worker")); n != 3 {
		t.Fatalf("%d workers with --worker-num 3 over the file's worker_num: 1, want 3", n)
	}
	wantGetOK(t, httpURL(s, "/"))
}

// A flag's value is checked as the file's would be, and the problem named
// by the key, without a file and line (configuration.md, Error messages).
func TestStartFlagIsChecked(t *testing.T) {
	s := newServer(t, httpConfig)
	out, err := s.drover("start", "-c", s.config, "--worker-num", "0")
	if err == nil || !strings.Contains(out, "worker_num: 0 is out of range (want 1 to 1024)") {
		t.Fatalf("start --worker-num 0: %v\n%s", err, out)
	}
}

// A listener address that passes the config check but cannot be bound is
// reported like any problem of the file: "<file>:<line>: listeners[N].address:
// <what> (<how to fix>)", once the master tries to bind it.
func TestUnusableListenerAddressNamesFileAndLine(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	sock, err := os.MkdirTemp("", "drsock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sock)
	sock = filepath.Join(sock, "app.sock")
	heldUnix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer heldUnix.Close()
	for _, c := range []struct {
		name, addr, want string
	}{
		{"in use", "tcp://" + held.Addr().String(), held.Addr().String() + " is already in use by another socket ("},
		// TEST-NET-1 (RFC 5737): no interface of this machine has it.
		{"not local", "tcp://192.0.2.1:18999", "192.0.2.1:18999 is not an address of this machine ("},
		// A live socket file is not removed as a stale one.
		{"unix in use", "unix://" + sock, sock + " is already in use: a process accepts connections on it ("},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, fmt.Sprintf(`
worker_num: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
  - address: %s
    protocol: http
`, c.addr))
			out, err := s.drover("start", "-c", s.config)
			if err == nil {
				t.Fatalf("start with an unusable address succeeded:\n%s", out)
			}
			want := "drover.yaml:9: listeners[1].address: " + c.want
			if !strings.Contains(out, want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

// A daemon started with -d keeps the other flags: the file's worker_num is
// 1, the command line's 2, and the master in the background runs 2.
func TestDaemonKeepsTheFlags(t *testing.T) {
	s := newServer(t, `
worker_num: 1
log_file: {{dir}}/drover.log
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	out, err := s.drover("start", "-d", "-c", s.config, "--worker-num", "2")
	t.Cleanup(func() {
		var rows []statusRow
		if out, err := s.drover("status", "--json", "-c", s.config); err == nil {
			json.Unmarshal([]byte(out), &rows)
		}
		pids := allPIDs(rows)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		if left := waitExited(pids, 5*time.Second); len(left) > 0 {
			t.Errorf("processes %v outlived the test's clean-up", left)
		}
	})
	if err != nil {
		t.Fatalf("drover start -d --worker-num 2: %v\n%s", err, out)
	}
	if n := len(pidsOf(s.status(), "worker")); n != 2 {
		t.Fatalf("the daemon runs %d workers with --worker-num 2 over the file's worker_num: 1, want 2", n)
	}
}

// drover check validates a config without starting anything (nginx -t): a
// valid one exits 0 and says what it checked; no process, socket or
// runtime directory is left behind.
func TestCheckValidConfig(t *testing.T) {
	s := newServer(t, `
worker_num: ${E2E_CHECK_WORKERS:-3}
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http}
listeners:
  - address: tcp://127.0.0.1:${E2E_CHECK_PORT}
    protocol: http
`)
	s.env = append(s.env, "E2E_CHECK_PORT=18080")
	out, err := s.drover("check", "-c", s.config)
	if err != nil {
		t.Fatalf("drover check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"workers:      3 × " + helperPath,
		"listeners:    tcp://127.0.0.1:18080 (http)",
		s.config + ": the configuration is valid",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("drover check output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dir, "drover")); !os.IsNotExist(err) {
		t.Errorf("drover check made the runtime directory (%v): it must start nothing", err)
	}
}

// An invalid config exits 1 with every problem as file:line: key: what is
// wrong (how to fix), and a variable used without a default that is not
// set is one of them.
func TestCheckInvalidConfig(t *testing.T) {
	s := newServer(t, `
wroker_num: 2
worker:
  cmd: [{{helper}}]
listeners:
  - address: tcp://127.0.0.1:${E2E_CHECK_UNSET_PORT}
    protocol: htp
`)
	out, err := s.drover("check", "-c", s.config)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("drover check of a bad config: %v (want exit status 1)\n%s", err, out)
	}
	for _, want := range []string{
		s.config + `:2: unknown key "wroker_num" (did you mean "worker_num"?)`,
		s.config + `:6: listeners[0].address: ${E2E_CHECK_UNSET_PORT} is not set in drover's environment (export E2E_CHECK_UNSET_PORT=..., give a default with ${E2E_CHECK_UNSET_PORT:-value}, or write $${ for a literal ${)`,
		s.config + `:7: listeners[0].protocol: unknown value "htp" (want http, length, eof or raw)`,
		s.config + ": the configuration is not valid (3 problems)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("drover check output lacks %q:\n%s", want, out)
		}
	}
	if out, err := s.drover("check", "-c", filepath.Join(s.dir, "nope.yaml")); err == nil || !strings.Contains(out, "no such file") {
		t.Errorf("drover check of a missing file: %v\n%s", err, out)
	}
}
