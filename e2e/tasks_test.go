package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

const tasksConfig = `
worker_num: 2
task_worker_num: 2
worker:
  cmd: [{{bin}}/tasks]
task_worker:
  cmd: [{{bin}}/tasks]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// K tasks on T task workers take about ceil(K/T) task times, not K, and
// their results come back to the request that asked.
func TestTasksFanout(t *testing.T) {
	s := startServer(t, tasksConfig)
	if code, body := get(t, httpURL(s, "/fanout?n=100&delay=1ms")); code != 200 || body != "338350" {
		t.Fatalf("fanout n=100: %d %q, want 200 338350", code, body)
	}
	start := time.Now()
	if code, body := get(t, httpURL(s, "/fanout?n=8&delay=200ms")); code != 200 || body != "204" {
		t.Fatalf("fanout n=8: %d %q, want 200 204", code, body)
	}
	// 8 tasks of 200 ms on 2 task workers: 4 rounds, 0.8 s; one at a time
	// would take 1.6 s.
	if d := time.Since(start); d >= 1500*time.Millisecond {
		t.Fatalf("8 tasks of 200ms on 2 task workers took %s: not run in parallel", d)
	}
	if code, body := get(t, httpURL(s, "/async")); code != 200 || !strings.HasPrefix(body, "task ") {
		t.Fatalf("async: %d %q", code, body)
	}
}

// Killing a task worker during TaskWaitMulti fails its task only; the
// others return, and the task worker is replaced.
func TestTaskWorkerKilledMidTask(t *testing.T) {
	s := startServer(t, tasksConfig)
	var victim int
	for _, r := range s.status() {
		if r.Role == "task_worker" && r.ID == 0 {
			victim = r.PID
		}
	}
	logs := s.subscribe()
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		code, body := get(t, httpURL(s, "/fanout?n=4&delay=1s"))
		done <- answer{code, body}
	}()
	// Both task workers hold a task once both show one in flight.
	s.waitStatus("a task in flight at both task workers", func(rows []statusRow) bool {
		busy := 0
		for _, r := range rows {
			if r.Role == "task_worker" && r.InFlight > 0 {
				busy++
			}
		}
		return busy == 2
	})
	syscall.Kill(victim, syscall.SIGKILL)
	a := <-done
	// The victim's task (and the one queued behind it, if it landed there
	// next) failed; the rest succeeded.
	if a.code != 502 || !strings.Contains(a.body, "of 4 tasks failed") || !strings.Contains(a.body, fmt.Sprintf("pid %d", victim)) {
		t.Fatalf("fanout with a killed task worker: %d %q", a.code, a.body)
	}
	if strings.HasPrefix(a.body, "4 of 4") {
		t.Fatalf("every task failed: %q; only the killed task worker's should", a.body)
	}
	s.waitLog(logs, 10*time.Second, "the replacement task worker", func(e logEntry) bool {
		return e.msg() == "worker ready" && e.str("role") == "task_worker" && e.str("pid") != fmt.Sprint(victim)
	})
	if code, body := get(t, httpURL(s, "/fanout?n=4&delay=1ms")); code != 200 || body != "30" {
		t.Fatalf("after the replacement: %d %q", code, body)
	}
}

// Beyond task_queue_max, a task fails at once with a clear error.
func TestTaskQueueOverflow(t *testing.T) {
	s := startServer(t, tasksConfig+"task_queue_max: 4\n")
	start := time.Now()
	// 2 task workers take 2 tasks, 4 wait, 4 are refused at once.
	code, body := get(t, httpURL(s, "/fanout?n=10&delay=300ms"))
	if code != 502 || !strings.Contains(body, "4 of 10 tasks failed") || !strings.Contains(body, "task queue full") {
		t.Fatalf("overflowing task_queue_max: %d %q", code, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
	// Memory stays bounded: a flood of 2000 tasks while the task workers
	// are busy leaves at most task_queue_max waiting, the rest refused.
	flood := make(chan string, 1)
	go func() {
		_, body := get(t, httpURL(s, "/fanout?n=2000&delay=500ms"))
		flood <- body
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		q := -1
		for _, r := range s.status() {
			if r.Role == "master" {
				q = r.Queued
			}
		}
		if q > 4 {
			t.Fatalf("%d tasks queued, over task_queue_max 4", q)
		}
		if q == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the queue never filled")
		}
	}
	if body := <-flood; !strings.Contains(body, "1994 of 2000 tasks failed") {
		t.Fatalf("flood: %q, want 2 running, 4 queued, 1994 refused", body)
	}
}

// A result for a worker that has left is dropped with a log line, never
// delivered to its successor.
func TestTaskResultForGoneWorkerIsDropped(t *testing.T) {
	s := startServer(t, strings.Replace(tasksConfig, "worker_num: 2", "worker_num: 1", 1))
	var asker int
	for _, r := range s.status() {
		if r.Role == "worker" {
			asker = r.PID
		}
	}
	logs := s.subscribe()
	go http.Get(httpURL(s, "/fanout?n=1&delay=700ms"))
	s.waitStatus("the task in flight", func(rows []statusRow) bool { return inFlight(rows, "task_worker") > 0 })
	syscall.Kill(asker, syscall.SIGKILL)
	s.waitLog(logs, 10*time.Second, "the dropped result", func(e logEntry) bool {
		return strings.HasPrefix(e.msg(), "task result dropped") && e.str("pid") == fmt.Sprint(asker)
	})
}

// Workers message each other by worker id; a message to an id with no
// worker is dropped with a log line.
func TestSendMessage(t *testing.T) {
	s := startServer(t, httpConfig)
	for _, to := range []int{0, 1} {
		code, body := get(t, httpURL(s, fmt.Sprintf("/ping?to=%d", to)))
		if code != 200 || !strings.Contains(body, fmt.Sprintf(" from %d to ", to)) {
			t.Fatalf("ping worker %d: %d %q", to, code, body)
		}
	}
	logs := s.subscribe()
	if code, _ := get(t, httpURL(s, "/ping?to=7")); code != 504 {
		t.Fatalf("ping to a worker id nobody has: %d, want 504 (no answer)", code)
	}
	s.waitLog(logs, 5*time.Second, "the dropped message", func(e logEntry) bool {
		return strings.HasPrefix(e.msg(), "message dropped") && e.str("to") == "7"
	})
}

// A task past task_timeout (or task_worker.request_timeout, the smaller of
// the two) fails for its caller with the reason, and the task worker
// running it is replaced.
func TestTaskTimeout(t *testing.T) {
	withRequestTimeout := strings.Replace(tasksConfig, "task_worker:\n  cmd: [{{bin}}/tasks]\n",
		"task_worker:\n  cmd: [{{bin}}/tasks]\n  request_timeout: 300ms\n", 1)
	for _, tc := range []struct{ name, config, reason string }{
		{"task_timeout", tasksConfig + "task_timeout: 300ms\n", "task_timeout (300ms) exceeded"},
		{"task_worker.request_timeout", withRequestTimeout + "task_timeout: 10s\n", "task_worker.request_timeout (300ms) exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.config)
			logs := s.subscribe()
			code, body := get(t, httpURL(s, "/fanout?n=1&delay=5s"))
			if code != 502 || !strings.Contains(body, tc.reason) {
				t.Fatalf("a task past its limit: %d %q, want 502 and %q", code, body, tc.reason)
			}
			s.waitLog(logs, 10*time.Second, "the replacement task worker", func(e logEntry) bool {
				return e.msg() == "worker ready" && e.str("role") == "task_worker"
			})
			if code, body := get(t, httpURL(s, "/fanout?n=2&delay=1ms")); code != 200 || body != "5" {
				t.Fatalf("after the timeout: %d %q", code, body)
			}
		})
	}
}

// A user process runs once per server: its counter reaches the workers
// (GET /counter), it survives drover reload, is restarted after kill -9,
// and drover stop stops it.
func TestUserProcess(t *testing.T) {
	s := startServer(t, tasksConfig+`processes:
  - name: counter
    cmd: [{{bin}}/tasks]
    env: {COUNTER_EVERY: 20ms}
`)
	procPID := func() int {
		for _, r := range s.status() {
			if r.Role == "process" {
				return r.PID
			}
		}
		return 0
	}
	waitCounter := func(from int) {
		t.Helper()
		want := fmt.Sprintf("from pid %d", from)
		for deadline := time.Now().Add(10 * time.Second); ; {
			if _, body := get(t, httpURL(s, "/counter")); strings.HasPrefix(body, "counter ") && strings.HasSuffix(body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no counter %s reached the workers", want)
			}
			time.Sleep(20 * time.Millisecond) // polling an HTTP answer
		}
	}
	first := procPID()
	if first == 0 {
		t.Fatal("drover status lists no user process")
	}
	waitCounter(first)
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	if pid := procPID(); pid != first {
		t.Fatalf("the user process was replaced by a reload (%d → %d)", first, pid)
	}
	waitCounter(first) // the new workers hear from it too
	logs := s.subscribe()
	syscall.Kill(first, syscall.SIGKILL)
	e := s.waitLog(logs, 10*time.Second, "the restarted user process", func(e logEntry) bool {
		return e.msg() == "worker ready" && e.str("role") == "process"
	})
	second := 0
	fmt.Sscan(e.str("pid"), &second)
	if second == first || second == 0 {
		t.Fatalf("restarted user process pid %q", e.str("pid"))
	}
	waitCounter(second)
	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if alive(second) {
		t.Fatalf("the user process %d outlived drover stop", second)
	}
}
