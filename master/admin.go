package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/config"
)

// The admin listener (admin.address): HTTP served by the master itself,
// with net/http on goroutines of its own, never by a worker, so that it
// answers while every worker is busy or gone.
//
//   - GET /metrics: Prometheus text (client_golang): the data plane's
//     families (master/plane, counted on the reactor loops without a lock),
//     the control plane's (metrics.go), and the master's Go and process
//     collectors.
//   - GET /health (liveness): 200 once the control loop answered a request
//     within healthWait, 503 when it did not. While a stop drains, the loop
//     waits for in-flight requests (bounded by max_wait_time): 200
//     "stopping".
//   - GET /ready (readiness): 200 once every worker said hello and while
//     serving with at least one ready worker; 503 from the moment a stop
//     begins (SIGTERM, drover stop) or an upgrade hands over to a new
//     master.
//   - GET /status: the JSON of drover status --json.
//
// The socket comes from tableflip like the listeners, so that an upgrade
// passes it on: a master started by an upgrade accepts on it only once
// ready, and the old one stops accepting on it at the hand-over, so probes
// never see two masters that disagree.

// Bounds of the admin listener.
const (
	// healthWait bounds the control loop's answer to /health: it answers
	// in microseconds; a second means it is stuck (a Kubernetes probe's
	// timeoutSeconds is 1 by default).
	healthWait = time.Second
	// statusWait bounds /status: statsWaitMax for the manager's figures,
	// then the samples of each process.
	statusWait = 5 * time.Second
	// metricsWait bounds the control loop's part of a scrape (the worker
	// table and its RSS samples); the scrape goes on without it past that.
	metricsWait = 2 * time.Second
	// adminMaxConns bounds the admin connections served at once; more wait
	// in the listen backlog.
	adminMaxConns = 64
	// adminHeaderTimeout, adminWriteTimeout and adminIdleTimeout bound a
	// slow or idle admin client.
	adminHeaderTimeout = 5 * time.Second
	adminWriteTimeout  = 30 * time.Second
	adminIdleTimeout   = 60 * time.Second
	adminMaxHeader     = 8 << 10
)

// admin is the admin listener. Built by openAdmin and startAdmin (Run),
// then read-only but for once and served, which serveAdmin sets once.
type admin struct {
	ln     net.Listener // from tableflip
	addr   string       // as bound: tcp://host:port or unix:///path
	unix   string       // the socket file of a unix:// address, else ""
	srv    *http.Server
	reg    *prometheus.Registry
	once   sync.Once
	served atomic.Bool   // Serve's goroutine was started
	done   chan struct{} // closed when Serve returned
}

// openAdmin binds the admin listener, if one is configured (through
// tableflip: inherited during an upgrade). Runs in Run, before the loop.
func (m *Master) openAdmin() error {
	a := m.cfg.Admin
	if a.Address == "" {
		return nil
	}
	lc := config.Listener{Address: a.Address, Network: a.Network, Addr: a.Addr}
	if a.Network == "unix" {
		clearStaleSocket(a.Addr)
	}
	ln, err := m.upg.Listen(a.Network, a.Addr)
	if err != nil {
		return m.cfg.KeyError("admin.address", bindProblem(lc, err))
	}
	ad := &admin{ln: &limitListener{Listener: ln, sem: make(chan struct{}, adminMaxConns), log: m.log.WithField("admin", a.Address)},
		done: make(chan struct{})}
	if a.Network == "unix" {
		ad.unix = a.Addr
		if err := setSocketPerm(lc); err != nil {
			ln.Close()
			return m.cfg.KeyError("admin.address", fmt.Sprintf("%s: %v", a.Address, err))
		}
	}
	ad.addr = a.Network + "://" + ln.Addr().String()
	m.admin = ad
	return nil
}

// startAdmin registers the collectors (the data plane's counting starts
// here: before the reactor's loops run) and serves, unless this master was
// started by an upgrade: then serveAdmin does once it is ready.
func (m *Master) startAdmin() {
	ad := m.admin
	if ad == nil {
		return
	}
	ad.reg = prometheus.NewRegistry()
	ad.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.plane.Metrics(m.bound), newCtlCollector(m))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(ad.reg, promhttp.HandlerOpts{
		ErrorLog: promLog{m.log}, ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4, Timeout: adminWriteTimeout}))
	mux.HandleFunc("GET /health", m.adminHealth)
	mux.HandleFunc("GET /ready", m.adminReady)
	mux.HandleFunc("GET /status", m.adminStatus)
	ad.srv = &http.Server{Handler: mux, ReadHeaderTimeout: adminHeaderTimeout, ReadTimeout: adminHeaderTimeout,
		WriteTimeout: adminWriteTimeout, IdleTimeout: adminIdleTimeout, MaxHeaderBytes: adminMaxHeader,
		ErrorLog: log.New(debugLog{m.log.WithField("admin", ad.addr)}, "", 0)}
	if !m.upg.HasParent() {
		m.serveAdmin()
	}
}

// serveAdmin starts serving the admin listener, once.
func (m *Master) serveAdmin() {
	ad := m.admin
	if ad == nil || ad.srv == nil {
		return
	}
	ad.once.Do(func() {
		ad.served.Store(true)
		m.log.WithField("admin", ad.addr).Info("admin listener serving /metrics, /health, /ready and /status")
		go func() {
			defer close(ad.done)
			if err := ad.srv.Serve(ad.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				m.log.WithError(err).WithField("admin", ad.addr).Error("admin listener failed; /metrics and the probes are not served")
			}
		}()
	})
}

// adminHandOver stops accepting on the admin listener: a new master took
// over (upgrade) and answers the probes from now on; connections open
// here are still answered until this master exits. Safe from any
// goroutine.
func (m *Master) adminHandOver() {
	if m.admin != nil {
		m.admin.ln.Close()
	}
}

// closeAdmin closes the admin listener and its connections, and removes
// its socket file when this master owns the paths. Runs at the end of
// shutdown, and when Run fails.
func (m *Master) closeAdmin() {
	ad := m.admin
	if ad == nil {
		return
	}
	ad.ln.Close()
	if ad.srv != nil {
		ad.srv.Close()
	}
	if ad.served.Load() {
		<-ad.done // Serve returns once its listener is closed
	}
	if ad.unix != "" && m.ownsPaths() {
		os.Remove(ad.unix)
	}
}

// adminAddr is the admin listener's address as bound, "" when off.
func (m *Master) adminAddr() string {
	if m.admin == nil {
		return ""
	}
	return m.admin.addr
}

// ask sends a request to the control loop and waits for its answer, both
// within wait; ok false when the loop did not answer in time (it is busy
// with a drain, or stuck) or the master ended.
func (m *Master) ask(cmd string, wait time.Duration) (Response, bool) {
	reply := make(chan Response, 1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m.control <- controlReq{Request: Request{Cmd: cmd}, reply: reply}:
	case <-t.C:
		return Response{}, false
	case <-m.done:
		return Response{}, false
	}
	select {
	case r := <-reply:
		return r, true
	case <-t.C:
		return Response{}, false
	case <-m.done:
		return Response{}, false
	}
}

// adminHealth answers /health: the control loop answers.
func (m *Master) adminHealth(w http.ResponseWriter, r *http.Request) {
	if m.stopping.Load() {
		plain(w, http.StatusOK, "stopping: draining in-flight requests (up to max_wait_time)\n")
		return
	}
	start := time.Now()
	if _, ok := m.ask("health", healthWait); !ok {
		if m.stopping.Load() { // the stop began while we asked
			plain(w, http.StatusOK, "stopping: draining in-flight requests (up to max_wait_time)\n")
			return
		}
		m.log.WithField("health_wait", healthWait.String()).Warn("/health: the control loop did not answer in time; answered 503")
		plain(w, http.StatusServiceUnavailable, fmt.Sprintf("the control loop did not answer within %s\n", healthWait))
		return
	}
	plain(w, http.StatusOK, fmt.Sprintf("ok: the control loop answered in %s\n", time.Since(start).Round(time.Microsecond)))
}

// readiness says whether this master takes requests, and why not.
func (m *Master) readiness() (bool, string) {
	switch {
	case m.upgraded.Load():
		return false, "handed over to a new master (upgrade); draining"
	case m.stopping.Load():
		return false, "stopping: draining in-flight requests"
	case !m.ready.Load():
		return false, "starting: waiting for the workers' hello"
	}
	if n, _ := m.plane.ReadyCount(); n == 0 {
		return false, "no worker ready: every worker is restarting"
	}
	return true, "ready"
}

// adminReady answers /ready.
func (m *Master) adminReady(w http.ResponseWriter, r *http.Request) {
	if ok, why := m.readiness(); !ok {
		plain(w, http.StatusServiceUnavailable, why+"\n")
		return
	}
	plain(w, http.StatusOK, "ready\n")
}

// adminStatus answers /status with drover status --json's JSON, through
// the control loop's status path.
func (m *Master) adminStatus(w http.ResponseWriter, r *http.Request) {
	if m.stopping.Load() {
		plain(w, http.StatusServiceUnavailable, "stopping: the control loop is draining; no status until it is over\n")
		return
	}
	resp, ok := m.ask("status", statusWait)
	switch {
	case !ok:
		plain(w, http.StatusServiceUnavailable, fmt.Sprintf("the control loop did not answer within %s\n", statusWait))
		return
	case !resp.OK:
		plain(w, http.StatusInternalServerError, resp.Error+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(resp.Processes)
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// promLog passes promhttp's errors (a collector that failed) to the log.
type promLog struct{ log *logrus.Entry }

func (l promLog) Println(v ...any) {
	l.log.WithField("admin", "/metrics").Warn(fmt.Sprint(v...))
}

// debugLog passes net/http's own lines (a client's malformed request, a
// broken connection) to the log at debug level.
type debugLog struct{ log *logrus.Entry }

func (l debugLog) Write(p []byte) (int, error) {
	l.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}

// limitListener accepts while fewer than cap(sem) of its connections are
// open; more wait in the listen backlog, and the first wait of each time
// the limit is reached is logged. Accept runs on Serve's goroutine alone,
// which owns warned.
type limitListener struct {
	net.Listener
	sem    chan struct{}
	log    *logrus.Entry
	warned bool
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		if !l.warned {
			l.warned = true
			l.log.WithField("admin_max_conns", cap(l.sem)).
				Warn("admin listener: its connection limit is reached; new connections wait in the backlog until one closes")
		}
		l.sem <- struct{}{}
	}
	if len(l.sem) <= cap(l.sem)/2 {
		l.warned = false
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
