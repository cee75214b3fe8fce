package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// phpScript is the absolute path of a PHP worker script under testdata/php.
func phpScript(t *testing.T, name string) string {
	t.Helper()
	if _, err := exec.LookPath("php"); err != nil {
		t.Fatal("php is not installed: the PHP SDK tests need php-cli and php-msgpack (apt-get install php-cli php-msgpack; .ci/run does it)")
	}
	p, err := filepath.Abs(filepath.Join("testdata", "php", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// phpWorkers is a config in which n PHP workers run script (an absolute
// path) behind listener (a listeners entry); extra goes at the top level.
func phpWorkers(n int, script, listener, extra string) string {
	return fmt.Sprintf("worker_num: %d\n%s\nworker:\n  cmd: [php, %s]\n  launch: exec\nlisteners:\n%s", n, extra, script, listener)
}

const (
	httpListener   = "  - address: tcp://127.0.0.1:0\n    protocol: http\n"
	lengthListener = "  - address: tcp://127.0.0.1:0\n    protocol: length\n    package_length_type: N\n    package_body_offset: 4\n"
)

// phpConfig serves handler.php with n PHP workers on an HTTP listener.
func phpConfig(t *testing.T, n int) string {
	return phpWorkers(n, phpScript(t, "handler.php"), httpListener, "")
}

// multipartForm encodes fields (name, value pairs) and one file as
// multipart/form-data; it returns the body and its Content-Type.
func multipartForm(fields []string, fileField, fileName string, content []byte) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	fw, _ := mw.CreateFormFile(fileField, fileName)
	fw.Write(content)
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func wantGet(t *testing.T, url string, status int, body string) {
	t.Helper()
	if st, b := get(t, url); st != status || b != body {
		t.Fatalf("GET %s: %d %q, want %d %q", url, st, b, status, body)
	}
}

// Two PHP workers serve HTTP; status names their SDK; bodies go both ways
// in pieces (flow control); a streamed response arrives whole. Once with
// drover's PHP extension (the other PHP tests run with it too, when it is
// built) and once with the pure-PHP SDK (DROVER_PHP_NATIVE=0).
func TestPHPServesHTTP(t *testing.T) {
	withAndWithoutPHPExt(t, 2, testPHPServesHTTP)
}

// What one request leaves in PHP's state (http_response_code, $_SESSION,
// $_GET) is gone in the next on the same worker, with drover's PHP
// extension and without.
func TestPHPRequestStateIsResetWithAndWithoutTheExtension(t *testing.T) {
	withAndWithoutPHPExt(t, 1, func(t *testing.T, cfg, sdk string) {
		s := startServer(t, cfg)
		wantGet(t, httpURL(s, "/native"), 200, sdk)
		wantGet(t, httpURL(s, "/status-code?set=418&q=1"), 200, `[418,true,{"set":"418","q":"1","extra":"x"},"\/status-code?set=418&q=1"]`)
		wantGet(t, httpURL(s, "/status-code"), 200, `[200,false,[],"\/status-code"]`)
	})
}

// withAndWithoutPHPExt runs test twice on n PHP workers of handler.php:
// with drover's PHP extension ("native"; skipped where it is not built)
// and with the pure-PHP SDK ("php", DROVER_PHP_NATIVE=0).
func withAndWithoutPHPExt(t *testing.T, n int, test func(t *testing.T, cfg, sdk string)) {
	for _, sdk := range []string{"native", "php"} {
		t.Run(sdk, func(t *testing.T) {
			if sdk == "native" && phpExtDir == "" {
				t.Skip("drover's PHP extension is not built here (no phpize: apt-get install php-dev); CI builds it")
			}
			cfg := phpConfig(t, n)
			if sdk == "php" {
				cfg = strings.Replace(cfg, "  launch: exec\n", "  launch: exec\n  env: {DROVER_PHP_NATIVE: \"0\"}\n", 1)
			}
			test(t, cfg, sdk)
		})
	}
}

func testPHPServesHTTP(t *testing.T, cfg, sdk string) {
	s := startServer(t, cfg)
	wantGet(t, httpURL(s, "/"), 200, "Hello, World!")
	wantGet(t, httpURL(s, "/native"), 200, sdk)
	rows := s.status()
	php := 0
	for _, r := range rows {
		if r.Role == "worker" && r.SDK == "php" && r.State == "ready" {
			php++
		}
	}
	if php != 2 {
		t.Fatalf("status shows %d ready PHP workers, want 2: %+v", php, rows)
	}
	out, err := s.drover("status", "-c", s.config)
	if err != nil || strings.Count(out, " php ") != 2 {
		t.Fatalf("drover status does not show two php workers (%v):\n%s", err, out)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<15) // 1.5 MiB: six windows
	resp, err := http.Post(httpURL(s, "/echo"), "application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("echo of 1.5 MiB: %d bytes back, err %v", len(got), err)
	}
	st, body := get(t, httpURL(s, "/big?n=5000000"))
	if st != 200 || len(body) != 5000000 || body[0] != 'A' || body[len(body)-1] != byte(65+(4999999>>16)%26) {
		t.Fatalf("streamed 5 MB: %d, %d bytes", st, len(body))
	}
}

// An uncaught exception answers 500 and is logged with file:line; the same
// worker serves on. A PHP fatal error (memory exhausted, E_USER_ERROR) and
// exit() answer 500 too, are logged, and the worker is replaced.
func TestPHPErrors(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	logs := s.subscribe()
	_, pid := get(t, httpURL(s, "/pid"))

	wantGet(t, httpURL(s, "/throw"), 500, "Internal Server Error")
	s.waitLog(logs, 5*time.Second, "the exception", func(e logEntry) bool {
		o := e.str("output")
		return e.msg() == "worker output" && strings.Contains(o, "uncaught RuntimeException: boom from the handler at ") &&
			strings.Contains(o, "handler.php:") && strings.Contains(o, "GET /throw") && e.str("worker_id") == "0"
	})
	wantGet(t, httpURL(s, "/pid"), 200, pid) // the same worker carries on

	for _, route := range []string{"/fatal", "/user-error", "/exit"} {
		_, before := get(t, httpURL(s, "/pid"))
		wantGet(t, httpURL(s, route), 500, "Internal Server Error")
		want := "PHP Fatal error: "
		if route == "/exit" {
			want = "the handler called exit() while handling GET /exit"
		}
		s.waitLog(logs, 5*time.Second, "the fatal error of "+route, func(e logEntry) bool {
			o := e.str("output")
			return e.msg() == "worker output" && strings.Contains(o, want) && strings.Contains(o, "drover starts a new one") &&
				(route == "/exit" || strings.Contains(o, "handler.php:"))
		})
		s.waitLog(logs, 10*time.Second, "the successor after "+route, func(e logEntry) bool {
			return e.msg() == "worker ready" && e.str("pid") != before
		})
		if _, after := get(t, httpURL(s, "/pid")); after == before {
			t.Fatalf("after %s the same worker (pid %s) serves", route, after)
		}
	}
	// Warnings are logged with file:line and do not fail the request.
	wantGet(t, httpURL(s, "/warn"), 200, "warned")
	s.waitLog(logs, 5*time.Second, "the warning", func(e logEntry) bool {
		o := e.str("output")
		return strings.Contains(o, `PHP Warning: Undefined array key "missing" in `) && strings.Contains(o, "(while handling GET /warn)")
	})
}

// What a handler prints goes to the log with the worker id, never to the
// client; request state (globals, session, output buffers) does not leak
// into the next request.
func TestPHPOutputAndStateReset(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	logs := s.subscribe()
	wantGet(t, httpURL(s, "/print"), 200, "answer")
	s.waitLog(logs, 5*time.Second, "the printed output", func(e logEntry) bool {
		return e.msg() == "worker output" && e.str("worker_id") == "0" &&
			e.str("output") == "output of GET /print (not sent to the client): printed by the handler"
	})
	wantGet(t, httpURL(s, "/leave-buffer"), 200, "buffer left open")
	s.waitLog(logs, 5*time.Second, "the left buffer", func(e logEntry) bool {
		return strings.Contains(e.str("output"), "output of GET /leave-buffer (not sent to the client): left in a buffer")
	})

	req, _ := http.NewRequest("POST", httpURL(s, "/state?a=1"), strings.NewReader("f=2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "c=3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st map[string]any
	if err := json.Unmarshal(first, &st); err != nil {
		t.Fatalf("%v: %s", err, first)
	}
	if fmt.Sprintf("%v %v %v %v", st["get"], st["post"], st["cookie"], st["server_uri"]) != "map[a:1] map[f:2] map[c:3] /state?a=1" {
		t.Fatalf("globals of the first request: %s", first)
	}
	_, second := get(t, httpURL(s, "/state"))
	if err := json.Unmarshal([]byte(second), &st); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%v %v %v %v %v %v", st["get"], st["post"], st["cookie"], st["server_uri"], st["session"], st["ob_level"]) != "[] [] [] /state false 1" {
		t.Fatalf("state leaked into the next request: %s", second)
	}
}

// A handler that leaks 1 MiB per request, with worker.max_memory 48M: the
// worker asks for its successor before its RSS passes the limit, and no
// request fails.
func TestPHPLeakingHandlerIsRecycledBeforeItsLimit(t *testing.T) {
	const limit = 48 << 20
	s := startServer(t, strings.Replace(phpConfig(t, 1), "  launch: exec", "  launch: exec\n  max_memory: 48M", 1))
	logs := s.subscribe()
	pids := map[string]bool{}
	maxRSS := 0
	for i := 0; i < 120; i++ {
		st, body := get(t, httpURL(s, "/leak"))
		if st != 200 {
			t.Fatalf("request %d: %d %s", i, st, body)
		}
		f := strings.Fields(body)
		rss, _ := strconv.Atoi(f[1])
		maxRSS = max(maxRSS, rss)
		pids[f[0]] = true
	}
	if maxRSS >= limit {
		t.Fatalf("a worker reached RSS %d, over max_memory %d", maxRSS, limit)
	}
	if len(pids) < 2 {
		t.Fatalf("120 MiB leaked by one worker (pids %v) and it was never replaced", pids)
	}
	s.waitLog(logs, 5*time.Second, "the retire line", func(e logEntry) bool {
		return strings.Contains(e.str("output"), "would pass max_memory 48.0MiB") && strings.Contains(e.str("output"), "asking drover for a successor")
	})
	s.waitLog(logs, 5*time.Second, "the replacement", func(e logEntry) bool {
		return e.msg() == "replacing worker: starting its successor" && strings.HasPrefix(e.str("cause"), "the worker asked to be replaced: RSS")
	})
	t.Logf("%d workers served 120 leaking requests; highest RSS %.1f MiB (limit 48)", len(pids), float64(maxRSS)/(1<<20))
}

// kill -9 of a PHP worker in the middle of a request: that client gets 502,
// a successor takes the slot, the others are not disturbed.
func TestPHPKilledMidRequest(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	logs := s.subscribe()
	_, pidStr := get(t, httpURL(s, "/pid"))
	pid, _ := strconv.Atoi(pidStr)
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(httpURL(s, "/sleep?ms=30000"))
		if err != nil {
			done <- result{0, err}
			return
		}
		resp.Body.Close()
		done <- result{resp.StatusCode, nil}
	}()
	// The request is at the worker once status counts it in flight.
	s.waitStatus("the request at the worker", inFlightAt(pid, 1))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.status != 502 {
			t.Fatalf("the client of the killed worker got %d, %v; want 502", r.status, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client of the killed worker got no answer")
	}
	s.waitLog(logs, 10*time.Second, "the successor", func(e logEntry) bool {
		return e.msg() == "worker ready" && e.str("pid") != pidStr
	})
	wantGet(t, httpURL(s, "/"), 200, "Hello, World!")
}

// Reloading PHP workers under load from 64 connections loses nothing.
func TestPHPReloadUnderLoad(t *testing.T) {
	s := startServer(t, phpConfig(t, 2))
	before := pidsOf(s.status(), "worker")
	res, stop := load(t, httpURL(s, "/"), 64)
	waitServed(t, res, 500)
	for i := 1; i <= 3; i++ {
		out, err := s.drover("reload", "-c", s.config)
		if err != nil || !strings.Contains(out, "reloaded 2/2 workers") {
			t.Fatalf("reload %d: %v\n%s", i, err, out)
		}
		waitServed(t, res, 500)
	}
	stop()
	after := pidsOf(s.status(), "worker")
	for _, p := range after {
		if slices.Contains(before, p) {
			t.Fatalf("worker pid %d survived 3 reloads", p)
		}
	}
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load during reloads: %s", res)
	}
	t.Logf("3 reloads of PHP workers under 64 connections: %s", res)
}

// Form and multipart bodies are parsed for the handler and $_POST.
func TestPHPFormsAndUploads(t *testing.T) {
	s := startServer(t, phpConfig(t, 2))
	form, ctype := multipartForm([]string{"name", "drover", "tags[]", "a", "tags[]", "b"}, "doc", "notes.txt", bytes.Repeat([]byte("x"), 100000))
	resp, err := http.Post(httpURL(s, "/form"), ctype, bytes.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Post, GlobalsPost map[string]any
		Files             map[string][]any
	}
	if err := json.Unmarshal(bytes.ReplaceAll(body, []byte(`"globals_post"`), []byte(`"globalspost"`)), &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if fmt.Sprint(got.Post) != "map[name:drover tags:[a b]]" || fmt.Sprint(got.GlobalsPost) != fmt.Sprint(got.Post) {
		t.Fatalf("form fields: %s", body)
	}
	if f := got.Files["doc"]; len(f) != 3 || f[0] != "notes.txt" || f[1] != float64(100000) {
		t.Fatalf("uploaded file: %s", body)
	}
}

// Tasks between PHP and Go, in both directions, and PHP to PHP; messages
// and timers in a PHP worker.
func TestPHPTasksMessagesTimers(t *testing.T) {
	handler := phpScript(t, "handler.php")
	cases := []struct{ name, worker, task string }{
		{"php to php", "cmd: [php, " + handler + "]\n  launch: exec", "cmd: [php, " + handler + "]\n  launch: exec"},
		{"php to go", "cmd: [php, " + handler + "]\n  launch: exec", "cmd: [{{bin}}/tasks]"},
		{"go to php", "cmd: [{{bin}}/tasks]", "cmd: [php, " + handler + "]\n  launch: exec"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			s := startServer(t, fmt.Sprintf(`
worker_num: 2
task_worker_num: 2
worker:
  %s
task_worker:
  %s
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`, c.worker, c.task))
			url := httpURL(s, "/fanout?n=20")
			if strings.HasPrefix(c.name, "go") {
				url += "&delay=1ms"
			}
			wantGet(t, url, 200, "2870")
		})
	}
	s := startServer(t, fmt.Sprintf(`
worker_num: 2
task_worker_num: 1
worker:
  cmd: [php, %[1]s]
  launch: exec
task_worker:
  cmd: [php, %[1]s]
  launch: exec
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`, handler))
	wantGet(t, httpURL(s, "/task?t=abc"), 200, "php:cba")
	wantGet(t, httpURL(s, "/task?t=fail"), 502, "task error: the task failed on purpose")
	st, body := get(t, httpURL(s, "/task?t=fatal"))
	if st != 502 || !strings.Contains(body, "PHP fatal error in the PHP task worker") {
		t.Fatalf("a task whose worker dies of a fatal error: %d %q", st, body)
	}
	wantGet(t, httpURL(s, "/task?t=xyz"), 200, "php:zyx") // the successor serves

	// A message to the task worker (id 2) comes back from it, to whichever
	// worker sent it; timers tick between requests.
	var who struct{ ID int }
	_, b := get(t, httpURL(s, "/whoami"))
	json.Unmarshal([]byte(b), &who)
	wantGet(t, httpURL(s, "/message?to=2&text=ping"), 200, "sent")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var found bool
		for i := 0; i < 4 && !found; i++ {
			_, m := get(t, httpURL(s, "/messages"))
			found = strings.Contains(m, "2: task worker 2 got: ping")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task worker's answer to a message never arrived")
		}
		time.Sleep(20 * time.Millisecond) // polling the workers' message lists
	}
	_, t1 := get(t, httpURL(s, "/ticks"))
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, t2 := get(t, httpURL(s, "/ticks"))
		n1, _ := strconv.Atoi(t1)
		if n2, _ := strconv.Atoi(t2); n2 > n1+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a 20ms tick timer did not advance: %s then %s", t1, t2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A PHP stream worker: connect, receive, send, close, as in Swoole.
func TestPHPStreamWorker(t *testing.T) {
	s := startServer(t, phpWorkers(2, phpScript(t, "stream.php"), lengthListener, ""))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, s.addrs[0])
			for j := 0; j < 50; j++ {
				msg := fmt.Sprintf("conn %d message %d %s", i, j, strings.Repeat("p", j*100))
				if got, err := c.roundTrip(msg); err != nil || got != msg {
					errs <- fmt.Errorf("conn %d message %d: %q, %v", i, j, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c := dial(t, s.addrs[0])
	if n, err := c.roundTrip("count"); err != nil || n == "" {
		t.Fatalf("count: %q, %v", n, err)
	}
	c.c.Write(frame("close"))
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.read(); err != io.EOF {
		t.Fatalf("after close: %v, want EOF", err)
	}
}

// A PSR-15 request handler on Nyholm's PSR-7 runs unchanged: the request
// carries the query, cookies, headers, parsed body and uploads; a response
// body of unknown size is streamed.
func TestPHPPSR7Handler(t *testing.T) {
	s := startServer(t, phpWorkers(1, phpScript(t, "psr7.php"), httpListener, ""))
	req, _ := http.NewRequest("POST", httpURL(s, "/p/q?a[]=1&b=2"), strings.NewReader(`{"k":[true,null]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", "sid=x%2By")
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"path":"\/p\/q","query":{"a":["1"],"b":"2"},"host":"127.0.0.1","cookies":{"sid":"x+y"},"parsed":{"k":[true,null]},` +
		`"body":"{\"k\":[true,null]}","files":[],"accept":"text\/plain","remote":"127.0.0.1"}`
	if resp.StatusCode != 200 || resp.Header.Get("X-Method") != "POST" || string(b) != want {
		t.Fatalf("%d %v\n%s\nwant\n%s", resp.StatusCode, resp.Header, b, want)
	}

	form, ctype := multipartForm([]string{"f", "v"}, "up", "a.txt", []byte("uploaded"))
	resp, err = http.Post(httpURL(s, "/up"), ctype, bytes.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"parsed":{"f":"v"}`) || !strings.Contains(string(b), `"files":{"up":["a.txt",8,"`) {
		t.Fatalf("multipart through PSR-7: %s", b)
	}

	st, body := get(t, httpURL(s, "/big"))
	if st != 200 || len(body) != 64*65536 || body[65536] != 'b' {
		t.Fatalf("streamed PSR-7 body: %d, %d bytes", st, len(body))
	}
}

// A request sent ahead to a worker (prefetch) that then dies of a fatal
// error is handed back unstarted and served by its successor: only the
// request that caused the error fails.
func TestPHPFatalHandsBackThePrefetchedRequest(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	logs := s.subscribe()
	_, pidStr := get(t, httpURL(s, "/pid"))
	pid, _ := strconv.Atoi(pidStr)
	cue := filepath.Join(t.TempDir(), "die")
	type result struct {
		status int
		body   string
	}
	fatal, ahead := make(chan result, 1), make(chan result, 1)
	fetch := func(path string, out chan result) {
		resp, err := http.Get(httpURL(s, path))
		if err != nil {
			out <- result{0, err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- result{resp.StatusCode, string(b)}
	}
	go fetch("/fatal-when?file="+cue, fatal)
	s.waitStatus("the first request at the worker", inFlightAt(pid, 1))
	go fetch("/", ahead)
	// The second one was sent ahead: it waits in the worker's channel.
	s.waitStatus("the second request sent ahead", inFlightAt(pid, 2))
	if err := os.WriteFile(cue, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := <-fatal; r.status != 500 {
		t.Fatalf("the request that died: %d %q, want 500", r.status, r.body)
	}
	if r := <-ahead; r.status != 200 || r.body != "Hello, World!" {
		t.Fatalf("the request sent ahead: %d %q, want 200 Hello, World!", r.status, r.body)
	}
	s.waitLog(logs, 5*time.Second, "the hand-back", func(e logEntry) bool {
		return e.msg() == "request handed back unstarted by an exiting worker; sending it to another" && e.str("target") == "/"
	})
}

// PHP sessions work as under php-fpm: the SDK sends the session cookie of a
// new session, a client that sends it back gets its session, and a client
// without the cookie never gets the previous client's.
func TestPHPSessionsDoNotLeakBetweenClients(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	dir := t.TempDir() // the session files
	ask := func(cookie string) (id, n, setCookie string) {
		t.Helper()
		req, _ := http.NewRequest("GET", httpURL(s, "/session?dir="+dir), nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
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
		return f[0], f[1], resp.Header.Get("Set-Cookie")
	}
	id1, n, sc := ask("")
	if n != "1" || !strings.HasPrefix(sc, "PHPSESSID="+id1+";") && sc != "PHPSESSID="+id1 {
		t.Fatalf("new session: id %s n %s Set-Cookie %q", id1, n, sc)
	}
	if id, n, sc := ask("PHPSESSID=" + id1); id != id1 || n != "2" || sc != "" {
		t.Fatalf("returning client: id %s n %s Set-Cookie %q; want %s 2 and no cookie", id, n, sc, id1)
	}
	if id, n, _ := ask(""); id == id1 || n != "1" {
		t.Fatalf("a new client got session %s with n %s: the previous client's session leaked", id, n)
	}
}

// examples/php/tasks.php, as its config runs it (PHP workers and PHP task
// workers), answers what its header says.
func TestPHPTasksExample(t *testing.T) {
	cfg, err := os.ReadFile("../examples/php/tasks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("../examples/php/tasks.php")
	c := strings.ReplaceAll(string(cfg), "cmd: [php, tasks.php]", "cmd: [php, "+script+"]")
	c = strings.Replace(c, "tcp://127.0.0.1:8083", "tcp://127.0.0.1:0", 1)
	s := startServer(t, c)
	wantGet(t, httpURL(s, "/fanout?n=100&delay=1ms"), 200, "338350")
	wantGet(t, httpURL(s, "/fanout?n=0"), 400, "n must be a number from 1 to 10000")
	if st, body := get(t, httpURL(s, "/counter")); st != 200 || !strings.HasPrefix(body, "timer ticks ") {
		t.Fatalf("/counter: %d %q", st, body)
	}
	if st, body := get(t, httpURL(s, "/async")); st != 200 || !strings.HasPrefix(body, "sent task ") {
		t.Fatalf("/async: %d %q", st, body)
	}
}

// A PHP worker whose bootstrap throws exits 78 (a failed start) with one
// line saying why, and drover start fails with that line.
func TestPHPBootFailureFailsStartWithReason(t *testing.T) {
	s := newServer(t, phpWorkers(1, phpScript(t, "boot_failure.php"), httpListener, ""))
	out, err := s.drover("start", "-c", s.config)
	if err == nil {
		t.Fatalf("start with a failing PHP worker succeeded:\n%s", out)
	}
	if !strings.Contains(out, "exited with code 78") ||
		!strings.Contains(out, "the worker failed to start: Uncaught RuntimeException: cannot reach the database at db:5432 in ") ||
		!strings.Contains(out, "boot_failure.php:9") {
		t.Errorf("start error does not give the exit code and the reason:\n%s", out)
	}
}

// Stream\Worker::bind ties a connection to a user id (dispatch_mode 5): its
// events then go to worker uid % worker_num, whichever it started on.
func TestPHPStreamBind(t *testing.T) {
	s := startServer(t, phpWorkers(2, phpScript(t, "stream.php"), lengthListener, "dispatch_mode: 5"))
	for uid, want := range []string{"0", "1", "0", "1", "0", "1", "0", "1"} { // 8: chance alone would pass 1 in 256
		c := dial(t, s.addrs[0])
		if got, err := c.roundTrip("bind " + strconv.Itoa(uid)); err != nil || got != "bound" {
			t.Fatalf("bind %d: %q, %v", uid, got, err)
		}
		for i := 0; i < 3; i++ {
			if got, err := c.roundTrip("whoami"); err != nil || got != want {
				t.Fatalf("uid %d: served by worker %q (%v), want %s", uid, got, err, want)
			}
		}
	}
}

// A request sent ahead to a busy worker whose client leaves before the
// worker gets to it is not run: the worker finds its Cancel waiting.
func TestPHPPrefetchedRequestOfAGoneClientIsNotRun(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	_, pidStr := get(t, httpURL(s, "/pid"))
	pid, _ := strconv.Atoi(pidStr)
	dir := t.TempDir()
	release, mark := filepath.Join(dir, "release"), filepath.Join(dir, "mark")
	held := make(chan string, 1)
	go func() { _, b := get(t, httpURL(s, "/hold?file="+release)); held <- b }()
	s.waitStatus("the held request at the worker", inFlightAt(pid, 1))
	c, err := net.Dial("tcp", tcpAddr(s.addrs[0]))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /mark?file=%s HTTP/1.1\r\nHost: x\r\n\r\n", mark)
	s.waitStatus("the second request sent ahead", inFlightAt(pid, 2))
	c.(*net.TCPConn).SetLinger(0) // a reset: the client is gone, not half-closed
	c.Close()
	s.waitStatus("the gone client's connection closed", func(rows []statusRow) bool { return rows[0].Connections == 1 })
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if b := <-held; b != "held" {
		t.Fatalf("the held request: %q", b)
	}
	wantGet(t, httpURL(s, "/"), 200, "Hello, World!") // the worker is past the skipped request
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("the request of a client that had gone was run")
	}
}

// An endless streamed response (server-sent events) stops when its client
// goes away, and the worker serves the next request.
func TestPHPEndlessStreamStopsWhenTheClientLeaves(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	c, err := net.Dial("tcp", tcpAddr(s.addrs[0]))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for seen := 0; seen < 3; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			seen++
		}
	}
	c.Close()
	wantGet(t, httpURL(s, "/"), 200, "Hello, World!") // the only worker is free again
}

// A header whose name has an underscore never reaches $_SERVER, where it
// would meet the header a proxy set (X_Forwarded_For and X-Forwarded-For
// are both HTTP_X_FORWARDED_FOR): nginx and Apache leave such headers out
// of a CGI environment for that reason, and so does drover.
func TestPHPUnderscoreHeadersDoNotReachServer(t *testing.T) {
	s := startServer(t, phpConfig(t, 1))
	for _, path := range []string{"/server?name=HTTP_X_FORWARDED_FOR", "/server?name=HTTP_X_TOKEN"} {
		req, _ := http.NewRequest("GET", httpURL(s, path), nil)
		req.Header["X-Forwarded-For"] = []string{"10.0.0.1"}
		req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
		req.Header["X_Token"] = []string{"forged"}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]string{"/server?name=HTTP_X_FORWARDED_FOR": "10.0.0.1", "/server?name=HTTP_X_TOKEN": ""}[path]
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s with X_Forwarded_For and X_Token: %d %q, want %q", path, resp.StatusCode, body, want)
		}
	}
}
