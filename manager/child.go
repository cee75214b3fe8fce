package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/internal/lines"
	"github.com/drover-dev/drover/internal/plugin"
	"github.com/drover-dev/drover/ipc"
)

// stderrLines is how many of a worker's last output lines are kept for
// its exit report.
const stderrLines = 20

// reportLineMax bounds each line of an exit report (and its cause): 20
// lines of it fit a control message (128 KiB) with room to spare, so a
// report is never lost to a long line. A longer line is cut, and says so.
const reportLineMax = 2 << 10

// cutLine shortens s to reportLineMax bytes (at a UTF-8 boundary) and
// marks the cut with how many bytes it dropped.
func cutLine(s string) string {
	if len(s) <= reportLineMax {
		return s
	}
	n := reportLineMax
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s… [%d bytes cut]", s[:n], len(s)-n)
}

// child is one incarnation of a worker slot.
type child struct {
	role    string
	slot    int
	gen     uint64
	pid     int
	launch  string
	started time.Time
	log     *logrus.Entry
	done    chan struct{} // closed after the process was reaped
	ready   chan struct{} // closed when the master reports its hello

	mu        sync.Mutex
	state     *os.ProcessState
	waitErr   error
	cause     string // why drover ended it, if drover did
	wait      func() (*os.ProcessState, error)
	proc      *plugin.Process // launch: plugin only
	readyOnce sync.Once
	tail      []string
}

func (c *child) markReady() { c.readyOnce.Do(func() { close(c.ready) }) }

func (c *child) wasReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func (c *child) setCause(cause string) {
	c.mu.Lock()
	if c.cause == "" {
		c.cause = cause
	}
	c.mu.Unlock()
}

// signal sends sig to the child's process group (the handler and anything
// it started).
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.done:
		return
	default:
	}
	syscall.Kill(-c.pid, sig)
}

// kill ends a child that broke the protocol or hung.
func (c *child) kill(cause string) {
	c.setCause(cause)
	c.signal(syscall.SIGKILL)
}

// retire waits for a child that was sent a stop frame, then escalates.
func (c *child) retire(wait time.Duration, cause string) {
	if cause == "" {
		cause = "retired"
	}
	c.stopWithin(wait, "replaced: "+cause)
}

// stopWithin gives a child that was sent a stop frame wait to exit, then
// SIGTERM and, a second later, SIGKILL; cause says why it ended.
func (c *child) stopWithin(wait time.Duration, cause string) {
	c.setCause(cause)
	go func() {
		select {
		case <-c.done:
			return
		case <-time.After(wait):
		}
		c.log.WithField("max_wait_time", wait.String()).Warn("worker did not stop within max_wait_time; sending SIGTERM")
		c.signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(time.Second):
			c.log.Warn("worker ignored SIGTERM; sending SIGKILL")
			c.signal(syscall.SIGKILL)
		}
	}()
}

func (c *child) addLine(line string) {
	c.mu.Lock()
	if len(c.tail) == stderrLines {
		copy(c.tail, c.tail[1:])
		c.tail = c.tail[:stderrLines-1]
	}
	c.tail = append(c.tail, cutLine(line))
	c.mu.Unlock()
}

// exitEvent describes how the child ended.
func (c *child) exitEvent() ipc.WorkerEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := ipc.WorkerEvent{Role: c.role, Slot: c.slot, Gen: c.gen, PID: c.pid, ExitCode: -1, Cause: cutLine(c.cause)}
	for _, l := range c.tail {
		ev.Stderr = append(ev.Stderr, cutLine(l)) // the plugin launcher's tail is not cut yet
	}
	if c.state != nil {
		ev.ExitCode = c.state.ExitCode()
		if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ev.Signal = unix.SignalName(ws.Signal())
		}
	} else if c.waitErr != nil && ev.Cause == "" {
		ev.Cause = cutLine(c.waitErr.Error())
	}
	return ev
}

// slot supervises one worker slot: it keeps an incarnation running,
// restarting it with back-off when it exits, and starts a successor next to
// the running one when the master asks (CtlReplace: reload, recycling). The
// master retires the predecessor once the successor said hello; a
// predecessor's exit then starts nothing, and neither does the exit of a
// successor that failed while its predecessor still serves.
type slot struct {
	mg      *Manager
	role    string
	id      int
	h       *config.Handler
	num     int
	replace chan string // causes of successor starts asked for
	// added: the pool grew by this slot (CtlAddSlot).
	added bool
	drop  chan string // the cause of CtlDropSlot (pool.go)
}

// supervise starts the supervisor of a slot; added: the pool grows by it.
func (mg *Manager) supervise(role string, id int, h *config.Handler, num int, added bool) {
	s := &slot{mg: mg, role: role, id: id, h: h, num: num, replace: make(chan string, 8), added: added, drop: make(chan string, 1)}
	mg.mu.Lock()
	mg.slots[slotKey{role, id}] = s
	mg.mu.Unlock()
	mg.wg.Add(1)
	go func() {
		defer mg.wg.Done()
		s.run()
	}()
}

func (s *slot) run() {
	mg := s.mg
	exited := make(chan *child)
	var live []*child // oldest first; the last is the one taking new work
	failures := 0
	var retry <-chan time.Time
	wantStart := true
	dropping := false // CtlDropSlot: nothing more starts; the slot ends with its last incarnation
	// start spawns an incarnation; false when it could not be started, which
	// has been reported as an exit.
	start := func(cause string) bool {
		c, err := mg.spawn(s.role, s.id, s.h, s.num)
		if err != nil {
			var ev ipc.WorkerEvent
			if c == nil {
				ev = ipc.WorkerEvent{Role: s.role, Slot: s.id, Gen: mg.gen.Add(1), ExitCode: -1, Cause: err.Error()}
			} else {
				// Started but never became a worker (go-plugin handshake):
				// its exit status and output, like any early exit.
				ev = c.exitEvent()
				ev.Cause = s.launchFailure(ev, err)
				c.log.WithError(err).Debug("plugin launch failed")
			}
			s.exitedEarly(ev, &failures, len(live) > 0, &retry)
			return false
		}
		if cause != "" {
			c.log.WithField("cause", cause).Info("successor started")
		}
		live = append(live, c)
		go func() {
			mg.watch(c, s.h.StartTimeout.D())
			select {
			case exited <- c:
			case <-mg.stop:
			}
		}()
		return true
	}
	for {
		if wantStart && retry == nil && !dropping {
			wantStart = !start("")
		}
		if dropping && len(live) == 0 {
			s.gone()
			return
		}
		select {
		case <-mg.stop:
			return
		case <-retry:
			retry = nil
		case cause := <-s.drop:
			dropping, retry, wantStart = true, nil, false
			s.dropLive(live, cause)
		case cause := <-s.replace:
			if len(live) == 0 || dropping {
				continue // a start is due anyway (back-off): it will be the new one
			}
			start(cause)
		case c := <-exited:
			newest := live[len(live)-1] == c
			for i, l := range live {
				if l == c {
					live = append(live[:i], live[i+1:]...)
					break
				}
			}
			mg.mu.Lock()
			delete(mg.children, c.gen)
			mg.mu.Unlock()
			ev := c.exitEvent()
			switch {
			case dropping:
				mg.logExit(ev, 0, msgSlotDropped)
				mg.report(ipc.CtlWorkerExited, ev)
			case !newest:
				// A predecessor leaving after its successor took over.
				mg.logExit(ev, 0, "worker replaced")
				mg.report(ipc.CtlWorkerExited, ev)
			case len(live) > 0 && !c.wasReady():
				// A successor that failed before its hello, while its
				// predecessor still serves: that one goes on; the master
				// reports the failure.
				s.exitedEarly(ev, &failures, true, &retry)
			default:
				if c.wasReady() && time.Since(c.started) >= time.Second {
					failures = 0
				} else {
					failures++
				}
				s.report(ev, failures, &retry)
				wantStart = true
			}
		}
	}
}

// launchFailure is the cause of a plugin launch that failed after the
// process started: none beyond its exit when it exited by itself (its
// code and output say why), the start timeout when drover killed it for
// being slow, else go-plugin's complaint.
func (s *slot) launchFailure(ev ipc.WorkerEvent, err error) string {
	switch {
	case ev.Signal == "" && ev.ExitCode >= 0:
		return ""
	case strings.Contains(err.Error(), "timeout"):
		return fmt.Sprintf("no hello within start_timeout (%s)", s.h.StartTimeout.D())
	}
	var se *plugin.StartError
	if errors.As(err, &se) {
		err = se.Err
	}
	return "go-plugin handshake failed: " + err.Error()
}

// exitedEarly reports an incarnation that never served; with a
// predecessor still serving (covered), nothing restarts.
func (s *slot) exitedEarly(ev ipc.WorkerEvent, failures *int, covered bool, retry *<-chan time.Time) {
	if covered {
		s.mg.logExit(ev, 0, "successor failed; its predecessor keeps serving")
		s.mg.report(ipc.CtlWorkerExited, ev)
		return
	}
	*failures++
	s.report(ev, *failures, retry)
}

// report logs and reports an exit after which the slot restarts, and arms
// the back-off.
func (s *slot) report(ev ipc.WorkerEvent, failures int, retry *<-chan time.Time) {
	mg := s.mg
	backoff := backoffFor(failures, ev.ExitCode)
	select {
	case <-mg.stop:
		backoff = 0
	default:
	}
	ev.BackoffMS = backoff.Milliseconds()
	msg := "worker exited; restarting"
	if backoff > 0 {
		msg = "worker failed; restarting after back-off"
	}
	mg.logExit(ev, failures, msg)
	mg.report(ipc.CtlWorkerExited, ev)
	if backoff > 0 {
		*retry = time.After(backoff)
	}
}

// backoffFor is the wait before restarting a slot after failures early
// exits in a row: none after a worker that ran well, then 100ms doubling to
// 30s; at least 1s after a boot failure (exit code 78).
func backoffFor(failures, code int) time.Duration {
	if failures == 0 {
		return 0
	}
	d := min(100*time.Millisecond<<min(failures-1, 9), 30*time.Second)
	if code == ipc.ExitBootFailure {
		d = max(d, time.Second)
	}
	return d
}

func (mg *Manager) logExit(ev ipc.WorkerEvent, failures int, msg string) {
	fields := logrus.Fields{"role": ev.Role, "worker_id": ev.Slot, "pid": ev.PID, "gen": ev.Gen, "exit_code": ev.ExitCode}
	if ev.Signal != "" {
		fields["signal"] = ev.Signal
	}
	if ev.Cause != "" {
		fields["cause"] = ev.Cause
	}
	if len(ev.Stderr) > 0 {
		fields["stderr_tail"] = strings.Join(ev.Stderr[max(0, len(ev.Stderr)-5):], " | ")
	}
	select {
	case <-mg.stop:
		mg.log.WithFields(fields).Info("worker exited")
		return
	default:
	}
	switch {
	case ev.BackoffMS > 0:
		fields["backoff_ms"], fields["failures"] = ev.BackoffMS, failures
		mg.log.WithFields(fields).Error(msg)
	case msg == "worker replaced" || msg == msgSlotDropped:
		mg.log.WithFields(fields).Info(msg)
	default:
		mg.log.WithFields(fields).Warn(msg)
	}
}

// watch waits for c to exit, killing it if it does not say hello within
// the start timeout.
func (mg *Manager) watch(c *child, startTimeout time.Duration) {
	if startTimeout <= 0 {
		<-c.done
		return
	}
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-c.ready:
	case <-t.C:
		c.log.WithField("start_timeout", startTimeout.String()).Error("worker did not say hello within start_timeout; killing it")
		c.kill(fmt.Sprintf("no hello within start_timeout (%s)", startTimeout))
	}
	<-c.done
}

// spawn starts one incarnation: a fresh socket pair whose one end becomes
// the child's fd 3 and whose other end goes to the master.
func (mg *Manager) spawn(role string, slot int, h *config.Handler, num int) (*child, error) {
	gen := mg.gen.Add(1)
	ours, theirs, err := ipc.SocketPair(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	defer ours.Close()
	defer theirs.Close()
	extra, arenaEnv, answers := mg.arenas(role, theirs)
	if answers != nil {
		defer answers.Close()
	}
	// A deploy that flips a `current` link between releases is followed
	// here: what the links name now is what this incarnation runs.
	if h, err = atSpawn(h); err != nil {
		return nil, err
	}
	launch, err := mg.launchMode(h)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:       h.Path,
		Args:       append([]string(nil), h.Cmd...),
		Dir:        h.Dir,
		Env:        append(mg.roleEnv(workerEnv(role, slot, num, launch, h, mg.cred), role, h), arenaEnv...),
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Pdeathsig:  syscall.SIGKILL,
			Setpgid:    true,
			Credential: mg.cred, // user:, group:
		},
	}
	mg.passShared(cmd)
	c := &child{role: role, slot: slot, gen: gen, launch: launch, done: make(chan struct{}), ready: make(chan struct{}),
		log: mg.base.WithFields(logrus.Fields{"role": role, "worker_id": slot, "gen": gen})}
	var start func() error
	if launch == launchPlugin {
		start = func() error { return c.startPlugin(cmd, h) }
	} else {
		start = func() error { return c.startExec(cmd, h) }
	}
	started := make(chan error, 1)
	mg.wg.Add(1) // the manager's shutdown waits for the child and its group
	go func() {
		defer mg.wg.Done()
		// Pdeathsig is tied to the thread that forks: hold it until the
		// child is reaped, then let it exit with this goroutine.
		runtime.LockOSThread()
		err := start()
		ran := err == nil || c.state != nil
		log := c.log.WithField("pid", c.pid)
		started <- err
		if err == nil {
			c.await()
		}
		if ran {
			// The handler is gone; what it started in its group goes too.
			c.endGroup(log)
		}
	}()
	if err := <-started; err != nil {
		if c.state != nil {
			return c, err // it ran: its exit status and output tell why it failed
		}
		if mg.cred != nil && errors.Is(err, fs.ErrPermission) {
			err = fmt.Errorf("%w (workers run as uid %d gid %d, see user: and group:: that user needs to read and execute %s and to enter %s)",
				err, mg.cred.Uid, mg.cred.Gid, h.Path, h.Dir)
		}
		return nil, err
	}
	c.started = time.Now()
	mg.mu.Lock()
	mg.children[gen] = c
	mg.mu.Unlock()
	pass := []*os.File{ours}
	if answers != nil {
		pass = append(pass, answers)
	}
	mg.report(ipc.CtlWorkerStarted, ipc.WorkerEvent{Role: role, Slot: slot, Gen: gen, PID: c.pid, Launch: c.launch}, pass...)
	c.log.WithFields(logrus.Fields{"cmd": strings.Join(h.Cmd, " "), "path": h.Path, "dir": h.Dir, "launch": c.launch}).Info("worker started")
	return c, nil
}

// Launch modes (worker.launch).
const (
	launchExec   = "exec"
	launchPlugin = "plugin"
)

// atSpawn returns a copy of h whose Path and Dir are what their symbolic
// links name at this moment (filepath.EvalSymlinks). Called at each spawn,
// so that a successor started after `ln -sfn releases/43 current` runs
// release 43 (its executable, its launch mode and its working directory),
// and the same file is inspected (launch: auto, checksum) and executed even
// if the link flips meanwhile. Args keep what the user wrote: a script path
// in them (php /srv/app/current/worker.php) is opened by the interpreter,
// through the link, when it starts. A link that leads nowhere fails the
// spawn, naming it; the worker it would replace keeps serving.
func atSpawn(h *config.Handler) (*config.Handler, error) {
	r := *h
	var err error
	if r.Path, err = filepath.EvalSymlinks(h.Path); err != nil {
		return nil, fmt.Errorf("%s: %w (a release link that points nowhere? the running workers keep serving)", h.Path, unwrapPath(err))
	}
	if h.Dir != "" {
		if r.Dir, err = filepath.EvalSymlinks(h.Dir); err != nil {
			return nil, fmt.Errorf("dir %s: %w (a release link that points nowhere? the running workers keep serving)", h.Dir, unwrapPath(err))
		}
	}
	return &r, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// maxLaunches bounds the launch modes remembered (one per executable
// file; a deploy adds one).
const maxLaunches = 256

// launchMode resolves worker.launch: auto means plugin for a Go executable
// built with drover's SDK and worker/plugin (its build info lists go-plugin,
// or does not list modules at all, as for a test binary), exec for
// anything else. Auto is decided once per file, which is known by its path
// and identity (inode, size, modification time): a new build at the same
// path, or a new release behind a link, is inspected again.
func (mg *Manager) launchMode(h *config.Handler) (string, error) {
	switch h.Launch {
	case launchExec, launchPlugin:
		return h.Launch, nil
	}
	key := h.Path
	if fi, err := os.Stat(h.Path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			key = fmt.Sprintf("%s\x00%d:%d:%d:%d", h.Path, st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if mode, ok := mg.launches[key]; ok {
		return mode, nil
	}
	mode := launchExec
	switch config.PluginSupportOf(h.Path) {
	case config.PluginPresent, config.PluginUnknown:
		mode = launchPlugin
	}
	if len(mg.launches) >= maxLaunches {
		clear(mg.launches)
	}
	mg.launches[key] = mode
	return mode, nil
}

// startExec starts the child directly; its output is read here.
func (c *child) startExec(cmd *exec.Cmd, h *config.Handler) error {
	if h.Checksum != "" {
		if err := verifyChecksum(h.Path, h.Checksum); err != nil {
			return err
		}
	}
	out, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("output pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, outW
	err = cmd.Start()
	outW.Close()
	if err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", h.Path, err)
	}
	c.pid = cmd.Process.Pid
	c.log = c.log.WithField("pid", c.pid)
	c.wait = func() (*os.ProcessState, error) {
		err := cmd.Wait()
		return cmd.ProcessState, err
	}
	go c.readOutput(out)
	return nil
}

// startPlugin starts the child through hashicorp/go-plugin, which verifies
// the checksum, runs the handshake and captures the output.
func (c *child) startPlugin(cmd *exec.Cmd, h *config.Handler) error {
	group := ""
	if cred := cmd.SysProcAttr.Credential; cred != nil {
		group = strconv.Itoa(int(cred.Gid))
	}
	p, err := plugin.Start(cmd, plugin.Options{Checksum: h.Checksum, StartTimeout: h.StartTimeout.D(), Log: c.log,
		TempDir: os.Getenv(ipc.EnvPluginDir), SocketGroup: group})
	if err != nil {
		var se *plugin.StartError
		if errors.As(err, &se) {
			c.mu.Lock()
			c.state, c.tail = se.State, se.Tail
			c.pid = se.State.Pid()
			c.mu.Unlock()
		}
		return fmt.Errorf("plugin launch of %s: %w", h.Path, err)
	}
	c.pid = p.Pid()
	// Set before the goroutines that log start (the output reader set its own).
	c.log = c.log.WithField("pid", c.pid)
	c.proc = p
	go c.checkHealth(p)
	c.wait = func() (*os.ProcessState, error) {
		<-p.Exited()
		for _, line := range p.Tail() {
			c.addLine(line)
		}
		return p.ExitState(), nil
	}
	return nil
}

// await blocks until the child has been reaped and records how it ended.
func (c *child) await() {
	state, err := c.wait()
	c.mu.Lock()
	c.state, c.waitErr = state, err
	c.mu.Unlock()
	close(c.done)
}

func verifyChecksum(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("%s: sha256 %s does not match worker.checksum %s (rebuilt binary? update the checksum)", path, got, want)
	}
	return nil
}

// readOutput logs the child's stdout and stderr line by line and keeps
// the last lines for its exit report. A line longer than lines.MaxPiece is
// logged in pieces (continued: true on all but its last); reading goes on
// to EOF whatever the lines' length, so the child never writes to a pipe
// nobody reads.
func (c *child) readOutput(r io.ReadCloser) {
	defer r.Close()
	err := lines.Pump(r, lines.MaxPiece, func(piece string, more bool) {
		c.addLine(piece)
		e := c.log.WithField("output", piece)
		if more {
			e = e.WithField("continued", true)
		}
		e.Info("worker output")
	})
	if err != nil && !errors.Is(err, os.ErrClosed) {
		c.log.WithError(err).Warn("reading worker output failed")
	}
}

// workerEnv is the manager's environment minus drover's own variables,
// plus the handler's env and the worker variables of docs/protocol.md.
// With h.ClearEnv (the default, php-fpm's clear_env) only what keptEnv
// names passes, with PATH and the identity of the user the handler runs
// as (cred; nil: the manager's) filled in; a value "$NAME" in the
// handler's env takes the manager's NAME (expandEnv).
func workerEnv(role string, slot, num int, launch string, h *config.Handler, cred *syscall.Credential) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DROVER_") || strings.HasPrefix(kv, "TABLEFLIP_") || isServiceEnv(kv) {
			continue
		}
		if h.ClearEnv && !keptEnv(kv) {
			continue
		}
		env = append(env, kv)
	}
	if h.ClearEnv {
		env = clearedEnv(env, cred)
	}
	for k, v := range h.Env {
		env = append(env, k+"="+expandEnv(v))
	}
	return append(env,
		ipc.EnvRole+"="+role,
		ipc.EnvWorkerID+"="+strconv.Itoa(slot),
		ipc.EnvWorkerNum+"="+strconv.Itoa(num),
		ipc.EnvFD+"="+strconv.Itoa(ipc.WorkerFD),
		ipc.EnvLaunch+"="+launch,
	)
}

// roleEnv adds what every process needs to address the others (worker
// ids for messages) and, for handlers with worker.max_memory, the limit, so
// that an SDK can retire its worker before passing it (the PHP SDK does).
func (mg *Manager) roleEnv(env []string, role string, h *config.Handler) []string {
	env = append(env, ipc.EnvWorkers+"="+strconv.Itoa(mg.cfg.WorkerIDs()), ipc.EnvTaskWorkers+"="+strconv.Itoa(mg.cfg.TaskWorkerNum))
	if h.MaxMemory > 0 && role != ipc.RoleProcess {
		env = append(env, ipc.EnvMaxMemory+"="+strconv.FormatInt(int64(h.MaxMemory), 10))
	}
	return env
}

// healthEvery is how often the manager probes a plugin worker's control
// service.
const healthEvery = 5 * time.Second

// checkHealth probes the go-plugin control service until the child exits
// and logs when it stops answering (the frame channel stays authoritative:
// a worker that still serves is not killed for this).
func (c *child) checkHealth(p *plugin.Process) {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-p.Exited():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := p.Health(ctx)
		cancel()
		switch {
		case err != nil && !failing:
			select {
			case <-p.Exited():
				return
			default:
			}
			c.log.WithError(err).Warn("worker's go-plugin control service fails its health check; it is kept while it serves")
			failing = true
		case err == nil && failing:
			c.log.Info("worker's go-plugin control service healthy again")
			failing = false
		}
	}
}
