package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
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

// httpWithMode is httpConfig with three workers and dispatch_mode mode.
func httpWithMode(mode int) string {
	return strings.Replace(httpConfig, "worker_num: 2", fmt.Sprintf("worker_num: 3\ndispatch_mode: %d", mode), 1)
}

// getOn sends GET path on c's connection (kept alive) and returns the
// answer's body.
func getOn(t *testing.T, c *client, br *bufio.Reader, path string) string {
	t.Helper()
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c.c, "GET %s HTTP/1.1\r\nHost: drover\r\n\r\n", path); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q, %v", path, resp.StatusCode, body, err)
	}
	return string(body)
}

// Mode 4 on an HTTP listener, as on a stream one: every connection from
// one client IP reaches one worker, and client IPs are spread.
func TestDispatchHTTPMode4ByClientIP(t *testing.T) {
	s := startServer(t, httpWithMode(4))
	first := map[string]int{}
	used := map[int]bool{}
	// Connections from the addresses interleave, so that a rule that
	// ignores the address (the next free worker) shows.
	for i := 0; i < 4; i++ {
		for n := 2; n <= 9; n++ {
			ip := fmt.Sprintf("127.0.0.%d", n)
			c := dialFrom(t, s.addrs[0], ip)
			pid := pidFrom(t, getOn(t, c, bufio.NewReader(c.c), "/whoami"))
			c.c.Close()
			if first[ip] == 0 {
				first[ip] = pid
			} else if pid != first[ip] {
				t.Fatalf("connection %d from %s reached worker pid %d, the first reached %d", i, ip, pid, first[ip])
			}
			used[pid] = true
		}
	}
	if len(used) < 2 {
		t.Fatalf("8 client IPs all went to one worker (%v)", used)
	}
}

// Mode 5 on an HTTP listener: once a handler bound the connection to a uid
// (worker.Bind), its requests go to worker uid % worker_num.
func TestDispatchHTTPMode5ByUID(t *testing.T) {
	s := startServer(t, httpWithMode(5))
	checkBindByUID(t, s, func(who string) int {
		f := strings.Fields(who) // worker <id> pid <pid>
		if len(f) != 4 {
			t.Fatalf("whoami answered %q", who)
		}
		id, _ := strconv.Atoi(f[1])
		return id
	})
}

// Mode 5 with PHP HTTP workers: Drover\Http\Worker::bind ties the
// request's connection to a uid.
func TestDispatchHTTPMode5ByUIDInPHP(t *testing.T) {
	s := startServer(t, phpWorkers(3, phpScript(t, "handler.php"), httpListener, "dispatch_mode: 5"))
	checkBindByUID(t, s, func(who string) int {
		var w struct{ ID int }
		if err := json.Unmarshal([]byte(who), &w); err != nil {
			t.Fatalf("whoami answered %q: %v", who, err)
		}
		return w.ID
	})
}

// checkBindByUID binds a connection per uid with GET /bind?uid=N on s (3
// workers) and checks that its next requests are answered by worker
// uid % 3, which workerOf reads from a GET /whoami answer.
func checkBindByUID(t *testing.T, s *server, workerOf func(whoami string) int) {
	t.Helper()
	for _, uid := range []int{4, 5, 6, 4} {
		c := dial(t, s.addrs[0])
		br := bufio.NewReader(c.c)
		if got := getOn(t, c, br, fmt.Sprintf("/bind?uid=%d", uid)); got != "bound" {
			t.Fatalf("bind: %q", got)
		}
		for i := 0; i < 5; i++ {
			if who := getOn(t, c, br, "/whoami"); workerOf(who) != uid%3 {
				t.Fatalf("uid %d answered by %q, want worker %d", uid, who, uid%3)
			}
		}
	}
}
