package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Drover\Http\Worker::afterResponse: the client has its answer while the
// callback still runs (it waits for a file the test creates only once the
// answer arrived); what the callback logs, throws or dies of goes to the
// log, and a fatal error after the answer replaces the worker without
// touching the answered request. A Closure body writes its pieces.
func TestPHPAfterResponse(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	logs := s.subscribe()
	dir := t.TempDir()
	_, pid := get(t, httpURL(s, "/pid"))

	for _, then := range []string{"log", "throw", "fatal"} {
		file := filepath.Join(dir, then)
		// The callback holds the worker until the file exists: the answer
		// can only arrive before it if it left before the callback ran.
		wantGet(t, httpURL(s, "/after?then="+then+"&file="+file), 200, "answered")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		switch then {
		case "log":
			s.waitLog(logs, 10*time.Second, "the callback's line", func(e logEntry) bool {
				return e.msg() == "worker output" && e.str("output") == "after the response of GET /after"
			})
		case "throw":
			s.waitLog(logs, 10*time.Second, "the callback's exception", func(e logEntry) bool {
				o := e.str("output")
				return strings.HasPrefix(o, "uncaught RuntimeException: thrown after the response at ") &&
					strings.Contains(o, "in an afterResponse callback of GET /after?then=throw") && strings.HasSuffix(o, "the worker carries on")
			})
			wantGet(t, httpURL(s, "/pid"), 200, pid)
		case "fatal":
			s.waitLog(logs, 10*time.Second, "the fatal error after the answer", func(e logEntry) bool {
				o := e.str("output")
				return strings.Contains(o, "PHP Fatal error: dying after the response") && strings.Contains(o, "(after its response)")
			})
			s.waitLog(logs, 10*time.Second, "the successor", func(e logEntry) bool {
				return e.msg() == "worker ready" && e.str("pid") != pid
			})
		}
	}
	if _, after := get(t, httpURL(s, "/pid")); after == pid {
		t.Fatalf("the worker that died after its answer (pid %s) still serves", pid)
	}
	wantGet(t, httpURL(s, "/writer?n=3"), 200, "piece 1\npiece 2\npiece 3")
	// The fatal error's own lines aside, nothing went wrong on the wire.
	expected := map[string]bool{"worker is exiting; it gets no new work and the manager will start a new one": true, "worker failed; restarting after back-off": true}
	if s.hasLog(func(e logEntry) bool { return (e["level"] == "error" || e["level"] == "warning") && !expected[e.msg()] }) {
		t.Fatalf("drover logged a failure:\n%s", s.logText())
	}
}

// A handler that flushes its output (ob_flush(), as code written for
// php-fpm does) has it logged like any other output: it never reaches the
// worker's stdout, where PHP would count the response's headers as sent
// for the rest of the process. After that, session_id() could no longer be
// changed, and the next client without a cookie would resume the previous
// client's session.
func TestPHPFlushedOutputIsLoggedAndSessionsStaySeparate(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	logs := s.subscribe()
	dir := t.TempDir()
	wantGet(t, httpURL(s, "/flush"), 200, "flushed")
	session := func(cookie string) (id, n string) {
		t.Helper()
		req, _ := http.NewRequest("GET", httpURL(s, "/session?dir="+dir), nil)
		if cookie != "" {
			req.Header.Set("Cookie", "PHPSESSID="+cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		f := strings.Fields(string(b))
		if resp.StatusCode != 200 || len(f) != 2 {
			t.Fatalf("/session: %d %q", resp.StatusCode, b)
		}
		return f[0], f[1]
	}
	a, n := session("")
	if n != "1" {
		t.Fatalf("A's new session %s counts %s", a, n)
	}
	if id, n := session(a); id != a || n != "2" {
		t.Fatalf("A's second request: session %s count %s, want %s 2", id, n, a)
	}
	if id, n := session(""); id == a || n != "1" {
		t.Fatalf("B, without a cookie, got session %s with count %s: A's session (%s) leaked", id, n, a)
	}
	s.waitLog(logs, 5*time.Second, "the flushed output", func(e logEntry) bool {
		return e.str("output") == "output of GET /flush (not sent to the client): flushed by the handler"
	})
}
