package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// notification is one sd_notify datagram, with the pid the kernel vouches
// for (SCM_CREDENTIALS), as systemd receives it.
type notification struct {
	pid    int
	text   string
	fields map[string]string
}

func (n notification) String() string {
	return fmt.Sprintf("pid %d: %s", n.pid, strings.ReplaceAll(n.text, "\n", " "))
}

// fakeSystemd listens where NOTIFY_SOCKET will point, as systemd does for
// a Type=notify service, and delivers what it receives on the channel.
func fakeSystemd(t *testing.T, dir string) (path string, got <-chan notification) {
	t.Helper()
	path = filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	ch := make(chan notification, 1024)
	t.Cleanup(func() { c.Close() })
	go func() {
		buf, oob := make([]byte, 4096), make([]byte, 1024)
		for {
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				close(ch)
				return
			}
			msg := notification{text: string(buf[:n]), fields: map[string]string{}}
			if scms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range scms {
					if cred, err := unix.ParseUnixCredentials(&m); err == nil {
						msg.pid = int(cred.Pid)
					}
				}
			}
			for _, line := range strings.Split(msg.text, "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					msg.fields[k] = v
				}
			}
			select {
			case ch <- msg:
			default: // the test stopped reading
			}
		}
	}()
	return path, ch
}

// await returns the first notification that ok accepts, failing after
// timeout with what came instead. WATCHDOG=1 pings are passed to seen.
func await(t *testing.T, ch <-chan notification, timeout time.Duration, what string, ok func(notification) bool, seen *[]notification) notification {
	t.Helper()
	deadline := time.After(timeout)
	var other []string
	for {
		select {
		case n, open := <-ch:
			if !open {
				t.Fatalf("notify socket closed while waiting for %s", what)
			}
			if seen != nil {
				*seen = append(*seen, n)
			}
			if ok(n) {
				return n
			}
			other = append(other, n.String())
		case <-deadline:
			t.Fatalf("no %s notification within %s; got instead:\n%s", what, timeout, strings.Join(other, "\n"))
		}
	}
}

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// startReady starts s and waits for its ready line.
func (s *server) startReady() {
	s.t.Helper()
	ready := s.subscribe()
	defer s.unsubscribe(ready)
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
	e := s.waitLog(ready, 60*time.Second, "drover ready", func(e logEntry) bool { return e.msg() == "drover ready" })
	s.addrs = listenerAddrs(e)
}

// The master speaks sd_notify as a Type=notify service must (fake systemd
// on a unixgram socket): READY=1 with its pid once it serves; RELOADING=1
// with MONOTONIC_USEC around a reload, then READY=1; after drover upgrade
// the new master's MAINPID and READY=1, and never a STOPPING=1 from the
// old one (systemd would stop the service); WATCHDOG=1 from whichever
// master serves; STOPPING=1 at the stop.
func TestSystemdNotify(t *testing.T) {
	s := newServer(t, httpConfig)
	sock, got := fakeSystemd(t, s.dir)
	s.env = append(s.env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	s.startReady()
	master := masterPID(t, s)
	var seen []notification

	ready := await(t, got, 10*time.Second, "READY=1", func(n notification) bool { return n.fields["READY"] == "1" }, &seen)
	if ready.pid != master || ready.fields["MAINPID"] != strconv.Itoa(master) {
		t.Errorf("READY=1 %v; want it from the master %d with MAINPID=%d", ready, master, master)
	}
	await(t, got, 5*time.Second, "WATCHDOG=1 from the master", func(n notification) bool {
		return n.fields["WATCHDOG"] == "1" && n.pid == master
	}, &seen)

	before := monotonicUsec(t)
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload: %v\n%s", err, out)
	}
	after := monotonicUsec(t)
	rl := await(t, got, 5*time.Second, "RELOADING=1", func(n notification) bool { return n.fields["RELOADING"] == "1" }, &seen)
	usec, err := strconv.ParseInt(rl.fields["MONOTONIC_USEC"], 10, 64)
	if rl.pid != master || err != nil || usec < before || usec > after {
		t.Errorf("RELOADING=1 %v; want it from %d with MONOTONIC_USEC between %d and %d (CLOCK_MONOTONIC around drover reload)", rl, master, before, after)
	}
	await(t, got, 5*time.Second, "READY=1 after the reload", func(n notification) bool { return n.fields["READY"] == "1" && n.pid == master }, &seen)

	if out, err := s.drover("upgrade", "-c", s.config); err != nil {
		t.Fatalf("drover upgrade: %v\n%s", err, out)
	}
	next := masterPID(t, s)
	if next == master {
		t.Fatalf("the master is still %d after drover upgrade", master)
	}
	up := await(t, got, 5*time.Second, "MAINPID of the new master", func(n notification) bool { return n.fields["MAINPID"] != "" && n.pid == next }, &seen)
	if up.fields["MAINPID"] != strconv.Itoa(next) || up.fields["READY"] != "1" {
		t.Errorf("the new master sent %v; want MAINPID=%d and READY=1", up, next)
	}
	await(t, got, 5*time.Second, "WATCHDOG=1 from the new master", func(n notification) bool {
		return n.fields["WATCHDOG"] == "1" && n.pid == next
	}, &seen)

	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("drover stop: %v\n%s", err, out)
	}
	await(t, got, 5*time.Second, "STOPPING=1", func(n notification) bool { return n.fields["STOPPING"] == "1" }, &seen)
	var stops []string
	for _, n := range seen {
		if n.fields["STOPPING"] == "1" {
			stops = append(stops, n.String())
			if n.pid != next {
				t.Errorf("STOPPING=1 from pid %d; only the serving master (%d) may say it: systemd stops the service", n.pid, next)
			}
		}
	}
	t.Logf("%d notifications; STOPPING: %v", len(seen), stops)
}

// Socket activation: listening sockets passed as systemd does (fds 3 and
// 4, LISTEN_FDS=2, LISTEN_PID of drover): the one bound to a listener's
// address serves it, and drover does not bind it again (it could not: the
// port is taken by that very socket); the other is left unused with a
// warning. No child inherits either.
func TestSystemdSocketActivation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ino := socketInode(t, f)
	ln.Close()
	defer f.Close()
	// A second socket no listener has: left unused, with a warning.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f2, err := ln2.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ino2 := socketInode(t, f2)
	ln2.Close()
	defer f2.Close()
	s := newServer(t, strings.Replace(httpConfig, "tcp://127.0.0.1:0", "tcp://"+addr, 1))
	ready := s.subscribe()
	defer s.unsubscribe(ready)
	// LISTEN_PID must be drover's own pid: a shell exports its $$ and
	// becomes drover (exec keeps the pid), as systemd sets it after fork.
	s.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2; export LISTEN_PID LISTEN_FDS; exec "$0" "$@"`,
		droverBin, "start", "-c", s.config)
	s.cmd.Env = s.env
	s.cmd.ExtraFiles = []*os.File{f, f2}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.readLog(stderr)
	e := s.waitLog(ready, 60*time.Second, "drover ready", func(e logEntry) bool {
		return e.msg() == "drover ready" || e.msg() == "drover failed"
	})
	if e.msg() != "drover ready" {
		t.Fatalf("drover did not start on the socket systemd passed: %s", e.str("error"))
	}
	f.Close() // drover's copy serves on
	f2.Close()
	s.addrs = listenerAddrs(e)
	if !s.hasLog(func(e logEntry) bool {
		return e.msg() == "listener taken from systemd (socket activation)" && e.str("fd") == "3"
	}) {
		t.Errorf("no log line for the listener taken from systemd")
	}
	if !s.hasLog(func(e logEntry) bool {
		return strings.Contains(e.msg(), "which no listener of the config has; it is left unused") && e.str("fd") == "4"
	}) {
		t.Errorf("no warning for the socket (fd 4) that no listener took")
	}
	wantGetOK(t, "http://"+addr+"/")
	// The passed descriptor is not inherited by the tree (close-on-exec).
	rows := s.status()
	for _, p := range append(pidsOf(rows, "worker"), pidsOf(rows, "manager")...) {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", p))
		for _, fd := range fds {
			if target, _ := os.Readlink(fd); target == "socket:["+ino+"]" || target == "socket:["+ino2+"]" {
				t.Errorf("process %d inherited systemd's listening socket (%s)", p, fd)
			}
		}
	}
}

func socketInode(t *testing.T, f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(st.Ino, 10)
}
