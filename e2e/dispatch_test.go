package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// whoamiOn sends whoami on c and returns the answering worker's pid.
func whoamiOn(t *testing.T, c *client) int {
	t.Helper()
	who, err := c.roundTrip("whoami")
	if err != nil {
		t.Fatal(err)
	}
	return pidFrom(t, who)
}

// dialFrom connects from the local address ip (127.0.0.0/8 is all loopback).
func dialFrom(t *testing.T, addr, ip string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", tcpAddr(addr))
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

func withMode(mode int) string {
	return strings.Replace(commandsConfig, "worker_num: 2", fmt.Sprintf("worker_num: 3\ndispatch_mode: %d", mode), 1)
}

// Mode 2 (the stream default): every event of a connection reaches one
// worker; connections are spread.
func TestDispatchMode2FixedByConnection(t *testing.T) {
	s := startServer(t, withMode(2))
	used := map[int]bool{}
	for i := 0; i < 6; i++ {
		c := dial(t, s.addrs[0])
		first := whoamiOn(t, c)
		for j := 0; j < 20; j++ {
			if pid := whoamiOn(t, c); pid != first {
				t.Fatalf("connection %d moved from worker pid %d to %d", i, first, pid)
			}
		}
		used[first] = true
	}
	if len(used) < 2 {
		t.Fatalf("6 connections all went to one worker (%v)", used)
	}
}

// Mode 4: every connection from one client IP reaches one worker.
func TestDispatchMode4ByClientIP(t *testing.T) {
	s := startServer(t, withMode(4))
	used := map[int]bool{}
	for n := 2; n <= 9; n++ {
		ip := fmt.Sprintf("127.0.0.%d", n)
		first := 0
		for i := 0; i < 4; i++ {
			pid := whoamiOn(t, dialFrom(t, s.addrs[0], ip))
			if first == 0 {
				first = pid
			} else if pid != first {
				t.Fatalf("connections from %s reached workers %d and %d", ip, first, pid)
			}
		}
		used[first] = true
	}
	if len(used) < 2 {
		t.Fatalf("8 client IPs all went to one worker (%v)", used)
	}
}

// Mode 3: a busy worker gets nothing while another is idle.
func TestDispatchMode3IdleFirst(t *testing.T) {
	s := startServer(t, withMode(3))
	busy := dial(t, s.addrs[0])
	if got, err := busy.roundTrip("sleep"); err != nil || got != "sleeping" { // holds one event from now on
		t.Fatalf("sleep: %q, %v", got, err)
	}
	// Mode 3 does not pin a connection: find the worker holding the event.
	busyPID := 0
	for _, r := range s.status() {
		if r.Role == "worker" && r.InFlight > 0 {
			busyPID = r.PID
		}
	}
	if busyPID == 0 {
		t.Fatal("no worker shows the sleeping event in flight")
	}
	for i := 0; i < 20; i++ {
		// A worker's answer can reach the client before the master has read
		// its Done: until then that worker counts as busy too, and a tie
		// goes to the first worker.
		s.waitStatus("only the sleeping event in flight", func(rows []statusRow) bool { return inFlight(rows, "worker") == 1 })
		if pid := whoamiOn(t, dial(t, s.addrs[0])); pid == busyPID {
			t.Fatalf("event %d went to the busy worker %d while others were idle", i, busyPID)
		}
	}
}

// Mode 5: once bound to a uid, a connection's events go to worker
// uid % worker_num, for every connection of that uid.
func TestDispatchMode5ByUID(t *testing.T) {
	s := startServer(t, withMode(5))
	for _, uid := range []int{4, 5, 6, 4} {
		c := dial(t, s.addrs[0])
		if got, err := c.roundTrip(fmt.Sprintf("bind %d", uid)); err != nil || got != "bound" {
			t.Fatalf("bind: %q, %v", got, err)
		}
		for i := 0; i < 5; i++ {
			who, err := c.roundTrip("whoami")
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("worker %d ", uid%3); !strings.HasPrefix(who, want) {
				t.Fatalf("uid %d answered by %q, want worker %d", uid, who, uid%3)
			}
		}
	}
}
