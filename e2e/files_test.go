package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Files and sockets of a root master (issue 16, item 7): what a worker
// user or another local user could do with them.

// waitStartFails runs `drover start` in the foreground on s and returns
// its output once it has exited; a start that serves instead (drover
// status answers) fails the test.
func waitStartFails(t *testing.T, s *server) string {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			return s.logText()
		default:
		}
		if out, err := s.drover("status", "-c", s.config); err == nil {
			t.Fatalf("drover started (it should have refused):\n%s", out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("drover neither started nor exited within 30s:\n%s", s.logText())
		}
		time.Sleep(20 * time.Millisecond) // polling status, not waiting for time to pass
	}
}

// symlinkedLog makes {{dir}}/drover.log a symbolic link to a file that
// the master must never write, and returns that file.
func symlinkedLog(t *testing.T, s *server) string {
	t.Helper()
	victim := filepath.Join(s.dir, "victim")
	if err := os.WriteFile(victim, []byte("untouched\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(s.dir, "drover.log")); err != nil {
		t.Fatal(err)
	}
	return victim
}

func checkUntouched(t *testing.T, victim string) {
	t.Helper()
	if b, _ := os.ReadFile(victim); string(b) != "untouched\n" {
		t.Errorf("the symbolic link's target was written:\n%s", b)
	}
}

// log_file through a symbolic link is refused, in the foreground and with
// -d (whose parent opens the file first): a worker user that can write
// the log directory cannot make root append to another file
// (CVE-2016-1247). The message says how to fix it.
func TestLogFileSymlinkIsRefused(t *testing.T) {
	t.Run("foreground", func(t *testing.T) {
		s := newServer(t, strings.ReplaceAll(opsConfig, "{{log}}", "{{dir}}/drover.log"))
		victim := symlinkedLog(t, s)
		out := waitStartFails(t, s)
		if !strings.Contains(out, "is a symbolic link") || !strings.Contains(out, "set the real path") {
			t.Errorf("drover start with a symlinked log_file said:\n%s", out)
		}
		checkUntouched(t, victim)
	})
	t.Run("daemon", func(t *testing.T) {
		s := newServer(t, strings.ReplaceAll(opsConfig, "{{log}}", "{{dir}}/drover.log"))
		victim := symlinkedLog(t, s)
		out, err := s.drover("start", "-d", "-c", s.config)
		if err == nil {
			startedDaemon(t, s)
			t.Fatalf("drover start -d with a symlinked log_file started:\n%s", out)
		}
		if !strings.Contains(out, "is a symbolic link") {
			t.Errorf("drover start -d with a symlinked log_file said:\n%s", out)
		}
		checkUntouched(t, victim)
	})
}

// startedDaemon registers the clean-up of a daemon that started although
// the test expected it not to.
func startedDaemon(t *testing.T, s *server) {
	rows := s.status()
	t.Cleanup(func() {
		pids := allPIDs(rows)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		waitExited(pids, 5*time.Second)
	})
}

// After a rotation, a log file replaced by a symbolic link is not
// reopened: reopen-logs fails with the reason and drover logs on in the
// file it had open.
func TestReopenLogsRefusesSymlink(t *testing.T) {
	s := newServer(t, strings.ReplaceAll(opsConfig, "{{log}}", "{{dir}}/drover.log"))
	rotated := filepath.Join(s.dir, "drover.log.1")
	startDaemon(t, s, rotated)
	if err := os.Rename(filepath.Join(s.dir, "drover.log"), rotated); err != nil {
		t.Fatal(err)
	}
	victim := symlinkedLog(t, s)
	out, err := s.drover("reopen-logs", "-c", s.config)
	if err == nil || !strings.Contains(out, "is a symbolic link") || !strings.Contains(out, "still go to the file open before") {
		t.Fatalf("drover reopen-logs onto a symbolic link: %v\n%s", err, out)
	}
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload: %v\n%s", err, out)
	}
	es := readLogFile(t, rotated)
	if countMsg(es, "log file not reopened; logging to the old file") != 1 || countMsg(es, "reload done") != 1 {
		t.Errorf("the old file lacks the refused reopen or the reload")
	}
	checkUntouched(t, victim)
}

// systemd creates RuntimeDirectory= with mode 0755: drover accepts a
// runtime directory of its user that nobody else may write, whatever its
// read bits (docs/operations.md's unit relies on it).
func TestRuntimeDirWithSystemdMode(t *testing.T) {
	s := newServer(t, echoConfig)
	if err := os.Mkdir(filepath.Join(s.dir, "drover"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(s.dir, "drover"), 0o755) // whatever the umask
	startRunning(t, s)
}

// Without XDG_RUNTIME_DIR the runtime directory used to be
// /tmp/drover-UID, which any local user can create first: a directory of
// another user there no longer keeps drover from starting. Root uses
// /run/drover; another user falls back to ~/.cache/drover and says so.
// The CLI finds the instance either way.
func TestRuntimeDirCannotBeSquatted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a directory of another user needs root; this test runs as uid", os.Geteuid())
	}
	t.Run("root", func(t *testing.T) {
		s := newServer(t, echoConfig)
		tmp := filepath.Join(s.dir, "tmp")
		squat(t, filepath.Join(tmp, "drover-0"), 65534)
		s.env = squatEnv(s.env, tmp, "")
		startRunning(t, s)
		ctl := controlSocket(t, s)
		if filepath.Dir(ctl) != "/run/drover" {
			t.Errorf("root's control socket is %s, want it in /run/drover", ctl)
		}
		// Stopped by the CLI, it leaves nothing behind in the machine's
		// /run/drover.
		if out, err := s.drover("stop", "-c", s.config); err != nil {
			t.Fatalf("drover stop: %v\n%s", err, out)
		}
		if _, err := os.Stat(ctl); err == nil {
			t.Errorf("drover stop left %s behind", ctl)
		}
	})
	t.Run("user", func(t *testing.T) {
		// The server as nobody: binaries and config where nobody reads them.
		s := newServer(t, strings.ReplaceAll(echoConfig, "{{bin}}/echo", "{{dir}}/echo"))
		for _, name := range []string{"drover", "echo"} {
			copyFile(t, filepath.Join(bin, name), filepath.Join(s.dir, name))
		}
		home, tmp := filepath.Join(s.dir, "home"), filepath.Join(s.dir, "tmp")
		if err := os.MkdirAll(home, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(home, 65534, 65534)
		os.Chmod(s.dir, 0o755)
		squat(t, filepath.Join(tmp, "drover-65534"), 0)
		s.env = squatEnv(s.env, tmp, home)
		nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
		ready := s.subscribe()
		if err := startAs(s, nobody); err != nil {
			t.Fatal(err)
		}
		e := waitEntry(t, s, ready, "the fallback's log line", func(e logEntry) bool {
			return strings.Contains(e.msg(), "runtime directory in the temp dir taken by another user")
		})
		if want := filepath.Join(home, ".cache", "drover"); e.str("runtime_dir") != want {
			t.Errorf("fallback runtime_dir %q, want %q", e.str("runtime_dir"), want)
		}
		waitEntry(t, s, ready, "drover ready", func(e logEntry) bool { return e.msg() == "drover ready" })
		status := exec.Command(filepath.Join(s.dir, "drover"), "status", "-c", s.config)
		status.Env = s.env
		status.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
		if out, err := status.CombinedOutput(); err != nil {
			t.Fatalf("drover status as the same user: %v\n%s", err, out)
		}
	})
}

// squat makes dir (and its parent, a private temp dir) with dir owned by
// uid, as a user who got there first.
func squat(t *testing.T, dir string, uid int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(dir), 0o1777)
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// squatEnv is env without any runtime directory setting, with TMPDIR (and
// HOME, when set) replaced.
func squatEnv(env []string, tmp, home string) []string {
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		for _, p := range []string{"XDG_RUNTIME_DIR=", "DROVER_RUNTIME_DIR=", "TMPDIR=", "XDG_CACHE_HOME="} {
			if strings.HasPrefix(kv, p) {
				return true
			}
		}
		return home != "" && strings.HasPrefix(kv, "HOME=")
	})
	env = append(env, "TMPDIR="+tmp)
	if home != "" {
		env = append(env, "HOME="+home)
	}
	return env
}

// startRunning starts s and waits for its ready line.
func startRunning(t *testing.T, s *server) {
	t.Helper()
	ready := s.subscribe()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	waitEntry(t, s, ready, "drover ready", func(e logEntry) bool { return e.msg() == "drover ready" })
	if out, err := s.drover("status", "-c", s.config); err != nil {
		t.Fatalf("drover status: %v\n%s", err, out)
	}
}

// waitEntry is s.waitLog that fails at once when drover exits.
func waitEntry(t *testing.T, s *server, ch chan logEntry, what string, ok func(logEntry) bool) logEntry {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-ch:
			if ok(e) {
				return e
			}
		case <-s.exited:
			t.Fatalf("drover exited before %s:\n%s", what, s.logText())
		case <-deadline:
			t.Fatalf("no log line for %s within 60s:\n%s", what, s.logText())
		}
	}
}

// controlSocket returns the control socket named in the ready line.
func controlSocket(t *testing.T, s *server) string {
	t.Helper()
	path := ""
	s.hasLog(func(e logEntry) bool {
		if e.msg() == "drover ready" {
			path = e.str("control")
		}
		return false
	})
	if path == "" {
		t.Fatal("no control socket in the ready line")
	}
	return path
}

// startAs is s.start with the master running as cred's user, from the
// drover binary in s.dir.
func startAs(s *server, cred *syscall.Credential) error {
	s.cmd = exec.Command(filepath.Join(s.dir, "drover"), "start", "-c", s.config)
	s.cmd.Env = s.env
	s.cmd.Dir = s.dir
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go s.readLog(stderr)
	return nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// envConfig runs examples/echo through a shell that first writes its
// environment to {{dir}}/env.<worker id>.
const envConfig = `
worker_num: 1
worker:
  cmd: [/bin/sh, -c, 'env > {{dir}}/env.$DROVER_WORKER_ID; exec {{bin}}/echo']
  env: {APP_LISTED: "yes", FROM_MASTER: $E2E_MASTER_SECRET}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: length
    package_length_type: N
    package_body_offset: 4
`

// Workers get a clean environment by default (php-fpm's clear_env): the
// master's variables (root's HOME, SSH_AUTH_SOCK, a secret) stay with
// the master unless worker.env names them; clear_env: false passes them
// all, as before.
func TestWorkerEnvIsCleared(t *testing.T) {
	for _, clear := range []bool{true, false} {
		name, cfg := "default", envConfig
		if !clear {
			name, cfg = "clear_env_false", strings.Replace(envConfig, "  env:", "  clear_env: false\n  env:", 1)
		}
		t.Run(name, func(t *testing.T) {
			s := newServer(t, cfg)
			s.env = append(s.env, "E2E_MASTER_SECRET=s3cret", "SSH_AUTH_SOCK=/tmp/agent.sock", "HOME=/nonexistent-home")
			startRunning(t, s)
			env := readEnvFile(t, filepath.Join(s.dir, "env.0"))
			for _, kv := range []string{"APP_LISTED=yes", "FROM_MASTER=s3cret", "DROVER_WORKER_ID=0"} {
				if !slices.Contains(env, kv) {
					t.Errorf("the worker's environment lacks %s:\n%s", kv, strings.Join(env, "\n"))
				}
			}
			for _, kv := range []string{"E2E_MASTER_SECRET=s3cret", "SSH_AUTH_SOCK=/tmp/agent.sock", "HOME=/nonexistent-home"} {
				if got := slices.Contains(env, kv); got != !clear {
					t.Errorf("clear_env %v: the worker sees %s: %v, want %v", clear, kv, got, !clear)
				}
			}
		})
	}
}

func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		env = append(env, sc.Text())
	}
	return env
}

// sockStat says a socket file's mode and owner.
func sockStat(t *testing.T, p string) (os.FileMode, int, int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode().Perm(), int(st.Uid), int(st.Gid)
}

const unixListener = `
  - address: unix://{{dir}}/%s
    protocol: length
    package_length_type: N
    package_body_offset: 4
`

// A unix listener's socket is 0660 by default, whatever the umask: the
// owner and the group may connect (php-fpm's listen.mode default). With
// umask 022 it used to be 0755, which no other user can connect to.
func TestUnixListenerDefaultMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	s := newServer(t, "worker_num: 1\nworker:\n  cmd: [{{bin}}/echo]\nlisteners:"+fmt.Sprintf(unixListener, "a.sock"))
	startRunning(t, s)
	if mode, uid, gid := sockStat(t, filepath.Join(s.dir, "a.sock")); mode != 0o660 || uid != os.Geteuid() || gid != os.Getegid() {
		t.Errorf("a.sock has mode %04o owner %d:%d, want 0660 %d:%d", mode, uid, gid, os.Geteuid(), os.Getegid())
	}
}

// A unix listener's socket gets the configured mode, owner and group at
// bind (php-fpm's listen.mode, listen.owner, listen.group), and keeps them
// across a binary upgrade (the new master inherits the socket and applies
// its config again).
func TestUnixListenerModeAndOwner(t *testing.T) {
	cfg := "worker_num: 1\nworker:\n  cmd: [{{bin}}/echo]\nlisteners:" + fmt.Sprintf(unixListener, "b.sock") + "    mode: 0666\n"
	want := struct{ uid, gid int }{os.Geteuid(), os.Getegid()}
	if os.Geteuid() == 0 {
		cfg += "    owner: nobody\n    group: \"65534\"\n"
		want.uid, want.gid = 65534, 65534
	}
	s := newServer(t, cfg)
	startRunning(t, s)
	sock := filepath.Join(s.dir, "b.sock")
	check := func(when string) {
		t.Helper()
		if mode, uid, gid := sockStat(t, sock); mode != 0o666 || uid != want.uid || gid != want.gid {
			t.Errorf("%s: b.sock has mode %04o owner %d:%d, want 0666 %d:%d", when, mode, uid, gid, want.uid, want.gid)
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("%s: dial b.sock: %v", when, err)
		}
		conn.Close()
	}
	check("after start")
	if out, err := s.drover("upgrade", "-c", s.config); err != nil {
		t.Fatalf("drover upgrade: %v\n%s", err, out)
	}
	check("after upgrade")
	if os.Geteuid() == 0 {
		// connect(2) needs write permission: user nobody has it now.
		os.Chmod(s.dir, 0o711)
		probe := exec.Command("/bin/sh", "-c", "test -w "+sock)
		probe.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if err := probe.Run(); err != nil {
			t.Errorf("user nobody may not write (connect to) b.sock: %v", err)
		}
	}
}
