package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The admin listener: /metrics scraped with Prometheus's own text parser,
// /ready and /health as a Kubernetes probe uses them.

// adminConfig is httpConfig with an admin listener at addr, one request
// at a time per worker (so that tests can hold every slot) and a short
// dispatch_timeout (so that a request finding none is refused soon).
func adminConfig(addr string) string {
	return `
worker_num: 2
dispatch_timeout: 1s
max_wait_time: 10s
worker:
  cmd: [{{helper}}]
  env: {E2E_HANDLER: http, E2E_CONCURRENCY: "1"}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
admin:
  address: ` + addr + "\n"
}

// freeAddr is a tcp:// address on 127.0.0.1 with a port free a moment
// ago: the admin listener cannot share port 0 with the listener (an
// upgrade hands sockets over by address; config refuses it).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "tcp://" + ln.Addr().String()
}

// adminClient reaches a server's admin listener, read from its ready line.
type adminClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newAdminClient(t *testing.T, s *server) *adminClient {
	t.Helper()
	var addr string
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.msg() == "drover ready" {
			addr = e.str("admin")
		}
	}
	tr := &http.Transport{DisableKeepAlives: true} // as a kubelet probes: a connection each
	switch {
	case strings.HasPrefix(addr, "tcp://"):
		return &adminClient{t: t, base: "http://" + strings.TrimPrefix(addr, "tcp://"), c: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	case strings.HasPrefix(addr, "unix://"):
		path := strings.TrimPrefix(addr, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
		return &adminClient{t: t, base: "http://admin", c: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	}
	t.Fatalf("no admin address in the ready line (%q)", addr)
	return nil
}

// get returns the status and body of GET path, or an error.
func (a *adminClient) get(path string) (int, string, error) {
	resp, err := a.c.Get(a.base + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustGet is get that fails the test on an error or an unexpected status.
func (a *adminClient) mustGet(path string, want int) string {
	a.t.Helper()
	code, body, err := a.get(path)
	if err != nil || code != want {
		a.t.Fatalf("GET %s: %d %q %v, want %d", path, code, body, err, want)
	}
	return body
}

// scrape is one /metrics, parsed by Prometheus's text parser.
type scrape map[string]*dto.MetricFamily

func (a *adminClient) scrape() scrape {
	a.t.Helper()
	resp, err := a.c.Get(a.base + "/metrics")
	if err != nil {
		a.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		a.t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		a.t.Fatalf("scrape: the Prometheus text parser refused it: %v", err)
	}
	return mfs
}

// value is the sample of family name whose labels include want ("k=v"
// pairs): a counter's or gauge's value, a histogram's count. -1 when
// there is none.
func (s scrape) value(name string, want ...string) float64 {
	mf := s[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// growth checks that each family moved from before to after by exactly
// the given amount.
func growth(t *testing.T, what string, before, after scrape, want map[string]float64) {
	t.Helper()
	for key, d := range want {
		name, labels, _ := strings.Cut(key, " ")
		var ls []string
		if labels != "" {
			ls = strings.Split(labels, ",")
		}
		b, a := before.value(name, ls...), after.value(name, ls...)
		if a < 0 || b < 0 {
			t.Errorf("%s: %s missing from a scrape (before %v, after %v)", what, key, b, a)
			continue
		}
		if a-b != d {
			t.Errorf("%s: %s grew by %v (%v → %v), want %v", what, key, a-b, b, a, d)
		}
	}
}

// During load, after a reload, after a kill -9 and after 503s, the
// families move by what happened: requests by what the client sent,
// restarts by reason, reloads, rejections.
func TestMetricsScrape(t *testing.T) {
	s := startServer(t, adminConfig(freeAddr(t)))
	a := newAdminClient(t, s)
	lis := "listener=" + s.addrs[0]
	s0 := a.scrape()
	for _, f := range []string{"go_goroutines", "process_resident_memory_bytes", "drover_build_info"} {
		if s0.value(f) < 0 {
			t.Errorf("%s missing", f)
		}
	}
	if got := s0.value("drover_workers", "role=worker", "state=ready"); got != 2 {
		t.Errorf("drover_workers{ready} = %v, want 2", got)
	}

	// Load from 8 connections, scraped while it runs, and a reload under it.
	res, stop := load(t, httpURL(s, "/"), 8)
	last := s0
	for range 3 {
		waitServed(t, res, 100)
		sc := a.scrape()
		if sc.value("drover_requests_total", lis, "code=2xx") < last.value("drover_requests_total", lis, "code=2xx") {
			t.Errorf("requests_total went down during the load")
		}
		if n := sc.value("drover_connections", lis); n < 1 || n > 8 {
			t.Errorf("drover_connections = %v during load from 8 connections", n)
		}
		last = sc
	}
	if out, err := s.drover("reload", "-c", s.config); err != nil || !strings.Contains(out, "reloaded 2 workers") {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	waitServed(t, res, 100)
	stop()
	if res.errs.Load() != 0 || res.non2xx.Load() != 0 {
		t.Fatalf("load: %s", res)
	}
	s1 := a.scrape()
	sent := float64(res.ok.Load())
	growth(t, "load and a reload", s0, s1, map[string]float64{
		"drover_requests_total " + lis + ",code=2xx":              sent,
		"drover_requests_total " + lis + ",code=5xx":              0,
		"drover_requests_total " + lis + ",code=0":                0,
		"drover_request_duration_seconds " + lis:                  sent,
		"drover_reloads_total result=ok":                          1,
		"drover_worker_restarts_total role=worker,reason=reload":  2,
		"drover_worker_restarts_total role=worker,reason=crashed": 0,
		"drover_dispatch_rejected_total reason=dispatch_timeout":  0,
		"drover_workers role=worker,state=ready":                  0,
	})
	if d := s1.value("drover_dispatch_wait_seconds") - s0.value("drover_dispatch_wait_seconds"); d != sent {
		t.Errorf("dispatch_wait_seconds observed %v dispatches for %v requests", d, sent)
	}
	if n := s1.value("drover_connections", lis); n != 0 {
		t.Errorf("drover_connections = %v after the load's connections closed", n)
	}

	// kill -9 of a worker: one restart, crashed; its successor serves.
	var rows []statusRow
	if err := json.Unmarshal([]byte(a.mustGet("/status", 200)), &rows); err != nil {
		t.Fatalf("/status: %v", err)
	}
	victim := pidsOf(rows, "worker")[0]
	syscall.Kill(victim, syscall.SIGKILL)
	s.waitStatus("the killed worker replaced", func(rows []statusRow) bool {
		ready := 0
		for _, r := range rows {
			if r.Role == "worker" && r.State == "ready" && r.PID != victim {
				ready++
			}
		}
		return ready == 2
	})
	s2 := a.scrape()
	growth(t, "kill -9", s1, s2, map[string]float64{
		"drover_worker_restarts_total role=worker,reason=crashed": 1,
		"drover_worker_restarts_total role=worker,reason=reload":  0,
		"drover_workers role=worker,state=ready":                  0,
	})

	// Both workers held: three requests wait (drover_dispatch_waiting),
	// then get 503 at dispatch_timeout.
	held, releases := holdWorkers(t, s, 2)
	refused := make(chan int, 3)
	for range 3 {
		go func() {
			resp, err := http.Get(httpURL(s, "/"))
			if err != nil {
				refused <- 0
				return
			}
			resp.Body.Close()
			refused <- resp.StatusCode
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.scrape().value("drover_dispatch_waiting") != 3 {
		if time.Now().After(deadline) {
			t.Fatal("drover_dispatch_waiting never showed the 3 requests waiting")
		}
		time.Sleep(10 * time.Millisecond) // polling a gauge
	}
	for range 3 {
		if code := <-refused; code != 503 {
			t.Fatalf("a request finding no free worker got %d, want 503", code)
		}
	}
	releases()
	for range 2 {
		if got := <-held; got != "200 released" {
			t.Fatalf("a held request got %q", got)
		}
	}
	s3 := a.scrape()
	growth(t, "503s", s2, s3, map[string]float64{
		"drover_dispatch_rejected_total reason=dispatch_timeout": 3,
		"drover_requests_total " + lis + ",code=5xx":             3,
		"drover_requests_total " + lis + ",code=2xx":             2,
		"drover_request_duration_seconds " + lis:                 2, // the 503s never reached a worker
	})
	if n := s3.value("drover_dispatch_waiting"); n != 0 {
		t.Errorf("drover_dispatch_waiting = %v once the requests were refused", n)
	}
}

// holdWorkers sends n requests that their handlers hold (holdFIFO), and
// returns once each is in its handler: their answers come on held once
// release is called ("200 released").
func holdWorkers(t *testing.T, s *server, n int) (held chan string, release func()) {
	t.Helper()
	held = make(chan string, n)
	var releases []func()
	for i := range n {
		dir := filepath.Join(s.dir, fmt.Sprint("hold", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		fifo, wait, release := holdFIFO(t, dir)
		go func() {
			resp, err := http.Get(httpURL(s, "/fifo?path="+fifo))
			if err != nil {
				held <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			held <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
		wait()
		releases = append(releases, release)
	}
	return held, func() {
		for _, r := range releases {
			r()
		}
	}
}

// /health answers while every worker sleeps in its handler (the master
// answers it, not a worker), /ready stays 200 (busy is not unready), and
// /metrics and /status answer too; here on a unix:// admin socket (mode
// 0660), which the stop removes.
func TestHealthWhileWorkersBusy(t *testing.T) {
	s := startServer(t, adminConfig("unix://{{dir}}/admin.sock"))
	a := newAdminClient(t, s)
	sock := filepath.Join(s.dir, "admin.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("admin socket: %v %v, want mode 0660", fi, err)
	}
	held, release := holdWorkers(t, s, 2)
	start := time.Now()
	if body := a.mustGet("/health", 200); !strings.HasPrefix(body, "ok") {
		t.Fatalf("/health: %q", body)
	}
	t.Logf("/health with both workers asleep in their handlers answered in %s", time.Since(start))
	a.mustGet("/ready", 200)
	var rows []statusRow
	if err := json.Unmarshal([]byte(a.mustGet("/status", 200)), &rows); err != nil {
		t.Fatalf("/status: %v", err)
	}
	if n := inFlight(rows, "worker"); n != 2 {
		t.Errorf("/status shows %d requests in flight at the workers, want the 2 held", n)
	}
	sc := a.scrape()
	if sc.value("drover_control_loop_up") != 1 || sc.value("drover_workers", "role=worker", "state=ready") != 2 {
		t.Errorf("scrape with the workers busy: loop up %v, ready workers %v", sc.value("drover_control_loop_up"),
			sc.value("drover_workers", "role=worker", "state=ready"))
	}
	release()
	for range 2 {
		if got := <-held; got != "200 released" {
			t.Fatalf("a held request got %q", got)
		}
	}
	if out, err := s.drover("stop", "-c", s.config); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket still there after the stop (%v)", err)
	}
}

// Under load, /ready turns 503 within 100 ms of SIGTERM, /health stays
// 200 (stopping), and every request in flight still gets its 200.
func TestReadyAtSIGTERMUnderLoad(t *testing.T) {
	s := startServer(t, adminConfig(freeAddr(t)))
	a := newAdminClient(t, s)
	res, stop := load(t, httpURL(s, "/"), 16)
	waitServed(t, res, 200)
	held, release := holdWorkers(t, s, 1) // in flight through the stop
	a.mustGet("/ready", 200)

	// Probes from the moment of SIGTERM: the first 503's answer says how
	// fast it turned (client time included); every probe sent 100 ms or
	// more after SIGTERM must read 503, as a kubelet's would.
	const within = 100 * time.Millisecond
	t0 := time.Now()
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var first time.Duration
	for {
		sent := time.Since(t0)
		code, body, err := a.get("/ready")
		if err != nil {
			t.Fatalf("/ready %s after SIGTERM: %v", sent, err)
		}
		switch {
		case code == 503 && first == 0:
			first = time.Since(t0)
			if !strings.Contains(body, "stopping") {
				t.Errorf("/ready 503 body %q, want it to say stopping", body)
			}
		case code != 503 && sent >= within:
			t.Fatalf("/ready sent %s after SIGTERM answered %d %q, want 503", sent, code, body)
		case code != 503 && sent > 5*time.Second:
			t.Fatalf("/ready still %d %q 5s after SIGTERM", code, body)
		}
		if first > 0 && sent >= within {
			break
		}
	}
	t.Logf("/ready answered 503 %s after SIGTERM (the answer's arrival), under load from 16 connections", first)
	if body := a.mustGet("/health", 200); !strings.HasPrefix(body, "stopping") {
		t.Errorf("/health while draining: %q", body)
	}
	release()
	if got := <-held; got != "200 released" {
		t.Fatalf("the request in flight at SIGTERM got %q, want 200 released", got)
	}
	stop()
	stoppedCleanly(t, res)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("drover still running 20s after SIGTERM")
	}
}

// The admin socket goes to the new master with the listeners: probes
// (a connection each) meet no refused connection across drover upgrade,
// and are answered by the new master after it.
func TestAdminAcrossUpgrade(t *testing.T) {
	s := startServer(t, adminConfig(freeAddr(t)))
	a := newAdminClient(t, s)
	old := masterPID(t, s)
	var mu sync.Mutex
	answers := map[string]int{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			code, body, err := a.get("/ready")
			k := fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
			if err != nil {
				k = err.Error()
			}
			mu.Lock()
			answers[k]++
			mu.Unlock()
		}
	}()
	out, err := s.drover("upgrade", "-c", s.config)
	cancel()
	<-done
	if err != nil || !strings.Contains(out, "upgraded in") {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	t.Logf("/ready across the upgrade: %v", answers)
	for k := range answers {
		if k != "200 ready" && !strings.HasPrefix(k, "503 handed over") {
			t.Errorf("/ready across the upgrade answered %q", k)
		}
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(a.mustGet("/status", 200)), &rows); err != nil {
		t.Fatal(err)
	}
	if pid, gen := rows[0]["pid"], rows[0]["generation"]; pid == float64(old) || gen != float64(2) {
		t.Fatalf("/status after the upgrade: master pid %v generation %v (old pid %d)", pid, gen, old)
	}
	if sc := a.scrape(); sc.value("drover_workers", "role=worker", "state=ready") != 2 {
		t.Errorf("the new master's scrape: %v ready workers", sc.value("drover_workers", "role=worker", "state=ready"))
	}
}

// Tasks are counted by result, and task workers by state.
func TestMetricsTasks(t *testing.T) {
	s := startServer(t, tasksConfig+"admin: {address: "+freeAddr(t)+"}\n")
	a := newAdminClient(t, s)
	s0 := a.scrape()
	if code, body := get(t, httpURL(s, "/fanout?n=10&delay=1ms")); code != 200 || body != "385" {
		t.Fatalf("fanout n=10: %d %q, want 200 385", code, body)
	}
	s1 := a.scrape()
	growth(t, "10 tasks", s0, s1, map[string]float64{
		"drover_tasks_total result=ok":      10,
		"drover_tasks_total result=refused": 0,
	})
	if q, n := s1.value("drover_tasks_queued"), s1.value("drover_workers", "role=task_worker", "state=ready"); q != 0 || n != 2 {
		t.Errorf("after the fanout: %v tasks queued, %v task workers ready; want 0 and 2", q, n)
	}
}
