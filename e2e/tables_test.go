package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/taskworker"
	"github.com/drover-dev/drover/worker"
)

// Shared tables and atomics (docs/tables.md) across workers, task
// workers, reloads, kill -9 and upgrades.

const tablesConfig = `
worker_num: 2
task_worker_num: 1
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: tables}
task_worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: tables}
tables:
  t:
    size: 64
    columns: {hits: int, value: string(64)}
atomics: [requests]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`

// serveTablesHandler is a Go worker (or task worker) over table t and
// atomic requests. Its task worker answers a task "K" with "V N" (value
// and hits of K), and "incr K" with the new hits of K (adding one to
// requests too). Its worker serves:
//
//	/incr?k=K     hits of K + 1; answers the new count
//	/set?k=K&v=V  value of K = V
//	/get?k=K      "V N" (value and hits), 404 when K is absent
//	/task?k=K     the same, read by a task worker
//	/requests     the atomic, which every request increments
func serveTablesHandler() {
	tb, err := worker.Table("t")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(ipc.ExitBootFailure)
	}
	hits, _ := tb.Column("hits")
	value, _ := tb.Column("value")
	requests, err := worker.Atomic("requests")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(ipc.ExitBootFailure)
	}
	row := func(k string) (string, bool) {
		r := tb.NewRow()
		if !tb.Get(k, r) {
			return "", false
		}
		return fmt.Sprintf("%s %d", r.Bytes(value), r.Int(hits)), true
	}
	if os.Getenv(ipc.EnvRole) == ipc.RoleTaskWorker {
		taskworker.Run(taskworker.Handler{OnTask: func(_ context.Context, task []byte) ([]byte, error) {
			if k, ok := strings.CutPrefix(string(task), "incr "); ok {
				requests.Add(1)
				n, err := tb.Incr(k, hits, 1)
				return []byte(strconv.FormatInt(n, 10)), err
			}
			s, ok := row(string(task))
			if !ok {
				return []byte("absent"), nil
			}
			return []byte(s), nil
		}})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n, err := tb.Incr(r.URL.Query().Get("k"), hits, 1)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if err := tb.SetString(r.URL.Query().Get("k"), value, r.URL.Query().Get("v")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		s, ok := row(r.URL.Query().Get("k"))
		if !ok {
			http.Error(w, "absent", 404)
			return
		}
		fmt.Fprint(w, s)
	})
	mux.HandleFunc("/task", func(w http.ResponseWriter, r *http.Request) {
		res, err := worker.TaskWait(r.Context(), []byte(r.URL.Query().Get("k")))
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		w.Write(res)
	})
	mux.HandleFunc("/requests", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, requests.Get())
	})
	worker.RunHTTP(mux)
}

// tableStatus is the tables part of drover status --json (the master's
// row).
type tableStatus struct {
	Role   string `json:"role"`
	Tables []struct {
		Name   string `json:"name"`
		Rows   int    `json:"rows"`
		Size   int    `json:"size"`
		Memory int64  `json:"memory"`
	} `json:"tables"`
	Atomics map[string]int64 `json:"atomics"`
}

func (s *server) tables() tableStatus {
	s.t.Helper()
	out, err := s.drover("status", "--json", "-c", s.config)
	if err != nil {
		s.t.Fatalf("drover status --json: %v\n%s", err, out)
	}
	var rows []tableStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) == 0 || rows[0].Role != "master" {
		s.t.Fatalf("drover status --json: %v\n%s", err, out)
	}
	return rows[0]
}

func mustGet(t *testing.T, s *server, path, want string) {
	t.Helper()
	if code, body := get(t, httpURL(s, path)); code != 200 || body != want {
		t.Fatalf("GET %s: %d %q, want 200 %q", path, code, body, want)
	}
}

// workerPIDs are the pids of the workers and task workers, by role and
// slot.
func workerPIDs(rows []statusRow) map[string]int {
	pids := map[string]int{}
	for _, r := range rows {
		if r.Role == "worker" || r.Role == "task_worker" {
			pids[fmt.Sprintf("%s %d", r.Role, r.ID)] = r.PID
		}
	}
	return pids
}

// Values and counters written by one worker are read by the others and by
// a task worker, and survive drover reload and a kill -9 of every worker
// and task worker; drover status shows the table's rows and memory.
func TestTablesSurviveReloadAndKill(t *testing.T) {
	s := startServer(t, tablesConfig)
	if out, err := s.drover("check", "-c", s.config); err != nil || !strings.Contains(out, "tables:       t 64 rows (") ||
		!strings.Contains(out, "atomics:      requests") || !strings.Contains(out, "shared memory: ") {
		t.Fatalf("drover check: %v\n%s", err, out)
	}
	for i := 1; i <= 10; i++ { // round-robin: both workers increment
		mustGet(t, s, "/incr?k=a", strconv.Itoa(i))
	}
	mustGet(t, s, "/set?k=a&v=hello", "")
	mustGet(t, s, "/get?k=a", "hello 10")
	mustGet(t, s, "/get?k=a", "hello 10") // and the other worker
	mustGet(t, s, "/task?k=a", "hello 10")
	ts := s.tables()
	if len(ts.Tables) != 1 || ts.Tables[0].Name != "t" || ts.Tables[0].Rows != 1 || ts.Tables[0].Size != 64 || ts.Tables[0].Memory <= 0 {
		t.Fatalf("status tables: %+v", ts.Tables)
	}
	if ts.Atomics["requests"] != 13 {
		t.Fatalf("status atomics: %v, want requests 13", ts.Atomics)
	}

	before := workerPIDs(s.status())
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	after := workerPIDs(s.status())
	for k, pid := range before {
		if after[k] == pid {
			t.Fatalf("%s still pid %d after the reload", k, pid)
		}
	}
	mustGet(t, s, "/get?k=a", "hello 10")
	mustGet(t, s, "/task?k=a", "hello 10")

	// kill -9 of every worker and task worker at once.
	for _, pid := range after {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	s.waitStatus("every worker replaced and ready after kill -9", func(rows []statusRow) bool {
		now := workerPIDs(rows)
		for k, pid := range after {
			if now[k] == 0 || now[k] == pid {
				return false
			}
		}
		for _, r := range rows {
			if (r.Role == "worker" || r.Role == "task_worker") && r.State != "ready" {
				return false
			}
		}
		return true
	})
	mustGet(t, s, "/get?k=a", "hello 10")
	mustGet(t, s, "/incr?k=a", "11")
	mustGet(t, s, "/task?k=a", "hello 11")
	if code, body := get(t, httpURL(s, "/requests")); code != 200 || body != "16" {
		t.Fatalf("requests after the kills: %d %q, want 16", code, body)
	}
}

// An upgrade hands the tables to the new master; one whose config
// changes the tables starts with empty ones and says why.
func TestTablesUpgrade(t *testing.T) {
	s := startServer(t, tablesConfig)
	mustGet(t, s, "/set?k=a&v=kept", "")
	old := masterPID(t, s)
	if out, err := s.drover("upgrade", "-c", s.config); err != nil || !strings.Contains(out, "upgraded in") {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	if masterPID(t, s) == old {
		t.Fatal("the master did not change")
	}
	mustGet(t, s, "/get?k=a", "kept 0")
	mustGet(t, s, "/requests", "2")

	cfg, _ := os.ReadFile(s.config)
	if err := os.WriteFile(s.config, []byte(strings.Replace(string(cfg), "size: 64", "size: 65", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := s.subscribe()
	if out, err := s.drover("upgrade", "-c", s.config); err != nil {
		t.Fatalf("upgrade to new tables: %v\n%s", err, out)
	}
	s.waitLog(logs, 10*time.Second, "the warning that the tables start empty", func(e logEntry) bool {
		return e.msg() == "upgrade: starting with empty tables and atomics" && strings.Contains(e.str("cause"), "or others")
	})
	if code, _ := get(t, httpURL(s, "/get?k=a")); code != 404 {
		t.Fatalf("a after an upgrade to new tables: %d, want 404", code)
	}
	if ts := s.tables(); ts.Tables[0].Size != 65 {
		t.Fatalf("tables after the upgrade: %+v", ts.Tables)
	}
}

// tablesPHPConfig: two PHP workers (testdata/php/tables.php) and a Go task
// worker over the same table and atomic.
func tablesPHPConfig(t *testing.T) string {
	return strings.Replace(tablesConfig, "worker:\n  cmd: [{{helper}}]\n  env: {E2E_HANDLER: tables}\n",
		"worker:\n  cmd: [php, "+phpScript(t, "tables.php")+"]\n  launch: exec\n", 1)
}

// A value set by one PHP worker is read by the other PHP worker and by a
// Go task worker; a counter incremented by PHP workers and the Go task
// worker adds up, as does the atomic; a kill -9 of both PHP workers leaves
// it all.
func TestTablesPHPAndGo(t *testing.T) {
	s := startServer(t, tablesPHPConfig(t))
	code, setter := get(t, httpURL(s, "/set?k=a&v=from-php"))
	if code != 200 {
		t.Fatalf("set: %d %s", code, setter)
	}
	other := ""
	for i := 0; i < 50 && other == ""; i++ { // two workers, round-robin: the other answers within a few
		code, body := get(t, httpURL(s, "/get?k=a"))
		f := strings.Fields(body)
		if code != 200 || len(f) != 3 || f[0] != "from-php" || f[1] != "0" {
			t.Fatalf("get: %d %q, want \"from-php 0 <pid>\"", code, body)
		}
		if f[2] != setter {
			other = f[2]
		}
	}
	if other == "" {
		t.Fatalf("50 gets all answered by the setter, pid %s: no other PHP worker read the value", setter)
	}
	mustGet(t, s, "/goget?k=a", "from-php 0")

	// 10 increments in PHP, 10 in Go, interleaved.
	want := 0
	for i := 0; i < 10; i++ {
		want++
		mustGet(t, s, "/incr?k=a", strconv.Itoa(want))
		want++
		mustGet(t, s, "/goincr?k=a", strconv.Itoa(want))
	}
	mustGet(t, s, "/goget?k=a", "from-php 20")
	mustGet(t, s, "/requests", "20")

	before := workerPIDs(s.status())
	for k, pid := range before {
		if strings.HasPrefix(k, "worker") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	s.waitStatus("both PHP workers replaced and ready", func(rows []statusRow) bool {
		n := 0
		for _, r := range rows {
			if r.Role == "worker" && r.State == "ready" && r.PID != before[fmt.Sprintf("worker %d", r.ID)] {
				n++
			}
		}
		return n == 2
	})
	if code, body := get(t, httpURL(s, "/get?k=a")); code != 200 || !strings.HasPrefix(body, "from-php 20 ") {
		t.Fatalf("after kill -9 of the PHP workers: %d %q", code, body)
	}
	mustGet(t, s, "/incr?k=a", "21")
	mustGet(t, s, "/requests", "21")
}

// The hot-cache examples (examples/hotcache.yaml in Go,
// examples/php/hotcache.yaml in PHP), as shipped but for the port and the
// data file: the workers serve what the user process loaded, and a change
// of the file reaches them with the next load.
func TestHotcacheExamples(t *testing.T) {
	for _, tt := range []struct{ name, config, cmd string }{
		{"go", "../examples/hotcache.yaml", "../bin/hotcache"},
		{"php", "../examples/php/hotcache.yaml", "hotcache.php"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "php" {
				phpScript(t, "tables.php") // php is installed
			}
			cfg, err := os.ReadFile(tt.config)
			if err != nil {
				t.Fatal(err)
			}
			abs := filepath.Join(bin, "hotcache")
			if tt.name == "php" {
				abs, _ = filepath.Abs("../examples/php/hotcache.php")
			}
			data := filepath.Join(t.TempDir(), "items.json")
			writeJSON := func(s string) {
				tmp := data + ".tmp"
				if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, data); err != nil { // the refresher sees one file or the other
					t.Fatal(err)
				}
			}
			writeJSON(`{"1": {"name": "espresso", "price": 2.2}, "2": {"name": "cappuccino", "price": 3.1}, "3": {"name": "flat white", "price": 3.4}}`)
			c := strings.ReplaceAll(string(cfg), tt.cmd, abs)
			c = regexp.MustCompile(`tcp://127\.0\.0\.1:\d+`).ReplaceAllString(c, "tcp://127.0.0.1:0")
			c = strings.Replace(c, `env: {HOTCACHE_EVERY: "5"}`, `env: {HOTCACHE_EVERY: "1", HOTCACHE_FILE: "`+data+`"}`, 1)
			s := startServer(t, c)
			// The refresher's first load may come just after the workers are ready.
			waitBody(t, s, "/item?id=2", `"cappuccino"`)
			writeJSON(`{"1": {"name": "espresso", "price": 2.2}, "2": {"name": "cortado", "price": 3.0}}`)
			waitBody(t, s, "/item?id=2", `"cortado"`)
			waitBody(t, s, "/stats", `"items":2`)
			if code, _ := get(t, httpURL(s, "/item?id=3")); code != 404 {
				t.Fatalf("item 3, gone from the file: %d, want 404", code)
			}
		})
	}
}

// waitBody gets path until its body contains want; fatal after 15 s (the
// refresher loads every second).
func waitBody(t *testing.T, s *server, path, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get(t, httpURL(s, path))
		if code == 200 && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s never answered %s; last %d %q\n%s", path, want, code, body, s.logText())
		}
		time.Sleep(50 * time.Millisecond) // polling the server, not waiting for time to pass
	}
}
