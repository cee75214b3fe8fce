package master

import (
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drover-dev/drover/ipc"
)

// The control plane's families of /metrics: the workers by state and
// their RSS (the control loop's status table, sampled off the loop as
// drover status samples it), restarts by reason, reloads and upgrades by
// result (counters the loop writes), and drover_build_info. The data
// plane's are master/plane's (metrics.go); the admin listener (admin.go)
// serves both.

// ctlCounters are the control plane's counters. The loop writes them (an
// upgrade's result too: upgradeDone runs on the loop); a scrape reads
// them. mu guards them: a few additions a minute at most, never on a
// request's path.
type ctlCounters struct {
	mu       sync.Mutex
	restarts map[[2]string]uint64 // by role, reason
	reloads  [2]uint64            // ok, failed
	upgrades [2]uint64            // ok, failed
}

// restarted counts the exit of a worker incarnation, as drover status
// counts its slot's restarts, by the reason restartReason gives.
func (c *ctlCounters) restarted(ev ipc.WorkerEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.restarts == nil {
		c.restarts = make(map[[2]string]uint64)
	}
	c.restarts[[2]string{ev.Role, restartReason(ev)}]++
}

// reloaded counts a reload that ended (err: it stopped short).
func (c *ctlCounters) reloaded(err error) {
	c.mu.Lock()
	c.reloads[resultIndex(err)]++
	c.mu.Unlock()
}

// upgradeEnded counts an upgrade that ended (err: the new master failed;
// this one serves on).
func (c *ctlCounters) upgradeEnded(err error) {
	c.mu.Lock()
	c.upgrades[resultIndex(err)]++
	c.mu.Unlock()
}

func resultIndex(err error) int {
	if err != nil {
		return 1
	}
	return 0
}

var resultNames = [2]string{"ok", "failed"}

// restartReasons are the reasons drover_worker_restarts_total always
// shows (0 until one happens); others appear once seen.
var restartReasons = []string{"crashed", "max_request", "max_memory", "request_timeout", "reload", "boot_failure"}

// restartReason says why a worker incarnation ended, from its exit event
// (the cause drover gave when it ended it, else its exit): the reason
// label of drover_worker_restarts_total.
//
//	reload           replaced by a reload (SIGUSR1/SIGUSR2, drover reload, watch)
//	max_request      replaced at max_request (task_max_request)
//	max_memory       replaced over worker.max_memory (task_worker.max_memory)
//	asked            replaced because it asked (its Retire frame)
//	replaced         replaced for another reason
//	request_timeout  killed: a request or task outlived its time limit
//	send_timeout     killed: its socket pair took nothing for worker_send_timeout
//	start_timeout    killed: no hello within start_timeout
//	protocol         killed: it broke the frame protocol
//	boot_failure     exited with the boot failure code (78), or could not be started
//	exited           exited by itself with code 0
//	crashed          exited by itself with another code, or was killed by a signal
func restartReason(ev ipc.WorkerEvent) string {
	c := ev.Cause
	if r, ok := strings.CutPrefix(c, "replaced: "); ok {
		switch {
		case r == "reload":
			return "reload"
		case strings.HasPrefix(r, "max_request"), strings.HasPrefix(r, "task_max_request"):
			return "max_request"
		case strings.HasPrefix(r, "max_memory"), strings.HasPrefix(r, "task_worker.max_memory"):
			return "max_memory"
		case strings.HasPrefix(r, "the worker asked"):
			return "asked"
		case strings.HasPrefix(r, "ttl"), strings.HasPrefix(r, "idle_ttl"):
			return "ttl"
		}
		return "replaced"
	}
	if strings.HasPrefix(c, "retired: ") {
		return "scaled" // the pool shrank (drover scale, SIGTTOU, idle_timeout)
	}
	switch {
	case strings.HasPrefix(c, "request_timeout"), strings.HasPrefix(c, "task_timeout"),
		strings.HasPrefix(c, "task_worker.request_timeout"):
		return "request_timeout"
	case strings.HasPrefix(c, "worker_send_timeout"):
		return "send_timeout"
	case strings.HasPrefix(c, "no hello within start_timeout"):
		return "start_timeout"
	case ev.ExitCode == ipc.ExitBootFailure:
		return "boot_failure"
	case c != "" && ev.ExitCode < 0 && ev.Signal == "":
		return "boot_failure" // never ran: the spawn failed
	case c != "":
		return "protocol" // the data plane's Kill for a broken frame
	case ev.Signal == "" && ev.ExitCode == 0:
		return "exited"
	}
	return "crashed"
}

// ctlCollector is the prometheus.Collector of the control plane's
// families.
type ctlCollector struct {
	m                                  *Master
	roles                              []string // the roles this config runs
	workers, restarts, rss             *prometheus.Desc
	reloads, upgrades, build, loopDesc *prometheus.Desc
}

func newCtlCollector(m *Master) *ctlCollector {
	roles := []string{ipc.RoleWorker}
	if m.cfg.TaskWorkerNum > 0 {
		roles = append(roles, ipc.RoleTaskWorker)
	}
	if len(m.cfg.Processes) > 0 {
		roles = append(roles, ipc.RoleProcess)
	}
	version := m.opts.Version
	if version == "" {
		version = "dev"
	}
	return &ctlCollector{m: m, roles: roles,
		workers: prometheus.NewDesc("drover_workers",
			"Worker processes by role and state (starting, ready, retiring; backoff: a slot waiting to restart one).",
			[]string{"role", "state"}, nil),
		restarts: prometheus.NewDesc("drover_worker_restarts_total",
			"Worker incarnations that ended, by role and reason (crashed, max_request, max_memory, request_timeout, reload, boot_failure, …).",
			[]string{"role", "reason"}, nil),
		rss: prometheus.NewDesc("drover_worker_rss_bytes",
			"Resident memory of each worker slot's processes (both incarnations while one replaces the other), and of the manager, sampled at scrape.",
			[]string{"role", "slot"}, nil),
		reloads:  prometheus.NewDesc("drover_reloads_total", "Rolling reloads that ended, by result (failed: a successor did not start; the old workers serve on).", []string{"result"}, nil),
		upgrades: prometheus.NewDesc("drover_upgrades_total", "Binary upgrades that ended, by result (ok: this master handed over and drains; failed: it serves on).", []string{"result"}, nil),
		build: prometheus.NewDesc("drover_build_info", "drover's version, the Go version that built it and its frame protocol version.", nil,
			prometheus.Labels{"version": version, "goversion": runtime.Version(), "protocol": strconv.Itoa(ipc.ProtocolVersion)}),
		loopDesc: prometheus.NewDesc("drover_control_loop_up",
			"1 when the control loop answered this scrape's request for the worker table within 2s, else 0 (drover_workers and drover_worker_rss_bytes are then left out).",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (cc *ctlCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.workers, cc.restarts, cc.rss, cc.reloads, cc.upgrades, cc.build, cc.loopDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Runs on the scrape's
// goroutine: the worker table comes from the control loop (a request with
// metricsWait as its bound), the RSS samples are taken here.
func (cc *ctlCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(cc.build, prometheus.GaugeValue, 1)
	c := &cc.m.counters
	c.mu.Lock()
	restarts := make(map[[2]string]uint64, len(c.restarts))
	for k, v := range c.restarts {
		restarts[k] = v
	}
	reloads, upgrades := c.reloads, c.upgrades
	c.mu.Unlock()
	for _, role := range cc.roles {
		for _, reason := range restartReasons {
			if _, ok := restarts[[2]string{role, reason}]; !ok {
				restarts[[2]string{role, reason}] = 0
			}
		}
	}
	for k, v := range restarts {
		ch <- prometheus.MustNewConstMetric(cc.restarts, prometheus.CounterValue, float64(v), k[0], k[1])
	}
	for i, name := range resultNames {
		ch <- prometheus.MustNewConstMetric(cc.reloads, prometheus.CounterValue, float64(reloads[i]), name)
		ch <- prometheus.MustNewConstMetric(cc.upgrades, prometheus.CounterValue, float64(upgrades[i]), name)
	}

	resp, ok := cc.m.ask("metrics", metricsWait)
	if !ok || !resp.OK {
		ch <- prometheus.MustNewConstMetric(cc.loopDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(cc.loopDesc, prometheus.GaugeValue, 1)
	states := map[[2]string]int{}
	for _, role := range cc.roles {
		for _, s := range []string{"starting", "ready", "retiring", "backoff"} {
			states[[2]string{role, s}] = 0
		}
	}
	rss := map[[2]string]uint64{}
	for _, p := range resp.Processes {
		switch p.Role {
		case ipc.RoleMaster:
			continue // process_resident_memory_bytes
		case ipc.RoleManager:
			rss[[2]string{p.Role, "0"}] += p.RSS
			continue
		}
		states[[2]string{p.Role, p.State}]++
		if p.PID > 0 {
			rss[[2]string{p.Role, strconv.Itoa(p.ID)}] += p.RSS
		}
	}
	for k, n := range states {
		ch <- prometheus.MustNewConstMetric(cc.workers, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for k, v := range rss {
		ch <- prometheus.MustNewConstMetric(cc.rss, prometheus.GaugeValue, float64(v), k[0], k[1])
	}
}
