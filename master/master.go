package master

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/internal/sdnotify"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master/plane"
	"github.com/drover-dev/drover/reactor"
	"github.com/drover-dev/drover/shm"
)

// Options are what the CLI passes to Run besides the config.
type Options struct {
	Log *logrus.Entry
	// LogOutput receives the manager's log lines verbatim (they are already
	// formatted); it is the master's own log destination.
	LogOutput io.Writer
	// Ready, if set, is called once the master serves (the daemonizing
	// parent waits for it).
	Ready func()
	// ReopenLogs, if set, reopens log_file (after logrotate renamed it);
	// the control command reopen-logs calls it, from the connection's
	// goroutine. On error the logs keep going to the old file. Nil when
	// the logs go to stderr.
	ReopenLogs func() error
	// Watch, if set, watches paths (the config's watch list) and calls
	// onChange with a summary of each settled burst of changes, onError
	// with each problem; the master reloads its workers on a change. Nil
	// leaves watch: unenforced (the master says so at start).
	Watch func(paths []string, onChange func(summary string), onError func(error)) (io.Closer, error)
	// Version is drover's version, for drover_build_info.
	Version string
}

// Master is the master process: listeners, reactor, dispatcher, the
// manager it supervises, and its control socket.
//
// Owners. The fields of the first group are set by Run before the reactor
// starts (or by the test harness) and only read afterwards. "loop" is the
// goroutine running Run: waitWorkers, then loop (and drain and shutdown at
// the end); the control plane's tables are its alone, and other goroutines
// reach it through events (post, m.events) and control requests
// (m.control). Reloads and replacements are state machines of the loop
// (lifecycle.go), an upgrade is one whose slow part (tableflip) runs on a
// goroutine that ends with an event. Fields with another owner say so:
// reactor loops write the data plane's counters, and the upgrade's
// goroutine sets upgraded.
type Master struct {
	// Set up by Run, then read-only.
	cfg     *config.Config
	opts    Options
	log     *logrus.Entry
	upg     *tableflip.Upgrader
	rx      *reactor.Reactor
	plane   *plane.Plane // the data plane: its own owners (master/plane)
	started time.Time
	ctlPath string
	bound   []string       // listener addresses as bound (port 0 resolved)
	netLns  []net.Listener // owners of the reactor's listening descriptors
	pidPath string
	admin   *admin      // the admin listener (admin.go), nil when off
	shm     *shm.Region // tables and atomics (tables.go), nil when the config has none

	// shmRecover: exits whose table locks are to be released (tables.go);
	// the loop queues, one goroutine of its own scans, under its mutex.
	shmRecover shmRecovery

	// counters: the control plane's counters for /metrics (metrics.go),
	// written by the loop under their own mutex.
	counters ctlCounters

	// Channels into the loop (made by Run, read-only fields). events: the
	// loop reads; post and readManager write. control: the loop reads;
	// control connections write. done: closed by Run when it returns.
	events  chan any
	control chan controlReq
	done    chan struct{}
	// backlog holds, oldest first, what post could not put into events
	// (full); backlogWake (one pending at most) tells the loop. backlogMu
	// guards backlog: posters on any goroutine append, the loop takes.
	backlogMu   sync.Mutex
	backlog     []any
	backlogWake chan struct{}

	// Owned by the loop.
	mgrSeq    uint64                         // managers started; their generation base
	mgrFails  int                            // quick manager exits in a row (backoff)
	slots     map[slotKey]*slotInfo          // what status remembers of each slot
	watchDue  bool                           // a change under the watch paths waits for its reload
	replacing map[*plane.Worker]*replacement // replacements in progress, by the worker replaced
	reloadRun *reloadRun                     // the reload in progress, if any
	upgrading bool                           // an upgrade runs (evUpgradeDone ends it)
	statsSeq  uint64                         // the last CtlStats id asked of the manager
	statsWait map[uint64]*statusJob          // status answers waiting for the manager's runtime figures, by CtlStats id
	sc        scaling                        // the pools' sizes and the workers' TTLs (pool.go)

	// Written by the loop, read from any goroutine.
	mgrp     atomic.Pointer[managerProc] // the current manager
	stopping atomic.Bool                 // a stop began (set by drain or shutdown); reactor loops stop taking work
	ready    atomic.Bool                 // serving (tableflip ready)

	// upgraded: the goroutine of an upgrade (upgrade.go: tableflip's
	// Upgrade blocks until the new master is ready or failed) writes it
	// as soon as the new master is ready; shutdown reads it.
	upgraded atomic.Bool // a new master took over: leave its paths alone

	// held: control connections (stop, upgrade) kept open until the
	// process exits, so that the CLI learns of the exit by their EOF.
	// Appended by control connections and the loop under holdMu.
	holdMu sync.Mutex
	held   []net.Conn
}

type slotKey struct {
	role string
	slot int
}

// slotInfo is what the master remembers of a worker slot across
// incarnations, for status. Owned by the loop.
type slotInfo struct {
	restarts     int
	lastExit     string
	backoffUntil time.Time
}

// Events for the master's loop.
type (
	evWorkerReady   struct{ w *plane.Worker }
	evWorkerStarted struct {
		mgr     *managerProc
		ev      ipc.WorkerEvent
		file    *os.File
		answers *os.File // its answer arena, or nil
	}
	evWorkerExited struct {
		mgr *managerProc
		ev  ipc.WorkerEvent
	}
	evManagerExited struct {
		mgr *managerProc
		err error
	}
	evStartManager struct{}
)

// post hands an event to the master's loop without blocking the caller (a
// reactor loop must never wait for the main loop) and without starting a
// goroutine. The event goes into m.events while it has room and nothing
// waits in the backlog; else it joins the backlog, which the loop empties
// in order (takeBacklog) once woken by backlogWake. Dropping is no option
// (a lost evWorkerReady leaves a worker idle, a lost evRecycle a worker
// claimed for ever), and blocking is none either; the backlog stays small
// because what is posted is bounded by the processes: one evWorkerReady
// per hello, one evRecycle per claimed worker, one evManagerExited per
// manager, one evStatsTimeout per status asked, the watch's and reloads'
// events one per change or reload. It fills only while the loop does not
// read events (a drain) or under a storm of them, and the warning says so
// once per storm.
func (m *Master) post(ev any) {
	m.backlogMu.Lock()
	defer m.backlogMu.Unlock()
	if len(m.backlog) == 0 {
		select {
		case m.events <- ev:
			return
		default:
		}
	}
	m.backlog = append(m.backlog, ev)
	if len(m.backlog) == backlogWarnAt {
		m.log.WithFields(logrus.Fields{"backlog": len(m.backlog), "events_buffer": cap(m.events)}).
			Warn("the master's loop is behind: events wait in its backlog (it is draining, or a storm of worker events came); none is lost")
	}
	select {
	case m.backlogWake <- struct{}{}:
	default: // a wake is pending already
	}
}

// takePosted returns, oldest first, the events waiting in m.events and
// then those of the backlog. Runs on the loop after a backlogWake: what is
// in m.events was posted before the backlog began, so it goes first.
func (m *Master) takePosted() []any {
	var evs []any
	for n := len(m.events); n > 0; n-- { // only the loop reads m.events
		evs = append(evs, <-m.events)
	}
	return append(evs, m.takeBacklog()...)
}

// backlogWarnAt is the backlog length at which post logs a warning.
const backlogWarnAt = 1024

// takeBacklog returns the events posted while m.events was full, oldest
// first, and empties the backlog. Runs on the loop, after a backlogWake.
func (m *Master) takeBacklog() []any {
	m.backlogMu.Lock()
	defer m.backlogMu.Unlock()
	evs := m.backlog
	m.backlog = nil
	return evs
}

// Run starts the master and serves until a stop signal or command; it
// returns nil after a graceful stop.
func Run(cfg *config.Config, opts Options) (err error) {
	m := &Master{cfg: cfg, opts: opts, log: opts.Log.WithField("role", ipc.RoleMaster),
		events: make(chan any, 256), control: make(chan controlReq), done: make(chan struct{}),
		slots: make(map[slotKey]*slotInfo), started: time.Now(), statsWait: make(map[uint64]*statusJob),
		backlogWake: make(chan struct{}, 1)}
	if _, err := cfg.WorkerCredential(); err != nil {
		return err
	}
	m.plane = plane.New(cfg, m.log, m.post)
	m.initPools()
	defer close(m.done)
	defer func() {
		if err != nil {
			m.reportUpgradeFailure(err)
		}
	}()

	if m.ctlPath, err = ControlPath(cfg.File); err != nil {
		return err
	}
	if dir, skipped, _ := runDir(); skipped != "" {
		m.log.WithFields(logrus.Fields{"runtime_dir": dir, "cause": skipped}).
			Warn("runtime directory in the temp dir taken by another user; using the fallback (the CLI finds it there too)")
	}
	if m.pidPath, err = PIDPath(cfg); err != nil {
		return err
	}
	m.upg, err = tableflip.New(tableflip.Options{PIDFile: m.pidPath, UpgradeTimeout: cfg.UpgradeTimeout.D()})
	if err != nil {
		return fmt.Errorf("upgrader: %w", err)
	}
	defer m.upg.Stop()
	// Started by an upgrade, the old master still runs: its control
	// socket, pid file and plugin directories are its own until we are
	// ready.
	if !m.upg.HasParent() {
		if err := checkNotRunning(m.ctlPath, cfg.File); err != nil {
			return err
		}
		removeStalePluginDirs(cfg.File)
	}

	lns, err := m.listen()
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	defer m.closeAdmin()
	if err := m.openShared(); err != nil {
		return err
	}
	defer m.closeShared()
	// The control socket is the master's own, not handed over by tableflip:
	// stopping the upgrader (which unlinks its unix sockets) must leave the
	// CLI a way in while the stop drains.
	// Started by an upgrade, ours takes the path once we are ready.
	ctlAt := m.ctlPath
	if m.upg.HasParent() {
		ctlAt = m.ctlPath + ".next"
		os.Remove(ctlAt)
	}
	ctlLn, err := net.Listen("unix", ctlAt)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", ctlAt, err)
	}
	os.Chmod(ctlAt, 0o600)
	// Removed by shutdown when it is still ours (an upgrade hands it on).
	ctlLn.(*net.UnixListener).SetUnlinkOnClose(false)
	defer ctlLn.Close()
	// Served from now on: while the workers start, drover status says so
	// and drover stop ends the start (waitWorkers answers).
	go m.serveControl(ctlLn)
	if !m.upg.HasParent() {
		// Ours at once (tableflip writes it again once we are ready), so
		// that a second start is refused during a slow one; shutdown
		// removes it.
		if err := writePIDFile(m.pidPath); err != nil {
			return fmt.Errorf("pid file %s: %w", m.pidPath, err)
		}
		defer func() {
			if err != nil {
				removeOwnPIDFile(m.pidPath)
			}
		}()
	}

	m.rx, err = reactor.New(reactor.Options{Loops: cfg.ReactorNum, MaxConn: cfg.MaxConn,
		IdleTimeout: cfg.HeartbeatIdleTime.D(), OutputLimit: int(cfg.BufferOutputSize), Tick: plane.Tick(cfg),
		Log: m.log}, lns, m.plane)
	if err != nil {
		return err
	}
	m.plane.Start(m.rx)
	if err := m.plane.OpenAccessLog(); err != nil {
		return err
	}
	m.startAdmin()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGTTIN, syscall.SIGTTOU) // TTIN/TTOU: one worker more or fewer (pool.go)
	defer signal.Stop(sigs)
	// A closed stderr (the terminal or the log pipe gone) must not kill
	// the master, and the tree with it, by SIGPIPE: caught, a write fails
	// with EPIPE instead (nginx ignores SIGPIPE for the same reason). A
	// caught signal is reset by exec, so the manager and workers still
	// start with the default. Nothing reads the channel: Notify never
	// blocks on it.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)

	m.rx.Start()
	if err := m.startManager(); err != nil {
		m.rx.Stop()
		return err
	}
	if err := m.waitWorkers(sigs); err != nil {
		m.shutdown(true)
		if errors.Is(err, errStoppedWhileStarting) {
			return nil
		}
		return err
	}
	if err := m.rx.StartAccepting(); err != nil {
		m.shutdown(true)
		return err
	}
	sdnotify.Serving(m.log, m.bound) // READY=1, MAINPID: before an old master is told to drain
	if err := m.upg.Ready(); err != nil {
		if m.upg.HasParent() {
			sdnotify.HandBack(m.log) // MAINPID back to the old master, which serves on
		}
		m.shutdown(true)
		return fmt.Errorf("upgrader ready: %w", err)
	}
	if ctlAt != m.ctlPath {
		// The old master drains from here on; the CLI now reaches us.
		if err := os.Rename(ctlAt, m.ctlPath); err != nil {
			m.log.WithError(err).Error("control socket not moved into place; drover status/stop/reload cannot reach this master")
		}
	}
	m.ready.Store(true)
	m.serveAdmin() // started by an upgrade: the probes reach us from now on
	m.log.WithFields(logrus.Fields{"pid": os.Getpid(), "listeners": m.bound, "workers": cfg.WorkerNum,
		"task_workers": cfg.TaskWorkerNum, "pid_file": m.pidPath, "control": m.ctlPath, "generation": generation(),
		"admin": m.adminAddr()}).Info("drover ready")
	if opts.Ready != nil {
		opts.Ready()
	}
	if w := m.startWatch(); w != nil {
		defer w.Close()
	}
	return m.loop(sigs)
}

// checkNotRunning refuses to start a second master for one config, and
// clears a control socket left behind by a master that was killed.
func checkNotRunning(path, configFile string) error {
	c, err := Dial(path)
	if err == nil {
		resp, _ := c.Do(Request{Cmd: "status"}, 5*time.Second)
		c.Close()
		pid := 0
		if len(resp.Processes) > 0 {
			pid = resp.Processes[0].PID
		}
		return fmt.Errorf("drover is already running with this config (master pid %d): stop it first with `drover stop -c %s`", pid, configFile)
	}
	if _, serr := os.Stat(path); serr == nil {
		os.Remove(path) // stale: nothing accepts on it
	}
	return nil
}

// listen opens every configured listener through tableflip (inheriting
// them during an upgrade) and returns their descriptors for the reactor.
func (m *Master) listen() ([]*reactor.Listener, error) {
	var out []*reactor.Listener
	for i, lc := range m.cfg.Listeners {
		if lc.Network != "tcp" && lc.Network != "unix" {
			return nil, fmt.Errorf("listeners[%d]: %s listeners are not supported yet (use tcp:// or unix://)", i, lc.Network)
		}
		if lc.Network == "unix" {
			clearStaleSocket(lc.Addr)
		}
		ln, err := m.upg.ListenWithCallback(lc.Network, lc.Addr, sdnotify.ListenFunc(m.log)) // systemd's socket, if it passed one
		if err != nil {
			return nil, m.cfg.KeyError(fmt.Sprintf("listeners[%d].address", i), bindProblem(lc, err))
		}
		if lc.Network == "unix" {
			// Bound now, or inherited from the master before an upgrade:
			// either way the socket file gets this config's mode and owner.
			if err := setSocketPerm(lc); err != nil {
				ln.Close()
				return nil, m.cfg.KeyError(fmt.Sprintf("listeners[%d].address", i), fmt.Sprintf("%s: %v", lc.Address, err))
			}
		}
		// The reactor polls the raw descriptor; the net.Listener must stay
		// referenced, or its finalizer closes the descriptor under the loops.
		m.netLns = append(m.netLns, ln)
		fd, err := reactor.ListenerFD(ln)
		if err != nil {
			return nil, fmt.Errorf("listeners[%d] %s: %w", i, lc.Address, err)
		}
		bound := lc.Network + "://" + ln.Addr().String() // port 0 resolved: what logs and the access log name
		out = append(out, &reactor.Listener{Index: i, Name: bound, FD: fd, Splitter: splitterFor(lc)})
		m.bound = append(m.bound, bound)
	}
	return out, nil
}

// setSocketPerm gives a unix listener's socket file its mode (default
// 0660, whatever the umask made of it) and owner, as php-fpm's
// listen.mode, listen.owner and listen.group: connect(2) needs write
// permission on the file. Lchown: the path is the socket drover just
// bound, never a link to follow.
func setSocketPerm(lc config.Listener) error {
	mode, ok := lc.SocketMode()
	if !ok {
		return fmt.Errorf("mode %q is not an octal file mode", lc.Mode)
	}
	uid, gid, err := lc.SocketOwner()
	if err != nil {
		return err
	}
	fi, err := os.Lstat(lc.Addr)
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s is not the socket drover bound (%s): something replaced it", lc.Addr, fi.Mode().Type())
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Lchown(lc.Addr, uid, gid); err != nil {
			return fmt.Errorf("socket owner (owner %q, group %q): %w", lc.Owner, lc.Group, err)
		}
	}
	if err := os.Chmod(lc.Addr, mode); err != nil {
		return fmt.Errorf("socket mode %04o: %w", mode, err)
	}
	return nil
}

// bindProblem says why lc's address could not be bound and how to fix it,
// for the file:line error of listeners[N].address. tableflip formats the
// bind error as text (%s, not %w), so the errno is recognised by its text.
func bindProblem(lc config.Listener, err error) string {
	errno := syscall.Errno(0)
	for _, e := range []syscall.Errno{unix.EADDRINUSE, unix.EADDRNOTAVAIL, unix.EACCES, unix.ENOENT, unix.ENOTDIR} {
		if errors.Is(err, e) || strings.HasSuffix(err.Error(), e.Error()) {
			errno = e
			break
		}
	}
	switch {
	case errno == unix.EADDRINUSE && lc.Network == "unix":
		return fmt.Sprintf("%s is already in use: a process accepts connections on it (stop it, or choose another path)", lc.Addr)
	case errno == unix.EADDRINUSE:
		return fmt.Sprintf("%s is already in use by another socket (stop the process that holds it, `ss -ltnp` names it, or choose another port)", lc.Addr)
	case errno == unix.EADDRNOTAVAIL:
		return fmt.Sprintf("%s is not an address of this machine (use one that `ip addr` lists, 127.0.0.1, or 0.0.0.0 for all)", lc.Addr)
	case errno == unix.EACCES && lc.Network == "unix":
		return fmt.Sprintf("%s: permission denied (drover's user needs write and search permission on the socket's directory)", lc.Addr)
	case errno == unix.EACCES:
		return fmt.Sprintf("%s: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; or choose a port from 1024)", lc.Addr)
	case errno != 0 && lc.Network == "unix":
		return fmt.Sprintf("%s: %v (its directory must exist and be a directory; relative paths resolve against the config file's directory)", lc.Addr, errno)
	}
	return fmt.Sprintf("%s: %v", lc.Addr, err)
}

func clearStaleSocket(path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return
	}
	os.Remove(path)
}

func splitterFor(lc config.Listener) func() reactor.Splitter {
	max := int(lc.PackageMaxLength)
	switch lc.Protocol {
	case "length":
		s := reactor.NewLengthSplitter(reactor.LengthSpec{Type: lc.PackageLengthType[0],
			Offset: lc.PackageLengthOffset, BodyOffset: lc.PackageBodyOffset, Max: max})
		return func() reactor.Splitter { return s }
	case "eof":
		eof := []byte(lc.PackageEOF)
		return func() reactor.Splitter { return reactor.NewEOFSplitter(eof, max) }
	case "http":
		return nil // parsed by the master's OnStream
	default:
		s := reactor.NewRawSplitter(max)
		return func() reactor.Splitter { return s }
	}
}

// errStoppedWhileStarting ends a start that drover stop interrupted.
var errStoppedWhileStarting = errors.New("stopped before it was ready")

// writePIDFile writes this process's pid to path, atomically (a reader sees
// the old content or the new, never an empty file).
func writePIDFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// waitWorkers waits until every configured worker and task worker said
// hello. A handler that cannot start fails the start with its reason.
// Meanwhile it answers the control socket: status (the master "starting",
// the workers it waits for), stop (errStoppedWhileStarting); reload and
// upgrade are refused until the start is over.
func (m *Master) waitWorkers(sigs <-chan os.Signal) error {
	wait := m.cfg.Worker.StartTimeout.D() + 5*time.Second
	notReady := func(w, t int) error {
		return fmt.Errorf("workers not ready after %s (%d of %d workers, %d of %d task workers said hello); see worker.start_timeout",
			wait, w, m.cfg.WorkerNum, t, m.cfg.TaskWorkerNum)
	}
	if up := m.cfg.UpgradeTimeout.D(); m.upg.HasParent() && up > 0 {
		// Started by an upgrade: give up a little before the old master
		// does (it kills us at upgrade_timeout), so that the reason reaches
		// drover upgrade and this tree stops in order.
		if early := up - min(time.Second, up/10); early < wait {
			wait = early
			notReady = func(w, t int) error {
				return fmt.Errorf("not ready within upgrade_timeout (%s): %d of %d workers, %d of %d task workers said hello (see worker.start_timeout)",
					up, w, m.cfg.WorkerNum, t, m.cfg.TaskWorkerNum)
			}
		}
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		w, t := m.plane.ReadyCount()
		if w == m.cfg.WorkerNum && t == m.cfg.TaskWorkerNum {
			return nil
		}
		select {
		case ev := <-m.events:
			if err := m.startEvent(ev); err != nil {
				return err
			}
		case <-m.backlogWake:
			for _, ev := range m.takePosted() {
				if err := m.startEvent(ev); err != nil {
					return err
				}
			}
		case s := <-sigs:
			return fmt.Errorf("interrupted by %s while starting workers", s)
		case req := <-m.control:
			switch req.Cmd {
			case "stop":
				req.reply <- Response{OK: true, Message: "stopping"}
				m.log.WithFields(logrus.Fields{"workers_ready": w, "workers": m.cfg.WorkerNum,
					"task_workers_ready": t, "task_workers": m.cfg.TaskWorkerNum}).Info("stopping while starting (control socket)")
				return errStoppedWhileStarting
			case "reload", "upgrade", "scale":
				req.reply <- Response{Error: fmt.Sprintf("drover is starting (%d of %d workers, %d of %d task workers said hello); %s once it is ready",
					w, m.cfg.WorkerNum, t, m.cfg.TaskWorkerNum, req.Cmd)}
			default:
				m.answer(req)
			}
		case <-deadline.C:
			return notReady(w, t)
		}
	}
}

// loop is the master's main loop: every change to its tables happens here.
func (m *Master) loop(sigs <-chan os.Signal) error {
	// Nothing here polls: a worker over its max_memory comes as an event
	// from the manager, which samples RSS (manager/memory.go); a socket
	// pair that stopped draining is the data plane's to find (its tick).
	// The one ticker is systemd's watchdog, which wants a ping from this
	// loop at an interval (a stuck loop stops the pings).
	wd := sdnotify.NewWatchdog(m.log)
	defer wd.Stop()
	for {
		select {
		case <-wd.C:
			wd.Ping()
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				if err := m.upgrade(nil); err != nil {
					m.log.WithField("signal", s.String()).Error(err.Error())
				}
				continue
			case syscall.SIGUSR1, syscall.SIGUSR2:
				fail := func(err error) { m.log.WithField("signal", s.String()).Error(err.Error()) }
				err := m.reload(s == syscall.SIGUSR2, func(string) {}, func(_ int, err error) {
					if err != nil {
						fail(err)
					}
				})
				if err != nil {
					fail(err)
				}
				continue
			case syscall.SIGTTIN, syscall.SIGTTOU:
				m.scaleBy(map[os.Signal]int{syscall.SIGTTIN: 1, syscall.SIGTTOU: -1}[s], s.String())
				continue
			}
			m.log.WithField("signal", s.String()).Info("stopping")
			m.shutdownWith(sigs, false)
			return nil
		case req := <-m.control:
			if req.Cmd == "stop" {
				req.reply <- Response{OK: true, Message: "stopping"}
				m.log.WithField("force", req.Force).Info("stopping (control socket)")
				m.shutdownWith(sigs, req.Force)
				return nil
			}
			if req.Cmd == "upgrade" {
				req.reply <- Response{OK: true, Progress: true, Message: "upgrade started"}
				if err := m.upgrade(&req); err != nil {
					go func() {
						<-req.sent // after "upgrade started"
						writeResponse(req.conn, Response{Error: err.Error()})
						req.conn.Close()
					}()
				}
				continue
			}
			if req.Cmd == "reload" {
				req.reply <- Response{OK: true, Progress: true, Message: "reload started"}
				m.reloadFor(req)
				continue
			}
			if req.Cmd == "scale" {
				m.scaleFor(req) // pool.go
				continue
			}
			m.answer(req)
		case ev := <-m.events:
			if end, err := m.loopEvent(sigs, ev); end {
				return err
			}
		case <-m.backlogWake:
			for _, ev := range m.takePosted() {
				if end, err := m.loopEvent(sigs, ev); end {
					return err
				}
			}
		}
	}
}

// startEvent handles an event while the workers start (waitWorkers): a
// worker that exits then fails the start.
func (m *Master) startEvent(ev any) error {
	if err := m.handle(ev); err != nil {
		return err
	}
	if x, ok := ev.(evWorkerExited); ok && x.mgr == m.curMgr() {
		return fmt.Errorf("%s %d failed to start: %s", x.ev.Role, x.ev.Slot, startFailure(x.ev))
	}
	return nil
}

// loopEvent handles an event on the main loop; end: the loop is over
// (drover stopped after an upgrade, or the master failed: err).
func (m *Master) loopEvent(sigs <-chan os.Signal, ev any) (end bool, err error) {
	if up, ok := ev.(evUpgradeDone); ok {
		if m.upgradeDone(up) {
			m.shutdownWith(sigs, false)
			return true, nil
		}
		return false, nil
	}
	if err := m.handle(ev); err != nil {
		m.log.WithError(err).Error("master failed; stopping")
		m.shutdown(true)
		return true, err
	}
	return false, nil
}

// answer answers a request that the loop does not handle itself: status
// is answered once its samples are in (startStatus), anything else at once.
func (m *Master) answer(req controlReq) {
	switch req.Cmd {
	case "status":
		m.startStatus(req.reply)
		return
	case "health": // the admin listener's /health: the loop answers
		req.reply <- Response{OK: true}
		return
	case "metrics": // the admin listener's scrape: the status table, without the manager's runtime figures
		job := m.statusTable()
		job.reply = req.reply
		go job.sample(nil)
		return
	}
	req.reply <- Response{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
}

// handle applies one event to the master's tables.
func (m *Master) handle(ev any) error {
	switch e := ev.(type) {
	case evWorkerStarted:
		if e.mgr != m.curMgr() || m.stopping.Load() {
			e.file.Close()
			if e.answers != nil {
				e.answers.Close()
			}
			return nil
		}
		m.addWorker(e.ev, e.file, e.answers)
	case evWorkerExited:
		m.recoverShared(e.ev)
		if e.mgr != m.curMgr() {
			return nil
		}
		m.workerExited(e.ev)
		m.replaceExited(e.ev)
		m.poolExited(e.ev)
	case plane.Recycle:
		m.recycle(e.W, e.Cause)
	case plane.RetireAsked:
		m.retire(e.W, e.Cause)
	case plane.Kill:
		m.notifyManager(ipc.CtlKill, e.W, e.Reason)
	case evReplaceTimeout:
		m.replaceTimedOut(e)
	case evWatch:
		m.watchReload(e.change)
	case plane.Ready:
		m.notifyManager(ipc.CtlWorkerReady, e.W, "")
		m.replaceReady(e.W)
		m.poolReady(e.W)
	case plane.Waited, evSlotGone, evPoolIdle, evTTL, evScaleTimeout:
		m.poolEvent(e) // pool.go
	case evManagerExited:
		if e.mgr != m.curMgr() || m.stopping.Load() {
			return nil
		}
		return m.managerLost(e)
	case evStartManager:
		if m.stopping.Load() {
			return nil
		}
		return m.startManager()
	case evStatsReply:
		m.statsIn(e.id, e.stats)
	case evStatsTimeout:
		m.statsIn(e.id, nil)
	case evMemory:
		m.memoryChecked(e)
	}
	return nil
}

func (m *Master) addWorker(ev ipc.WorkerEvent, f, answers *os.File) {
	m.plane.Attach(ev, f, answers)
	if _, ok := m.slots[slotKey{ev.Role, ev.Slot}]; !ok {
		m.slots[slotKey{ev.Role, ev.Slot}] = &slotInfo{}
	}
}

func (m *Master) workerExited(ev ipc.WorkerEvent) {
	si := m.slots[slotKey{ev.Role, ev.Slot}]
	if si == nil {
		si = &slotInfo{}
		m.slots[slotKey{ev.Role, ev.Slot}] = si
	}
	si.restarts++
	si.lastExit = describeExit(ev)
	if !m.stopping.Load() {
		m.counters.restarted(ev)
	}
	si.backoffUntil = time.Now().Add(time.Duration(ev.BackoffMS) * time.Millisecond)
	m.plane.Exited(ev.Gen, si.lastExit)
}

func describeExit(ev ipc.WorkerEvent) string {
	var s string
	switch {
	case ev.Signal != "":
		s = "killed by " + ev.Signal
	case ev.ExitCode >= 0:
		s = fmt.Sprintf("exited with code %d", ev.ExitCode)
	}
	switch {
	case ev.Cause != "" && s != "":
		s = ev.Cause + " (" + s + ")"
	case ev.Cause != "":
		s = ev.Cause
	}
	if len(ev.Stderr) > 0 {
		s += "; last stderr: " + tellingLine(ev.Stderr)
	}
	return s
}

// tellingLine is the line of a worker's stderr tail that says why it ended:
// the last one, or, when the tail ends in PHP's trace of an uncaught
// exception ("Stack trace:", "#0 …", "  thrown in …"), the message above it.
func tellingLine(tail []string) string {
	last := tail[len(tail)-1]
	if !strings.HasPrefix(strings.TrimSpace(last), "thrown in ") {
		return last
	}
	for i := len(tail) - 2; i > 0; i-- {
		if tail[i] == "Stack trace:" {
			return tail[i-1]
		}
	}
	return last
}

// startFailure is describeExit for a worker that ended before it was ready.
// A clean exit then means worker.cmd ran to its end instead of serving.
func startFailure(ev ipc.WorkerEvent) string {
	s := describeExit(ev)
	if ev.ExitCode == 0 && ev.Signal == "" && ev.Cause == "" {
		s += " (the program ran to its end instead of serving drover's protocol: a PHP script ends in Drover\\Http\\Worker::serve()," +
			" a Symfony app needs APP_RUNTIME: 'Drover\\Symfony\\Runtime' under worker.env, a Laravel app's worker.cmd is" +
			" worker/php/laravel-worker.php; docs/php.md)"
	}
	return s
}

// shutdownWith stops gracefully, or at once when force or when a second
// SIGINT/SIGTERM arrives meanwhile.
func (m *Master) shutdownWith(sigs <-chan os.Signal, force bool) {
	hurry := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case s := <-sigs:
				if s != syscall.SIGINT && s != syscall.SIGTERM {
					continue
				}
				m.log.WithField("signal", s.String()).Warn("second signal: stopping at once")
				close(hurry)
				return
			case <-stop:
				return
			}
		}
	}()
	if force {
		close(hurry)
	}
	m.drain(hurry)
	m.shutdown(force)
}

// drain stops accepting and reading, then waits until workers answered
// every event in flight, up to max_wait_time.
func (m *Master) drain(hurry <-chan struct{}) {
	m.stopping.Store(true)
	if m.ownsPaths() {
		sdnotify.Stopping(m.log) // the service's main process only: not after a hand-over
	}
	m.rx.StopAccepting()
	// Closed at once (tableflip's copies too), so new clients are refused
	// rather than left waiting in the backlog while the stop drains.
	m.upg.Stop()
	<-m.upg.Exit()
	for _, ln := range m.netLns {
		ln.Close()
	}
	m.plane.Drain()
	m.log.WithFields(logrus.Fields{"events_in_flight": m.plane.Outstanding(), "max_wait_time": m.cfg.MaxWaitTime.D().String()}).
		Info("listeners closed; draining in-flight events")
	select {
	case <-hurry:
		return
	default:
	}
	t := time.NewTimer(m.cfg.MaxWaitTime.D())
	defer t.Stop()
	select {
	case <-m.plane.Idle():
	case <-t.C:
		m.log.WithField("events_cut", m.plane.Outstanding()).Warn("max_wait_time reached with events still in flight; stopping anyway")
		return
	case <-hurry:
		return
	}
	// HTTP connections end with the response to their current or next
	// request (Connection: close); idle ones are closed after a moment.
	// Each HTTP connection closed and each task ended wakes us (Wake).
	for m.plane.HTTPConns() > 0 || m.tasksLeft() > 0 {
		select {
		case <-m.plane.Wake():
		case <-t.C:
			if n := m.plane.HTTPConns(); n > 0 {
				m.log.WithField("connections", n).Info("max_wait_time reached with HTTP connections open; closing them")
			}
			return
		case <-hurry:
			return
		}
	}
}

// tasksLeft is how many tasks are queued or running: the drain gives them
// max_wait_time too (an async task holds no event of its asker).
func (m *Master) tasksLeft() int {
	q, r := m.plane.TasksLeft()
	return q + r
}

// shutdown stops the workers and the manager and closes every connection.
// Tasks still queued then are dropped, and counted in a log line; those
// running finish within max_wait_time, as events do.
func (m *Master) shutdown(force bool) {
	m.stopping.Store(true)
	m.replaceStop()
	m.poolStop()
	if m.plane != nil {
		m.plane.Stopping()
		if q, r := m.plane.TasksLeft(); q+r > 0 {
			m.log.WithFields(logrus.Fields{"tasks_dropped": q, "tasks_running": r, "max_wait_time": m.cfg.MaxWaitTime.D().String()}).
				Warn("stopping with tasks left: the queued ones are dropped unstarted, the running ones get max_wait_time to finish")
		}
		for _, wi := range m.plane.Snapshot() {
			if !wi.Dead {
				m.plane.Stop(wi.W)
			}
		}
	}
	if m.curMgr() != nil {
		// The manager's ladder after max_wait_time (SIGTERM, 1 s, SIGKILL)
		// and up to 2 s for what the workers left in their process groups
		// (SIGTERM, 1 s, SIGKILL, 1 s), with a second to spare.
		m.curMgr().stop(force, m.cfg.MaxWaitTime.D()+4*time.Second)
	}
	if m.rx != nil {
		m.rx.Stop()
		m.plane.CloseAccessLog() // the loops' last lines, the connections closed just now
	}
	for _, ln := range m.netLns {
		ln.Close()
	}
	if m.ownsPaths() {
		for _, l := range m.cfg.Listeners {
			if l.Network == "unix" {
				os.Remove(l.Addr)
			}
		}
		os.Remove(m.ctlPath)
	}
	removeOwnPIDFile(m.pidPath)
	m.log.Info("drover stopped")
}

// ownsPaths reports whether the unix socket paths (listeners, control) are
// this master's to remove: not once a new master took over, nor while a
// master started by an upgrade is not ready (the old one still uses them).
func (m *Master) ownsPaths() bool {
	return !m.upgraded.Load() && (m.upg == nil || !m.upg.HasParent() || m.ready.Load())
}

func removeOwnPIDFile(path string) {
	b, err := os.ReadFile(path)
	if err == nil && string(b) == fmt.Sprint(os.Getpid()) {
		os.Remove(path)
	}
}

// hasStream reports whether cfg has a listener other than HTTP.
func hasStream(cfg *config.Config) bool {
	for _, l := range cfg.Listeners {
		if l.Protocol != "http" {
			return true
		}
	}
	return false
}

// removeStalePluginDirs removes the go-plugin socket directories a killed
// master of this instance left in the runtime directory.
func removeStalePluginDirs(configFile string) {
	var stale []string
	if dir, err := RunDir(); err == nil {
		stale, _ = filepath.Glob(filepath.Join(dir, instanceKey(configFile)+".mgr*"))
	}
	// With user:, they are in the temp directory (master/manager.go).
	more, _ := filepath.Glob(filepath.Join(os.TempDir(), "drover-"+instanceKey(configFile)+".mgr*"))
	for _, d := range append(stale, more...) {
		os.RemoveAll(d)
	}
}
