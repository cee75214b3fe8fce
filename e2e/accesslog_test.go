package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The access log (access_log), drover's own lines in log_format: json, and
// the slow-request log (worker.slow_request_log): docs/operations.md, Logs.

// startServerOut is startServer with drover's stdout on out: the access
// log's path "-".
func startServerOut(t *testing.T, cfg string, out *os.File) *server {
	t.Helper()
	s := newServer(t, cfg)
	ready := s.subscribe()
	s.cmd = exec.Command(droverBin, "start", "-c", s.config)
	s.cmd.Env = s.env
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stdout = out
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.readLog(stderr)
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

// accessLines reads r line by line and sends each line's JSON object;
// a line that is not one is sent as {"unparsable": line}.
func accessLines(r io.Reader) <-chan logEntry {
	ch := make(chan logEntry, 4096)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e logEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e == nil {
				e = logEntry{"unparsable": sc.Text()}
			}
			ch <- e
		}
		close(ch)
	}()
	return ch
}

// stdoutPipe is a pipe for drover's stdout: the test reads r, drover gets
// w (closed here once drover has it, by the caller).
func stdoutPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// takeLines receives n access-log lines from ch within timeout.
func takeLines(t *testing.T, s *server, ch <-chan logEntry, n int, timeout time.Duration) []logEntry {
	t.Helper()
	var got []logEntry
	deadline := time.After(timeout)
	for len(got) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("access log closed after %d lines, want %d: %v", len(got), n, got)
			}
			if u, bad := e["unparsable"]; bad {
				t.Fatalf("access log line is not a JSON object: %q", u)
			}
			got = append(got, e)
		case <-deadline:
			t.Fatalf("%d access log lines within %s, want %d: %v\n%s", len(got), timeout, n, got, s.logText())
		}
	}
	return got
}

func num(e logEntry, k string) (float64, bool) {
	f, ok := e[k].(float64)
	return f, ok
}

// TestAccessLogJSON: one JSON line per HTTP request, answered by the
// handler (GET, POST, 404), closed by its client before any answer
// (status 0) and refused by the parser (414, no method or target).
func TestAccessLogJSON(t *testing.T) {
	r, w := stdoutPipe(t)
	s := startServerOut(t, httpConfig+"access_log: {path: \"-\", format: json}\nhttp_max_header_size: 4K\n", w)
	w.Close()
	lines := accessLines(r)
	logs := s.subscribe()
	client := &http.Client{Timeout: 10 * time.Second}

	req, _ := http.NewRequest(http.MethodGet, httpURL(s, "/"), nil)
	req.Header.Set("User-Agent", "e2e-agent \"quoted\"")
	req.Header.Set("Referer", "http://ref.example/a?b=c")
	expectStatus(t, client, req, 200)
	req, _ = http.NewRequest(http.MethodPost, httpURL(s, "/echo"), strings.NewReader("0123456789"))
	expectStatus(t, client, req, 200)
	req, _ = http.NewRequest(http.MethodGet, httpURL(s, "/code?n=404"), nil)
	expectStatus(t, client, req, 404)

	// At a worker, then closed by its client with a reset: no answer
	// (status 0). (A FIN alone reads as a half-close: the handler's answer
	// would still be sent.)
	c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET /wait-cancel?x=1 HTTP/1.1\r\nHost: e2e\r\n\r\n"))
	s.waitLog(logs, 10*time.Second, "the handler holding /wait-cancel", func(e logEntry) bool {
		return e.msg() == "worker output" && e.str("output") == "waiting for cancel"
	})
	c.(*net.TCPConn).SetLinger(0)
	c.Close()

	// A request line longer than http_max_header_size: 414 from the parser.
	if got := firstLine(rawHTTP(t, s, "GET /"+strings.Repeat("a", 5000), false)); !strings.HasPrefix(got, "HTTP/1.1 414") {
		t.Fatalf("over-long request line: %q", got)
	}

	byTarget := map[string]logEntry{}
	for _, e := range takeLines(t, s, lines, 5, 10*time.Second) {
		byTarget[e.str("target")] = e
	}
	for _, c := range []struct {
		target, method string
		status         int
		worker         bool
	}{
		{"/", "GET", 200, true},
		{"/echo", "POST", 200, true},
		{"/code?n=404", "GET", 404, true},
		{"/wait-cancel?x=1", "GET", 0, true},
		{"", "", 414, false},
	} {
		e, ok := byTarget[c.target]
		if !ok {
			t.Errorf("no access log line for target %q: %v", c.target, byTarget)
			continue
		}
		if e.str("type") != "http" || e.str("method") != c.method || e.str("status") != fmt.Sprint(c.status) {
			t.Errorf("%q: type %q, method %q, status %q; want http, %q, %d: %v", c.target, e.str("type"), e.str("method"), e.str("status"), c.method, c.status, e)
		}
		if !strings.HasPrefix(e.str("remote"), "127.0.0.1:") || e.str("listener") != s.addrs[0] {
			t.Errorf("%q: remote %q, listener %q (want 127.0.0.1:port, %s)", c.target, e.str("remote"), e.str("listener"), s.addrs[0])
		}
		if _, err := time.Parse(time.RFC3339Nano, e.str("time")); err != nil {
			t.Errorf("%q: time %q: %v", c.target, e.str("time"), err)
		}
		if d, ok := num(e, "duration"); !ok || d < 0 || d > 10 {
			t.Errorf("%q: duration %v", c.target, e["duration"])
		}
		_, hasWorker := num(e, "worker")
		_, hasPID := num(e, "pid")
		if hasWorker != c.worker || hasPID != c.worker {
			t.Errorf("%q: worker %v, pid %v (want a worker: %v)", c.target, e["worker"], e["pid"], c.worker)
		}
		b, _ := num(e, "bytes")
		switch {
		case c.status == 0 && b != 0:
			t.Errorf("%q: unanswered, but %v bytes", c.target, b)
		case c.status != 0 && b <= 0:
			t.Errorf("%q: answered with %v bytes", c.target, b)
		}
	}
	if e := byTarget["/"]; e.str("user_agent") != "e2e-agent \"quoted\"" || e.str("referer") != "http://ref.example/a?b=c" || e.str("proto") != "HTTP/1.1" {
		t.Errorf("GET /: user_agent %q, referer %q, proto %q", e.str("user_agent"), e.str("referer"), e.str("proto"))
	}
	if e := byTarget[""]; e.str("user_agent") != "" || e.str("proto") != "" {
		t.Errorf("the refused request carries another request's user_agent %q or proto %q", e.str("user_agent"), e.str("proto"))
	}
}

func expectStatus(t *testing.T, client *http.Client, req *http.Request, want int) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d", req.Method, req.URL, resp.StatusCode, want)
	}
}

// TestAccessLogStreamClose: a stream connection's close is one line with
// its listener, duration, bytes each way and why it closed.
func TestAccessLogStreamClose(t *testing.T) {
	r, w := stdoutPipe(t)
	s := startServerOut(t, echoConfig+"access_log: {path: \"-\", format: json}\n", w)
	w.Close()
	lines := accessLines(r)
	c := dial(t, s.addrs[0])
	if got, err := c.roundTrip("hello"); err != nil || got != "hello" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	c.c.Close()
	e := takeLines(t, s, lines, 1, 10*time.Second)[0]
	if e.str("type") != "stream" || e.str("listener") != s.addrs[0] || !strings.HasPrefix(e.str("remote"), "127.0.0.1:") ||
		e.str("bytes_in") != "9" || e.str("bytes_out") != "9" || e.str("reason") != "closed by client" {
		t.Errorf("stream close line: %v (want type stream, listener %s, bytes_in 9, bytes_out 9, reason closed by client)", e, s.addrs[0])
	}
	if _, ok := num(e, "pid"); !ok {
		t.Errorf("stream close line without the worker's pid: %v", e)
	}
}

// combinedLine is a combined-format line of GET target, plus drover's
// duration, worker slot and pid.
func combinedLine(target string) *regexp.Regexp {
	return regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [-+]\d{4}\] "GET ` + regexp.QuoteMeta(target) +
		` HTTP/1\.1" 200 \d+ "-" "e2e-agent" rt=\d+\.\d{6} worker=\d+ pid=\d+$`)
}

// waitFileLine waits until the file at path has a line matching re.
func waitFileLine(t *testing.T, path string, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			if re.MatchString(l) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no line matching %s within 10s:\n%s", path, re, b)
		}
		time.Sleep(20 * time.Millisecond) // polling the file, not waiting for time to pass
	}
}

// TestAccessLogCombinedReopen: the combined format in a file, and
// reopen-logs after logrotate renamed it: the next lines go to a new file.
func TestAccessLogCombinedReopen(t *testing.T) {
	s := startServer(t, httpConfig+"access_log: {path: {{dir}}/access.log}\n")
	path, rotated := filepath.Join(s.dir, "access.log"), filepath.Join(s.dir, "access.log.1")
	get := func(target string) {
		req, _ := http.NewRequest(http.MethodGet, httpURL(s, target), nil)
		req.Header.Set("User-Agent", "e2e-agent")
		expectStatus(t, http.DefaultClient, req, 200)
	}
	get("/first")
	waitFileLine(t, path, combinedLine("/first"))
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	out, err := s.drover("reopen-logs", "-c", s.config)
	if err != nil || !strings.Contains(out, "access log reopened: "+path) {
		t.Fatalf("drover reopen-logs: %v\n%s", err, out)
	}
	get("/second")
	waitFileLine(t, path, combinedLine("/second"))
	old, _ := os.ReadFile(rotated)
	cur, _ := os.ReadFile(path)
	if strings.Contains(string(old), "/second") || strings.Contains(string(cur), "/first") {
		t.Errorf("lines in the wrong file after the reopen:\nrenamed:\n%s\nnew:\n%s", old, cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new access log: %v, %v (want mode 0640)", fi, err)
	}
}

// TestAccessLogBlockedWriterDrops: with the access log on a stdout nobody
// reads, serving goes on at full speed, lines are dropped with a count in
// the log, and a stop does not wait for the stuck writer for ever.
func TestAccessLogBlockedWriterDrops(t *testing.T) {
	r, w := stdoutPipe(t)
	// The smallest pipe: the writer blocks after a page.
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	_ = r // never read
	s := startServerOut(t, httpConfig+"access_log: {path: \"-\", format: json}\n", w)
	w.Close()
	logs := s.subscribe()

	// Lines of about 8 KiB: the bounded queue (2 MiB) fills after a few
	// hundred requests.
	target := "/?" + strings.Repeat("p", 8<<10)
	var served atomic.Int64
	start := time.Now()
	parallel(t, 4, func(int) error {
		client := &http.Client{Timeout: 10 * time.Second}
		for i := 0; i < 300; i++ {
			resp, err := client.Get(httpURL(s, target))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			served.Add(1)
		}
		return nil
	})
	t.Logf("%d requests served in %s with the access log's writer blocked", served.Load(), time.Since(start))
	e := s.waitLog(logs, 10*time.Second, "the dropped access log lines", func(e logEntry) bool {
		return strings.HasPrefix(e.msg(), "access log lines dropped")
	})
	if n, _ := num(e, "dropped"); n <= 0 {
		t.Errorf("drop line without a count: %v", e)
	}
	// The stop gives up on the stuck writer after its bound.
	done := s.droverAsync("stop", "-c", s.config)
	select {
	case out := <-done:
		if !strings.Contains(out, "drover stopped") {
			t.Fatalf("drover stop: %s", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("drover stop still waits 30s later: the stuck access log writer holds the stop")
	}
	if !s.hasLog(func(e logEntry) bool { return strings.HasPrefix(e.msg(), "access log not flushed at stop") }) {
		t.Errorf("the stop does not say that access log lines were lost:\n%s", s.logText())
	}
}

// TestSlowRequestLog: a request running longer than worker.slow_request_log
// is logged once, with its worker's pid, method and target, and keeps
// running; its worker is not replaced.
func TestSlowRequestLog(t *testing.T) {
	s := startServer(t, `
worker_num: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http, E2E_CONCURRENCY: "4"}
  slow_request_log: 1s
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	pids := pidsOf(s.status(), "worker")
	logs := s.subscribe()
	slowLine := func(target string) func(logEntry) bool {
		return func(e logEntry) bool { return strings.HasPrefix(e.msg(), "slow request") && e.str("target") == target }
	}
	hold := func(name string) (target string, release func(), answer <-chan string) {
		dir := filepath.Join(s.dir, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		fifo, held, release := holdFIFO(t, dir)
		target = "/fifo?path=" + url.QueryEscape(fifo)
		ch := make(chan string, 1)
		go func() {
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(httpURL(s, target))
			if err != nil {
				ch <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
		held()
		return target, release, ch
	}
	first, release1, answer1 := hold("a")
	e := s.waitLog(logs, 10*time.Second, "the slow request", slowLine(first))
	if e.str("pid") != fmt.Sprint(pids[0]) || e.str("method") != "GET" || e.str("worker_id") != "0" || e.str("slow_request_log") != "1s" {
		t.Errorf("slow request line: %v (want pid %d, method GET, worker_id 0, slow_request_log 1s)", e, pids[0])
	}
	if d, err := time.ParseDuration(e.str("running")); err != nil || d < time.Second {
		t.Errorf("slow request line: running %q, want at least 1s", e.str("running"))
	}
	// A second one, started after the first was logged, is logged at a
	// later sweep: by then the first has been seen again, and not logged.
	second, release2, answer2 := hold("b")
	s.waitLog(logs, 10*time.Second, "the second slow request", slowLine(second))
	release1()
	release2()
	for _, ch := range []<-chan string{answer1, answer2} {
		if got := <-ch; got != "200 released" {
			t.Errorf("slow request answered %q, want 200 released", got)
		}
	}
	for _, target := range []string{first, second} {
		n := 0
		s.hasLog(func(e logEntry) bool {
			if slowLine(target)(e) {
				n++
			}
			return false
		})
		if n != 1 {
			t.Errorf("%s logged slow %d times, want once", target, n)
		}
	}
	if now := pidsOf(s.status(), "worker"); len(now) != 1 || now[0] != pids[0] {
		t.Errorf("workers %v after the slow requests, want %v: the slow log must not replace a worker", now, pids)
	}
}

// TestSlowStreamEventLog: the same for an event of a stream listener.
func TestSlowStreamEventLog(t *testing.T) {
	s := startServer(t, strings.Replace(commandsConfig, "  env: {E2E_HANDLER: commands}\n",
		"  env: {E2E_HANDLER: commands}\n  slow_request_log: 1s\n", 1))
	before := pidsOf(s.status(), "worker")
	logs := s.subscribe()
	fifo, held, release := holdFIFO(t, s.dir)
	c := dial(t, s.addrs[0])
	answer := make(chan string, 1)
	go func() {
		got, err := c.roundTrip("fifo " + fifo)
		if err != nil {
			got = err.Error()
		}
		answer <- got
	}()
	held()
	e := s.waitLog(logs, 10*time.Second, "the slow event", func(e logEntry) bool { return strings.HasPrefix(e.msg(), "slow request") })
	if e.str("listener") != s.addrs[0] || e.str("pid") == "" || e.str("worker_id") == "" || !strings.HasPrefix(e.str("remote"), "127.0.0.1:") {
		t.Errorf("slow event line: %v (want listener %s, remote, worker_id and pid)", e, s.addrs[0])
	}
	release()
	if got := <-answer; got != "released" {
		t.Errorf("held event answered %q", got)
	}
	n := 0
	s.hasLog(func(e logEntry) bool {
		if strings.HasPrefix(e.msg(), "slow request") {
			n++
		}
		return false
	})
	if n != 1 {
		t.Errorf("the event was logged slow %d times, want once", n)
	}
	if after := pidsOf(s.status(), "worker"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("workers %v after the slow event, were %v", after, before)
	}
}

// allJSON fails for each line of out that is not a JSON object.
func allJSON(t *testing.T, what, out string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil || e == nil {
			t.Errorf("%s: a line that is not JSON with log_format: json: %q", what, l)
		}
	}
}

// TestLogFormatJSONEveryLine: with log_format: json every line drover
// writes is a JSON object: the master's, the manager's, a handler's output
// (a Go panic's stack trace too), and the errors of a start that fails.
func TestLogFormatJSONEveryLine(t *testing.T) {
	t.Run("serving", func(t *testing.T) {
		s := startServer(t, httpConfig)
		logs := s.subscribe()
		c, err := net.DialTimeout("tcp", tcpAddr(s.addrs[0]), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /wait-cancel HTTP/1.1\r\nHost: e2e\r\n\r\n"))
		s.waitLog(logs, 10*time.Second, "the handler's output", func(e logEntry) bool { return e.str("output") == "waiting for cancel" })
		c.Close()
		resp, err := http.Get(httpURL(s, "/cut")) // the handler panics
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		s.waitLog(logs, 10*time.Second, "the handler's panic", func(e logEntry) bool {
			return strings.HasPrefix(e.str("output"), "goroutine ")
		})
		if out, err := s.drover("stop", "-c", s.config); err != nil {
			t.Fatalf("drover stop: %v\n%s", err, out)
		}
		<-s.exited
		allJSON(t, "drover start", s.logText())
	})
	for _, c := range []struct {
		name, cfg string
		flags     []string
		want      string
	}{
		{"invalid config", strings.Replace(httpConfig, "worker_num: 2", "worker_num: 0", 1) + "log_format: json\nlistener: x\n", nil,
			"worker_num: 0 is out of range"},
		{"bad flag", httpConfig, []string{"--worker-num", "0"}, "worker_num: 0 is out of range"},
		{"unsafe log_file", httpConfig + "log_file: {{dir}}/open/drover.log\n", nil, "is writable by others"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, c.cfg)
			open := filepath.Join(s.dir, "open")
			os.Mkdir(open, 0o777)
			os.Chmod(open, 0o777)
			out, err := s.drover(append([]string{"start", "-c", s.config}, c.flags...)...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Fatalf("drover start: %v\n%s", err, out)
			}
			allJSON(t, "drover start", out)
		})
	}
}
