package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every error of the CLI is printed once where its user reads it: a master
// that fails logs why ("drover failed", a structured line) and the CLI
// does not print the same error again on the same stream; a daemon's log
// file holds it once; an upgrade whose new master cannot load the config
// has the old master's log say why once.
func TestErrorsPrintedOnce(t *testing.T) {
	t.Run("start in the foreground, address in use", func(t *testing.T) {
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		s := newServer(t, strings.Replace(httpConfig, "127.0.0.1:0", held.Addr().String(), 1))
		out, err := s.drover("start", "-c", s.config)
		if err == nil {
			t.Fatalf("drover start on a port in use succeeded:\n%s", out)
		}
		if n := strings.Count(out, "already in use"); n != 1 {
			t.Fatalf("the error is printed %d times, want once:\n%s", n, out)
		}
	})
	t.Run("start as a daemon, worker fails", func(t *testing.T) {
		s := newServer(t, strings.Replace(httpConfig, "cmd: [{{helper}}]", "cmd: [/bin/false]", 1)+"log_file: {{dir}}/drover.log\n")
		out, err := s.drover("start", "-d", "-c", s.config)
		if err == nil {
			t.Fatalf("drover start -d with a worker that exits succeeded:\n%s", out)
		}
		const why = "failed to start: exited with code 1" // worker 0 or 1
		if n := strings.Count(out, why); n != 1 {
			t.Errorf("the terminal shows the error %d times, want once:\n%s", n, out)
		}
		// The parent returns once the daemon said why; the daemon writes its
		// last lines before it exits.
		waitNoProcess(t, s.config)
		b, err := os.ReadFile(filepath.Join(s.dir, "drover.log"))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if n := strings.Count(text, why); n != 1 {
			t.Errorf("the daemon's log file has the error %d times, want once:\n%s", n, text)
		}
	})
	t.Run("upgrade to a config that does not load", func(t *testing.T) {
		s := startServer(t, httpConfig)
		good, err := os.ReadFile(s.config)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.config, append(good, "worker_num: [\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
		failed := s.subscribe()
		out, err := s.drover("upgrade", "-c", s.config)
		if err == nil {
			t.Fatalf("drover upgrade to a broken config succeeded:\n%s", out)
		}
		if n := strings.Count(out, "YAML syntax error"); n != 1 {
			t.Errorf("drover upgrade printed the error %d times, want once:\n%s", n, out)
		}
		s.waitLog(failed, 10*time.Second, "upgrade failed", func(e logEntry) bool {
			return strings.HasPrefix(e.msg(), "upgrade failed")
		})
		if n := strings.Count(s.logText(), "YAML syntax error"); n != 1 {
			t.Errorf("the master's log stream has the error %d times, want once:\n%s", n, s.logText())
		}
	})
}

// waitNoProcess waits until no process has arg on its command line.
func waitNoProcess(t *testing.T, arg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		running := false
		for _, p := range cmdlines {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), arg) {
				running = true
				break
			}
		}
		if !running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a process with %s on its command line still runs after 10s", arg)
		}
		time.Sleep(10 * time.Millisecond) // polling /proc for its exit
	}
}
