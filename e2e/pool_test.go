package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/worker"
)

// A pool that changes size while it serves: drover scale, SIGTTIN and
// SIGTTOU, a dynamic worker_num, worker ttl and idle_ttl.

// servePoolHandler is the handler of these tests: one request at a time
// (as a PHP worker), "Hello, World!" after E2E_SLEEP (a Go duration,
// default none), so that a pool's size decides how much it serves.
func servePoolHandler() {
	sleep, _ := time.ParseDuration(os.Getenv("E2E_SLEEP"))
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(sleep)
		io.WriteString(w, "Hello, World!")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, os.Getenv("DROVER_WORKER_ID"))
	})
	worker.RunHTTP(mux, worker.WithConcurrency(1))
}

const poolConfig = `
worker_num: 2
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: pool, E2E_SLEEP: 2ms}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`

// poolRow is the master's pools in drover status --json.
type poolRow struct {
	Role       string `json:"role"`
	Size       int    `json:"size"`
	Ready      int    `json:"ready"`
	Target     int    `json:"target"`
	Configured int    `json:"configured"`
	Dynamic    bool   `json:"dynamic"`
	Min        int    `json:"min"`
	Max        int    `json:"max"`
}

// pools returns the pools drover status reports, by role.
func (s *server) pools() map[string]poolRow {
	s.t.Helper()
	out, err := s.drover("status", "--json", "-c", s.config)
	if err != nil {
		s.t.Fatalf("drover status: %v\n%s", err, out)
	}
	var rows []struct {
		Role  string    `json:"role"`
		Pools []poolRow `json:"pools"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		s.t.Fatalf("drover status --json: %v\n%s", err, out)
	}
	m := map[string]poolRow{}
	for _, r := range rows {
		for _, p := range r.Pools {
			m[p.Role] = p
		}
	}
	return m
}

// readyWorkers is a waitStatus condition: n workers ready, none other.
func readyWorkers(n int) func([]statusRow) bool {
	return func(rows []statusRow) bool {
		ready, other := 0, 0
		for _, r := range rows {
			switch {
			case r.Role != "worker":
			case r.State == "ready":
				ready++
			default:
				other++
			}
		}
		return ready == n && other == 0
	}
}

// Under load from 64 connections, drover scale grows the pool to 4, then
// shrinks it to 1, then grows it to 3: each new worker serves, each
// retired one leaves, and no client sees an error.
func TestScaleUnderLoadLosesNothing(t *testing.T) {
	s := startServer(t, poolConfig)
	res, stop := load(t, httpURL(s, "/"), 64)
	waitServed(t, res, 300)
	before := pidsOf(s.status(), "worker")
	for _, step := range []struct {
		to   int
		from int
	}{{4, 2}, {1, 4}, {3, 1}} {
		out, err := s.drover("scale", "-c", s.config, fmt.Sprint(step.to))
		if err != nil {
			t.Fatalf("scale %d: %v\n%s", step.to, err, out)
		}
		if want := fmt.Sprintf("scaled workers from %d to %d", step.from, step.to); !strings.Contains(out, want) {
			t.Fatalf("scale %d printed %q, want %q", step.to, out, want)
		}
		rows := s.status()
		if !readyWorkers(step.to)(rows) {
			t.Fatalf("after scale %d: workers %+v", step.to, rows)
		}
		if p := s.pools()["worker"]; p.Size != step.to || p.Ready != step.to || p.Target != step.to || p.Configured != 2 {
			t.Fatalf("after scale %d: pool %+v", step.to, p)
		}
		waitServed(t, res, 300) // the pool serves at its new size
	}
	// The retired workers are gone, not lingering.
	now := pidsOf(s.status(), "worker")
	var retired []int
	for _, p := range before {
		if !slices.Contains(now, p) {
			retired = append(retired, p)
		}
	}
	waitGone(t, retired, 10*time.Second)
	stop()
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load during scaling: %s", res)
	}
	t.Logf("scale 2 → 4 → 1 → 3 under 64 connections: %s", res)
}

// SIGTTIN adds a worker, SIGTTOU removes one (gunicorn's signals); at one
// worker SIGTTOU changes nothing and says why.
func TestScaleBySignals(t *testing.T) {
	s := startServer(t, poolConfig)
	master := masterPID(t, s)
	logs := s.subscribe()
	syscall.Kill(master, syscall.SIGTTIN)
	s.waitStatus("3 workers after SIGTTIN", readyWorkers(3))
	// One at a time: the kernel merges a signal sent while the same one is
	// pending.
	syscall.Kill(master, syscall.SIGTTOU)
	s.waitStatus("2 workers after SIGTTOU", readyWorkers(2))
	syscall.Kill(master, syscall.SIGTTOU)
	s.waitStatus("1 worker after a second SIGTTOU", readyWorkers(1))
	syscall.Kill(master, syscall.SIGTTOU)
	s.waitLog(logs, 10*time.Second, "SIGTTOU refused at one worker", func(e logEntry) bool {
		return e.msg() == "pool not scaled: cannot scale workers to 0: want 1 to 1024"
	})
	if p := s.pools()["worker"]; p.Size != 1 || p.Target != 1 {
		t.Fatalf("after SIGTTOU at one worker: pool %+v", p)
	}
	if code, body := get(t, httpURL(s, "/")); code != 200 || body != "Hello, World!" {
		t.Fatalf("GET / at one worker: %d %q", code, body)
	}
}

// What drover scale refuses: a size out of range (with the way to allow
// it), task workers where there are none, a number that is not one.
func TestScaleRefusals(t *testing.T) {
	s := startServer(t, tasksConfig)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"3"}, 1, "cannot scale workers to 3: want 1 to 2: the worker ids after the workers' belong to the task workers and processes (messages address them by id); to let the pool grow, give worker_num a range, e.g. worker_num: {min: 2, max: 4}"},
		{[]string{"--tasks", "0"}, 1, `"0" is not a number of workers`},
		{[]string{"many"}, 1, `"many" is not a number of workers`},
		{[]string{}, 1, "scale takes one argument"},
	} {
		out, err := s.drover(append([]string{"scale", "-c", s.config}, tc.args...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("drover scale %v: %v, %q; want exit %d with %q", tc.args, err, out, tc.code, tc.want)
		}
	}
	// The task workers scale on their own.
	out, err := s.drover("scale", "--tasks", "-c", s.config, "3")
	if err != nil || !strings.Contains(out, "scaled task workers from 2 to 3") {
		t.Fatalf("scale --tasks 3: %v %q", err, out)
	}
	tasks := 0
	for _, r := range s.status() {
		if r.Role == "task_worker" && r.State == "ready" {
			tasks++
		}
	}
	if tasks != 3 {
		t.Fatalf("%d task workers ready after scale --tasks 3", tasks)
	}
	if code, body := get(t, httpURL(s, "/fanout?n=30&delay=1ms")); code != 200 || body != "9455" {
		t.Fatalf("fanout on 3 task workers: %d %q", code, body)
	}
	out, err = s.drover("scale", "--tasks", "-c", s.config, "1")
	if err != nil || !strings.Contains(out, "scaled task workers from 3 to 1") {
		t.Fatalf("scale --tasks 1: %v %q", err, out)
	}

	s2 := startServer(t, poolConfig)
	out, err = s2.drover("scale", "--tasks", "-c", s2.config, "2")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "no task workers to scale (task_worker_num is 0)") {
		t.Fatalf("scale --tasks without task workers: %v %q", err, out)
	}
}

// A new worker that cannot start fails drover scale, which says why and
// exits 1; the pool keeps the workers that serve, and grows once the
// handler starts again.
func TestScaleWithBrokenHandler(t *testing.T) {
	sw := t.TempDir() + "/fail"
	s := startServer(t, strings.Replace(httpConfig, "{E2E_HANDLER: http}",
		"{E2E_HANDLER: http, E2E_FAIL_START_IF: "+sw+"}", 1))
	before := pidsOf(s.status(), "worker")
	if err := os.WriteFile(sw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := s.drover("scale", "-c", s.config, "4")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "workers scaled to 2, not 4: worker ") ||
		!strings.Contains(out, "worker 2 failed to start: exited with code 1; last stderr: cannot start: the test's failure switch is on") ||
		!strings.Contains(out, "worker 3 failed to start") {
		t.Fatalf("scale 4 with a handler that cannot start: %v\n%s", err, out)
	}
	s.waitStatus("the 2 old workers alone", func(rows []statusRow) bool {
		return readyWorkers(2)(rows) && slices.Equal(pidsOf(rows, "worker"), before) && len(rows) == 4
	})
	if p := s.pools()["worker"]; p.Size != 2 || p.Target != 2 {
		t.Fatalf("after the failed scale: pool %+v", p)
	}
	os.Remove(sw)
	if out, err := s.drover("scale", "-c", s.config, "4"); err != nil || !strings.Contains(out, "scaled workers from 2 to 4") {
		t.Fatalf("scale 4 with the handler fixed: %v\n%s", err, out)
	}
}

// worker_num: {min: 1, max: 8} under 64 connections to a handler that
// takes 20 ms a request, one at a time: the pool grows to 8 and serves
// more than 4× what one worker can (50 requests/s); once the load stops,
// it shrinks back to 1 within idle_timeout and a margin. The time bounds
// are generous limits (a loaded machine, -race); the log says how long it
// took.
func TestDynamicPoolGrowsAndShrinks(t *testing.T) {
	s := startServer(t, `
worker_num: {min: 1, max: 8, idle_timeout: 2s}
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: pool, E2E_SLEEP: 20ms}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	if p := s.pools()["worker"]; !p.Dynamic || p.Size != 1 || p.Min != 1 || p.Max != 8 {
		t.Fatalf("at start: pool %+v", p)
	}
	logs := s.subscribe()
	start := time.Now()
	res, stop := load(t, httpURL(s, "/"), 64)
	s.waitLog(logs, 30*time.Second, "the pool at 8 workers", func(e logEntry) bool {
		return e.msg() == "pool: worker added" && e.str("size") == "8"
	})
	grew := time.Since(start)
	// One worker serves at most 1000/20 = 50 requests/s.
	n0, t0 := res.ok.Load(), time.Now()
	waitServed(t, res, 600)
	rate := float64(res.ok.Load()-n0) / time.Since(t0).Seconds()
	if rate <= 4*50 {
		t.Errorf("8 workers served %.0f requests/s; want more than 4× one worker's 50", rate)
	}
	if p := s.pools()["worker"]; p.Size != 8 {
		t.Errorf("under load the pool has %d workers, want 8 (its max)", p.Size)
	}
	stop()
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load while the pool grew: %s", res)
	}
	stopped := time.Now()
	s.waitLog(logs, 2*time.Second+15*time.Second, "the pool back at 1 worker", func(e logEntry) bool {
		return e.msg() == "pool: worker retired" && e.str("size") == "1"
	})
	shrank := time.Since(stopped)
	s.waitStatus("one worker", readyWorkers(1))
	t.Logf("grew from 1 to 8 workers in %s; %.0f requests/s at 8 (one worker: at most 50); back to 1 worker %s after the load stopped (idle_timeout 2s); %s",
		grew.Round(time.Millisecond), rate, shrank.Round(time.Millisecond), res)

	// drover scale 4 under load: the pool's floor is 4 from then on, and
	// nothing is lost.
	res, stop = load(t, httpURL(s, "/"), 64)
	waitServed(t, res, 100)
	if out, err := s.drover("scale", "-c", s.config, "4"); err != nil || !strings.Contains(out, " to 4 in ") {
		t.Fatalf("scale 4 under load: %v\n%s", err, out)
	}
	waitServed(t, res, 300)
	stop()
	if p := s.pools()["worker"]; p.Min != 4 || p.Size < 4 || p.Configured != 1 {
		t.Fatalf("after scale 4: pool %+v, want min 4", p)
	}
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load across drover scale 4: %s", res)
	}
}

// worker.ttl replaces a worker once it has run that long, the graceful
// way: under load no client sees an error.
func TestWorkerTTL(t *testing.T) {
	s := startServer(t, `
worker_num: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: pool}
  ttl: 1s
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	first := pidsOf(s.status(), "worker")
	logs := s.subscribe()
	res, stop := load(t, httpURL(s, "/"), 16)
	s.waitLog(logs, 20*time.Second, "a ttl replacement", func(e logEntry) bool {
		return e.msg() == "replacing worker: starting its successor" && e.str("cause") == "ttl (1s) reached"
	})
	s.waitStatus("a new worker", func(rows []statusRow) bool {
		now := pidsOf(rows, "worker")
		return readyWorkers(1)(rows) && len(now) == 1 && now[0] != first[0]
	})
	waitServed(t, res, 100)
	stop()
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load across a ttl replacement: %s", res)
	}
}

// worker.idle_ttl replaces a worker that served nothing for that long,
// and not one that keeps serving.
func TestWorkerIdleTTL(t *testing.T) {
	s := startServer(t, `
worker_num: 2
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: pool}
  idle_ttl: 1s
dispatch_mode: 1
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	logs := s.subscribe()
	e := s.waitLog(logs, 20*time.Second, "an idle_ttl replacement", func(e logEntry) bool {
		return e.msg() == "replacing worker: starting its successor" && strings.HasPrefix(e.str("cause"), "idle_ttl (1s) reached: idle for ")
	})
	t.Logf("replaced: %s", e.str("cause"))
	s.waitStatus("2 workers", readyWorkers(2))
}

// A manager killed after the pool was scaled is replaced by one that
// supervises the pool as it is, not as the file says.
func TestScaledPoolSurvivesManagerLoss(t *testing.T) {
	s := startServer(t, poolConfig)
	if out, err := s.drover("scale", "-c", s.config, "3"); err != nil {
		t.Fatalf("scale 3: %v\n%s", err, out)
	}
	old := pidsOf(s.status(), "manager")[0]
	syscall.Kill(old, syscall.SIGKILL)
	s.waitStatus("3 workers under a new manager", func(rows []statusRow) bool {
		m := pidsOf(rows, "manager")
		return readyWorkers(3)(rows) && len(m) == 1 && m[0] != old
	})
	if p := s.pools()["worker"]; p.Size != 3 || p.Ready != 3 {
		t.Fatalf("after the manager's loss: pool %+v", p)
	}
}

// Stream connections bound to workers (dispatch_mode 2) across a shrink:
// those whose worker retires move to one that stays, which hears of them
// first (Connect); none is closed and every packet is answered.
func TestScaleMovesBoundConnections(t *testing.T) {
	s := startServer(t, strings.Replace(commandsConfig, "worker_num: 2", "worker_num: 4", 1))
	var conns []*client
	owner := map[string]bool{}
	for range 8 {
		c := dial(t, s.addrs[0])
		got, err := c.roundTrip("whoami")
		if err != nil {
			t.Fatal(err)
		}
		owner[strings.Fields(got)[1]] = true
		conns = append(conns, c)
	}
	if len(owner) < 2 {
		t.Fatalf("8 connections bound to workers %v; want them spread", owner)
	}
	if out, err := s.drover("scale", "-c", s.config, "1"); err != nil {
		t.Fatalf("scale 1: %v\n%s", err, out)
	}
	for i, c := range conns {
		got, err := c.roundTrip("whoami")
		if err != nil || !strings.HasPrefix(got, "worker 0 ") {
			t.Fatalf("connection %d after scale 1: %q, %v; want worker 0", i, got, err)
		}
	}
	if out, err := s.drover("scale", "-c", s.config, "3"); err != nil {
		t.Fatalf("scale 3: %v\n%s", err, out)
	}
	// Bound to worker 0, they stay there; new connections spread again.
	for i, c := range conns {
		if got, err := c.roundTrip("whoami"); err != nil || !strings.HasPrefix(got, "worker 0 ") {
			t.Fatalf("connection %d after scale 3: %q, %v; want worker 0 still", i, got, err)
		}
	}
	owner = map[string]bool{}
	for range 6 {
		got, err := dial(t, s.addrs[0]).roundTrip("whoami")
		if err != nil {
			t.Fatal(err)
		}
		owner[strings.Fields(got)[1]] = true
	}
	if len(owner) < 2 {
		t.Fatalf("new connections after scale 3 went to workers %v; want them spread", owner)
	}
}
