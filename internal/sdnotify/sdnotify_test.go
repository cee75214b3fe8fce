package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func testLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	return logrus.NewEntry(l)
}

// listenNotify listens on a unix datagram socket at name (a path, or
// @abstract) and sets NOTIFY_SOCKET to it for the test.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv(EnvSocket, name)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestSendToPathAndAbstractSockets(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, name := range []string{filepath.Join(dir, "notify"), fmt.Sprintf("@drover-sdnotify-test-%d", os.Getpid())} {
		c := listenNotify(t, name)
		Ready(testLog())
		if got := read(t, c); got != "READY=1\nSTATUS=serving" {
			t.Errorf("%s: got %q", name, got)
		}
	}
}

func TestNoSocketIsNoOp(t *testing.T) {
	t.Setenv(EnvSocket, "")
	if err := Send("READY=1"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvSocket, "relative/path")
	if err := Send("READY=1"); err == nil || !strings.Contains(err.Error(), "absolute path") {
		t.Fatalf("relative NOTIFY_SOCKET: %v", err)
	}
}

func TestReloadingCarriesMonotonicUsec(t *testing.T) {
	c := listenNotify(t, fmt.Sprintf("@drover-sdnotify-reload-%d", os.Getpid()))
	before := monotonicUsec()
	Reloading(testLog())
	got := read(t, c)
	lines := strings.Split(got, "\n")
	if lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > monotonicUsec() {
		t.Fatalf("MONOTONIC_USEC %d not between %d and now (%v)", usec, before, err)
	}
}

func TestServingSendsMainPID(t *testing.T) {
	c := listenNotify(t, fmt.Sprintf("@drover-sdnotify-ready-%d", os.Getpid()))
	Serving(testLog(), []string{"tcp://127.0.0.1:80"})
	want := fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=serving on tcp://127.0.0.1:80", os.Getpid())
	if got := read(t, c); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A receiver that does not read cannot hold the sender: each send gives up
// after sendTimeout.
func TestSendIsBounded(t *testing.T) {
	listenNotify(t, fmt.Sprintf("@drover-sdnotify-full-%d", os.Getpid()))
	msg := strings.Repeat("x", 4000)
	for i := 0; i < 10000; i++ {
		start := time.Now()
		err := Send(msg)
		if d := time.Since(start); d > sendTimeout+time.Second {
			t.Fatalf("send %d took %s", i, d)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "timeout") {
				t.Fatalf("send %d to a full socket: %v", i, err)
			}
			return
		}
	}
	t.Fatal("10000 sends of 4000 bytes to a socket nobody reads all went through")
}

func TestWatchdog(t *testing.T) {
	c := listenNotify(t, fmt.Sprintf("@drover-sdnotify-wd-%d", os.Getpid()))
	t.Setenv("WATCHDOG_USEC", "")
	if w := NewWatchdog(testLog()); w.C != nil {
		t.Fatal("watchdog on without WATCHDOG_USEC")
	}
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "1")
	if w := NewWatchdog(testLog()); w.C != nil {
		t.Fatal("watchdog on for another process's WATCHDOG_PID")
	}
	// The parent's pid: a master started by an upgrade.
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getppid()))
	w := NewWatchdog(testLog())
	defer w.Stop()
	if w.C == nil {
		t.Fatal("watchdog off with WATCHDOG_PID of the parent")
	}
	if got := os.Getenv("WATCHDOG_PID"); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("WATCHDOG_PID %s after NewWatchdog, want this process for the next master", got)
	}
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("first ping: %q", got)
	}
	start := time.Now()
	<-w.C
	w.Ping()
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("ping: %q", got)
	}
	if d := time.Since(start); d > 150*time.Millisecond+time.Second {
		t.Errorf("tick after %s, want about 100ms (half of WATCHDOG_USEC)", d)
	}
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "soon")
	if w := NewWatchdog(testLog()); w.C != nil {
		t.Fatal("watchdog on with a bad WATCHDOG_USEC")
	}
}

func rawFD(t *testing.T, ln net.Listener) int {
	t.Helper()
	sc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	sc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

func TestListenerForMatchesByAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd := rawFD(t, ln)
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port

	got, err := listenerFor(fd, "tcp", addr)
	if err != nil || got == nil {
		t.Fatalf("listenerFor(%s): %v, %v", addr, got, err)
	}
	ln.Close() // the duplicate serves on
	go func() {
		if c, err := got.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Fatalf("through the duplicate: %q %v", buf, err)
	}
	c.Close()
	got.Close()

	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, a := range []string{fmt.Sprintf("127.0.0.1:%d", port+1), "127.0.0.2:" + strconv.Itoa(other.Addr().(*net.TCPAddr).Port), "127.0.0.1:0"} {
		if l, err := listenerFor(rawFD(t, other), "tcp", a); l != nil || err != nil {
			t.Errorf("listenerFor(%s) on %s: %v, %v; want no match", a, other.Addr(), l, err)
		}
	}
	if l, err := listenerFor(rawFD(t, other), "unix", "/tmp/x.sock"); l != nil || err != nil {
		t.Errorf("a unix address matched a tcp socket: %v, %v", l, err)
	}
}

func TestSameTCP(t *testing.T) {
	p := func(s string) *net.TCPAddr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"[::]:80", "0.0.0.0:80", true},
		{"0.0.0.0:80", ":80", true},
		{"127.0.0.1:80", "127.0.0.1:80", true},
		{"127.0.0.1:80", "0.0.0.0:80", false},
		{"127.0.0.1:80", "127.0.0.1:81", false},
		{"[::1]:80", "127.0.0.1:80", false},
	} {
		if got := sameTCP(p(tc.a), p(tc.b)); got != tc.want {
			t.Errorf("sameTCP(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}
