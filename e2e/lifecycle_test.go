package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadResult counts what a load client saw.
type loadResult struct {
	ok, non2xx, errs atomic.Int64
	mu               sync.Mutex
	firstErrs        []string
}

func (r *loadResult) fail(msg string) {
	r.errs.Add(1)
	r.mu.Lock()
	if len(r.firstErrs) < 5 {
		r.firstErrs = append(r.firstErrs, msg)
	}
	r.mu.Unlock()
}

func (r *loadResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d ok, %d non-2xx, %d errors %q", r.ok.Load(), r.non2xx.Load(), r.errs.Load(), r.firstErrs)
}

// load runs conns keep-alive clients sending GET url until stop is called;
// res counts what they saw (every answer must be "Hello, World!").
func load(t *testing.T, url string, conns int) (res *loadResult, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	res = new(loadResult)
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Get(url)
				if err != nil {
					res.fail(err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					res.fail("body: " + err.Error())
				case resp.StatusCode/100 != 2:
					res.non2xx.Add(1)
					res.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
				case string(body) != "Hello, World!":
					res.fail(fmt.Sprintf("body %q", body))
				default:
					res.ok.Add(1)
				}
			}
		}()
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { cancel(); wg.Wait() }) })
	return res, func() { once.Do(func() { cancel(); wg.Wait(); tr.CloseIdleConnections() }) }
}

// stoppedCleanly checks the load of a stopped server: no error answer,
// and no client error but those of a listener that closed (refused
// connections, keep-alive connections ended).
func stoppedCleanly(t *testing.T, res *loadResult) {
	t.Helper()
	if res.non2xx.Load() != 0 {
		t.Fatalf("error answers during the stop: %s", res)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	for _, e := range res.firstErrs {
		if !strings.Contains(e, "connection refused") && !strings.Contains(e, "EOF") && !strings.Contains(e, "connection reset") {
			t.Errorf("unexpected client error during the stop: %s", e)
		}
	}
}

// waitServed waits until the load client has had n more good answers.
func waitServed(t *testing.T, r *loadResult, n int64) {
	t.Helper()
	want := r.ok.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for r.ok.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled: %s", r)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, not waiting for an event to happen by itself
	}
}

// Under load from 64 connections, five reloads in a row replace every
// worker each time and no client sees an error.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	s := startServer(t, httpConfig)
	pids := pidsOf(s.status(), "worker")
	if len(pids) != 2 {
		t.Fatalf("worker pids %v", pids)
	}
	res, stop := load(t, httpURL(s, "/"), 64)
	waitServed(t, res, 500)
	seen := slices.Clone(pids)
	for i := 1; i <= 5; i++ {
		out, err := s.drover("reload", "-c", s.config)
		if err != nil {
			t.Fatalf("reload %d: %v\n%s", i, err, out)
		}
		if !strings.Contains(out, "reloaded 2/2 workers") {
			t.Fatalf("reload %d printed %q", i, out)
		}
		now := pidsOf(s.status(), "worker")
		if len(now) != 2 {
			t.Fatalf("after reload %d: worker pids %v", i, now)
		}
		for _, p := range now {
			if slices.Contains(seen, p) {
				t.Fatalf("after reload %d: worker pid %d was there before (pids so far %v)", i, p, seen)
			}
		}
		seen = append(seen, now...)
		waitServed(t, res, 500) // the new workers serve before the next reload
	}
	stop()
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load during reloads: %s", res)
	}
	t.Logf("5 reloads under 64 connections: %s; worker pids %v", res, seen)
}

// A reload whose successor cannot start stops there, says why, exits
// non-zero, and leaves the old workers serving.
func TestReloadWithBrokenSuccessorKeepsServing(t *testing.T) {
	sw := t.TempDir() + "/fail"
	s := startServer(t, strings.Replace(httpConfig, "env: {E2E_HANDLER: http}",
		"env: {E2E_HANDLER: http, E2E_FAIL_START_IF: "+sw+"}", 1))
	before := pidsOf(s.status(), "worker")
	if err := os.WriteFile(sw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, stop := load(t, httpURL(s, "/"), 8)
	waitServed(t, res, 100)
	out, err := s.drover("reload", "-c", s.config)
	if err == nil {
		t.Fatalf("reload with a broken handler succeeded:\n%s", out)
	}
	if !strings.Contains(out, "successor failed to start") || !strings.Contains(out, "exited with code 1") ||
		!strings.Contains(out, "keeps serving") {
		t.Fatalf("reload failure says %q; want the cause and that the old worker keeps serving", out)
	}
	waitServed(t, res, 100)
	stop()
	if res.errs.Load() != 0 {
		t.Fatalf("load during the failed reload: %s", res)
	}
	if now := pidsOf(s.status(), "worker"); !slices.Equal(now, before) {
		t.Fatalf("worker pids %v after a failed reload, want the old ones %v", now, before)
	}
	// Fixed, the next reload goes through.
	os.Remove(sw)
	if out, err := s.drover("reload", "-c", s.config); err != nil || !strings.Contains(out, "reloaded 2 workers") {
		t.Fatalf("reload after the fix: %v\n%s", err, out)
	}
}

// With max_request, workers are replaced continuously under load and no
// client notices.
func TestMaxRequestRecyclesUnderLoad(t *testing.T) {
	s := startServer(t, httpConfig+"max_request: 300\nmax_request_grace: 100\n")
	res, stop := load(t, httpURL(s, "/"), 32)
	logs := s.subscribe()
	recycled := 0
	for recycled < 6 {
		s.waitLog(logs, 30*time.Second, "a max_request replacement", func(e logEntry) bool {
			return strings.HasPrefix(e.msg(), "successor ready") && strings.Contains(e.str("cause"), "max_request")
		})
		recycled++
	}
	stop()
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load during recycling: %s", res)
	}
	t.Logf("%d recycles under 32 connections: %s", recycled, res)
}

// A worker whose memory grows past worker.max_memory is replaced the
// graceful way, and the log says why.
func TestMaxMemoryRecycles(t *testing.T) {
	s := startServer(t, strings.Replace(httpConfig, "  env: {E2E_HANDLER: http}",
		"  env: {E2E_HANDLER: http}\n  max_memory: 96M", 1))
	logs := s.subscribe()
	res, stop := load(t, httpURL(s, "/"), 8)
	resp, err := http.Get(httpURL(s, "/grow?mb=128"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	grown := strings.TrimPrefix(string(body), "grown ")
	// The worker that leaked is the one replaced (not one that merely
	// started above the limit).
	s.waitLog(logs, 30*time.Second, "the leaking worker's max_memory replacement", func(e logEntry) bool {
		return strings.HasPrefix(e.msg(), "successor ready") && strings.Contains(e.str("cause"), "max_memory exceeded") &&
			e.str("pid") == grown
	})
	waitServed(t, res, 200)
	stop()
	if res.errs.Load() != 0 {
		t.Fatalf("load during the memory recycle: %s", res)
	}
}

// drover stop under load: the request in flight completes, clients see no
// error answer (only refused connections once the listeners closed), and
// every process is gone with the pid file.
func TestStopUnderLoad(t *testing.T) {
	s := startServer(t, httpConfig+"pid_file: {{dir}}/drover.pid\n")
	pidFile := s.dir + "/drover.pid"
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pids := allPIDs(s.status())
	res, stop := load(t, httpURL(s, "/"), 16)
	waitServed(t, res, 300)
	fifo, held, release := holdFIFO(t, s.dir)
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(httpURL(s, "/fifo?path="+fifo))
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	// The held request is in flight once its handler opened the FIFO (the
	// load's requests make the status's in-flight count no evidence); it
	// is released once the stop drains.
	held()
	logs := s.subscribe()
	stopped := s.droverAsync("stop", "-c", s.config)
	s.waitLog(logs, 10*time.Second, "the drain", func(e logEntry) bool { return e.msg() == "listeners closed; draining in-flight events" })
	release()
	if out := <-stopped; !strings.Contains(out, "drover stopped") {
		t.Fatalf("drover stop: %s", out)
	}
	if got := <-slow; got != "200 released" {
		t.Fatalf("the request in flight during the stop got %q, want 200 released", got)
	}
	stop()
	stoppedCleanly(t, res)
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d still alive after drover stop", p)
		}
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file still there after the stop (%v)", err)
	}
}

// A worker that crashes at start-up is retried with growing back-off, the
// reason shows in drover status, and the other slot keeps serving; one that
// never says hello is killed after worker.start_timeout, as a failed start.
func TestCrashingSlotBacksOffOthersServe(t *testing.T) {
	for _, mode := range []string{"exit", "hang"} {
		t.Run(mode, func(t *testing.T) {
			sw := t.TempDir() + "/fail"
			s := startServer(t, strings.Replace(httpConfig, "  env: {E2E_HANDLER: http}",
				"  env: {E2E_HANDLER: http, E2E_FAIL_START_IF: "+sw+", E2E_FAIL_SLOT: \"1\", E2E_FAIL_MODE: "+mode+"}\n  start_timeout: 1s", 1))
			var victim int
			for _, r := range s.status() {
				if r.Role == "worker" && r.ID == 1 {
					victim = r.PID
				}
			}
			if err := os.WriteFile(sw, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			logs := s.subscribe()
			syscall.Kill(victim, syscall.SIGKILL)
			var backoffs []int
			for len(backoffs) < 3 {
				e := s.waitLog(logs, 30*time.Second, "a failed restart", func(e logEntry) bool {
					return e.msg() == "worker failed; restarting after back-off" && e.str("worker_id") == "1"
				})
				ms, _ := strconv.Atoi(e.str("backoff_ms"))
				backoffs = append(backoffs, ms)
			}
			if !(backoffs[0] < backoffs[1] && backoffs[1] < backoffs[2]) {
				t.Fatalf("back-offs %v ms, want growing", backoffs)
			}
			want := "exited with code 1; last stderr: cannot start: the test's failure switch is on"
			if mode == "hang" {
				want = "no hello within start_timeout (1s)"
			}
			var why string
			for _, r := range s.status() {
				if r.Role == "worker" && r.ID == 1 {
					why = r.LastExit
				}
			}
			if !strings.Contains(why, want) {
				t.Fatalf("drover status shows %q for the failing slot, want it to say %q", why, want)
			}
			for range 20 {
				if out := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(out, "Hello, World!") {
					t.Fatalf("while slot 1 fails: %q", out)
				}
			}
		})
	}
}

// With user: and group:, the workers run as that user (the master and the
// manager keep root, as nginx's and php-fpm's masters do), plugin launch
// included.
func TestWorkersRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root; this test runs as uid", os.Geteuid())
	}
	// The test binary lives in a private build directory: give nobody a copy.
	dir, err := os.MkdirTemp("", "drover-user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(helperPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := dir + "/handler"
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(httpConfig, "cmd: [{{helper}}]", "cmd: ["+bin+"]\n  dir: "+dir, 1)
	pluginDirs := func() []string {
		d, _ := filepath.Glob(filepath.Join(os.TempDir(), "drover-*.mgr*"))
		return d
	}
	before := pluginDirs()
	s := startServer(t, cfg+"user: nobody\ngroup: nogroup\n")
	if out := rawHTTP(t, s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(out, "Hello, World!") {
		t.Fatalf("%q", out)
	}
	for _, r := range s.status() {
		if r.PID <= 0 {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.PID))
		if err != nil {
			t.Fatal(err)
		}
		uid := ""
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				uid = f[1]
			}
		}
		want := "0"
		if r.Role == "worker" {
			want = "65534"
		}
		if uid != want {
			t.Errorf("%s pid %d runs as uid %s, want %s", r.Role, r.PID, uid, want)
		}
	}
	// The workers' socket directory in the temp dir goes with drover.
	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	for _, d := range pluginDirs() {
		if !slices.Contains(before, d) {
			t.Errorf("drover stop left %s behind", d)
		}
	}
}
