package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/lines"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master/plane"
)

// managerProc is the master's handle on one manager process. startManager
// (on the master's loop) sets its fields before it publishes it (mgrp);
// then they are read-only, but exited, which the goroutine that waits for
// the process closes. ctl is safe from any goroutine (one datagram per
// Send; only readManager receives).
type managerProc struct {
	pid       int
	started   time.Time
	ctl       *ipc.Control
	exited    chan struct{} // closed when the process has been reaped
	pluginDir string        // go-plugin's socket directories; removed after the exit
}

// startManager re-executes this binary as the manager, hands it the config
// over its control channel and starts reading its messages.
func (m *Master) startManager() error {
	m.mgrSeq++
	ours, theirs, err := ipc.SocketPair(unix.SOCK_SEQPACKET)
	if err != nil {
		return fmt.Errorf("start manager: %w", err)
	}
	defer theirs.Close()
	ctl, err := ipc.NewControl(ours)
	ours.Close()
	if err != nil {
		return fmt.Errorf("start manager: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		ctl.Close()
		return fmt.Errorf("start manager: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	// go-plugin's socket directories go in here; removed with the manager.
	pluginDir := ""
	if dir, err := RunDir(); err == nil {
		pluginDir, _ = os.MkdirTemp(dir, instanceKey(m.cfg.File)+".mgr")
	}
	if cred, _ := m.cfg.WorkerCredential(); cred != nil {
		// Workers of another user cannot reach the private runtime
		// directory: theirs is a directory of their own in the temp dir.
		if dir, err := os.MkdirTemp("", "drover-"+instanceKey(m.cfg.File)+".mgr"); err == nil {
			os.Chown(dir, int(cred.Uid), int(cred.Gid))
			os.Remove(pluginDir)
			pluginDir = dir
		}
	}
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{"drover: manager"},
		Env:        append(managerEnv(m.cfg.LogFormat, m.cfg.LogLevel), ipc.EnvPluginDir+"="+pluginDir),
		ExtraFiles: []*os.File{theirs},
		Stdout:     stderrW,
		Stderr:     stderrW,
		SysProcAttr: &syscall.SysProcAttr{
			// The manager dies with the master (the thread that started it
			// lives until the manager is reaped, see below).
			Pdeathsig: syscall.SIGKILL,
			// Its own process group: a terminal's Ctrl-C (or a group kill)
			// reaches the master, which stops the tree in order.
			Setpgid: true,
		},
	}
	m.sharedToManager(cmd)
	mp := &managerProc{ctl: ctl, exited: make(chan struct{}), pluginDir: pluginDir}
	startErr := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits: keep
		// this goroutine on its thread from Start to Wait, and let the thread
		// end with it.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		err := cmd.Wait()
		if mp.pluginDir != "" {
			os.RemoveAll(mp.pluginDir) // sockets of plugin workers the manager can no longer remove
		}
		close(mp.exited)
		m.post(evManagerExited{mgr: mp, err: err})
	}()
	if err := <-startErr; err != nil {
		os.RemoveAll(pluginDir)
		ctl.Close()
		stderrR.Close()
		stderrW.Close()
		return fmt.Errorf("start manager (%s): %w", exe, err)
	}
	stderrW.Close()
	mp.pid, mp.started = cmd.Process.Pid, time.Now()
	m.mgrp.Store(mp)
	go m.copyManagerLog(stderrR)

	cfgJSON, err := json.Marshal(m.cfg)
	if err != nil {
		return fmt.Errorf("encode config for the manager: %w", err)
	}
	init := ipc.Init{Config: cfgJSON, GenBase: m.mgrSeq << 32, LogFormat: m.cfg.LogFormat, LogLevel: m.cfg.LogLevel}
	init.WorkerSlots, init.TaskSlots = m.managerSlots() // the pools as they are (pool.go)
	var arena []*os.File                                // the request arena, for the workers
	if f := m.plane.RequestArena(); f != nil {
		arena = append(arena, f)
	}
	if err := ctl.Send(ipc.CtlInit, 0, init, arena...); err != nil {
		return fmt.Errorf("start manager: %w", err)
	}
	go m.readManager(mp)
	m.log.WithFields(logrus.Fields{"manager_pid": mp.pid}).Info("manager started")
	return nil
}

// managerLinePiece bounds a line of the manager's log copied as one write:
// the manager logs a worker's output in pieces of lines.MaxPiece, which
// its JSON or text escaping can make up to six times longer. A longer line
// is copied in pieces; reading goes on whatever the length, so the manager
// never writes to a pipe nobody reads.
const managerLinePiece = 1 << 20

// copyManagerLog forwards the manager's log lines (already formatted by
// its own logger) to the master's log output, one write per line so that
// they do not interleave with the master's own.
func (m *Master) copyManagerLog(r io.ReadCloser) {
	defer r.Close()
	out := m.opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	buf := make([]byte, 0, 64<<10)
	err := lines.Pump(r, managerLinePiece, func(piece string, _ bool) {
		buf = m.relayManagerLine(out, buf, piece)
	})
	if err != nil && !errors.Is(err, os.ErrClosed) {
		m.log.WithError(err).Warn("reading the manager's log failed")
	}
}

// readManager turns the manager's control messages into loop events.
func (m *Master) readManager(mp *managerProc) {
	for {
		h, payload, files, err := mp.ctl.Recv()
		if err != nil {
			return // the Wait goroutine reports the exit
		}
		if h.Type == ipc.CtlStatsReply {
			var st map[uint64]ipc.RuntimeStats
			if err := ipc.Unmarshal(payload, &st); err == nil {
				select {
				case m.events <- evStatsReply{id: h.ID, stats: st}:
				case <-m.done:
					return
				}
			}
			continue
		}
		var ev ipc.WorkerEvent
		if err := ipc.Unmarshal(payload, &ev); err != nil {
			m.log.WithError(err).WithField("type", h.Type.String()).Error("bad message from the manager; ignored")
			for _, f := range files {
				f.Close()
			}
			continue
		}
		switch h.Type {
		case ipc.CtlWorkerStarted:
			if len(files) != 1 && len(files) != 2 {
				m.log.WithField("files", len(files)).Error("worker started without its socket pair; ignored")
				for _, f := range files {
					f.Close()
				}
				continue
			}
			e := evWorkerStarted{mgr: mp, ev: ev, file: files[0]}
			if len(files) == 2 {
				e.answers = files[1] // its answer arena
			}
			m.events <- e
		case ipc.CtlWorkerExited:
			m.events <- evWorkerExited{mgr: mp, ev: ev}
		case ipc.CtlOverMemory:
			m.post(evMemory{gen: ev.Gen, rss: ev.RSS})
		case ipc.CtlSlotGone:
			m.post(evSlotGone{mgr: mp, role: ev.Role, slot: ev.Slot})
		}
	}
}

// notifyManager sends a control message about w; safe from any goroutine.
func (m *Master) notifyManager(t ipc.Type, w *plane.Worker, cause string) {
	mp := m.curMgr()
	if mp == nil {
		return
	}
	ev := ipc.WorkerEvent{Role: w.Role(), Slot: w.Slot(), Gen: w.Gen(), PID: w.PID(), Cause: cause}
	if err := mp.ctl.Send(t, w.Gen(), ev); err != nil {
		m.log.WithError(err).WithField("type", t.String()).Debug("manager unreachable")
	}
}

// managerLost starts a new manager after the old one died. The old
// manager's workers die with it (Pdeathsig); their connections are failed
// as their socket pairs close.
func (m *Master) managerLost(e evManagerExited) error {
	old := m.curMgr()
	old.ctl.Close()
	m.log.WithFields(logrus.Fields{"manager_pid": old.pid, "error": fmt.Sprint(e.err)}).
		Error("manager exited; starting a new one")
	if time.Since(old.started) < 10*time.Second {
		m.mgrFails++
	} else {
		m.mgrFails = 0
	}
	if m.mgrFails > 1 {
		// Crashing over and over: back off (0.5s, 1s, 2s … 10s) instead of
		// spinning; the loop keeps answering meanwhile.
		d := min(time.Duration(1<<min(m.mgrFails-2, 5))*500*time.Millisecond, 10*time.Second)
		m.log.WithField("backoff", d.String()).Warn("manager keeps exiting; waiting before the next start")
		time.AfterFunc(d, func() { m.post(evStartManager{}) })
		return nil
	}
	return m.startManager()
}

// forceStopWait bounds how long a forced stop waits for the manager to
// kill its children and their process groups before it kills the manager
// (then the workers die with it, Pdeathsig, but what they started lives on).
const forceStopWait = 5 * time.Second

// stop asks the manager to stop every child and waits for it to exit
// (force: the manager kills them at once, with their process groups; it
// is killed itself if it does not exit within forceStopWait).
func (mp *managerProc) stop(force bool, wait time.Duration) {
	if force {
		mp.ctl.Send(ipc.CtlShutdown, 0, ipc.WorkerEvent{Cause: ipc.ShutdownForce})
		wait = forceStopWait
	} else {
		mp.ctl.Send(ipc.CtlShutdown, 0, nil)
	}
	deadline := time.NewTimer(wait) // the deadline of the ladder, not a poll
	defer deadline.Stop()
	select {
	case <-mp.exited:
		mp.ctl.Close()
		return
	case <-deadline.C:
	}
	syscall.Kill(mp.pid, syscall.SIGKILL)
	<-mp.exited
	mp.ctl.Close()
}

// managerEnv is the master's environment without tableflip's and drover's
// own variables, plus the manager role and log settings.
func managerEnv(format, level string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DROVER_") || strings.HasPrefix(kv, "TABLEFLIP_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, ipc.EnvRole+"="+ipc.RoleManager, "DROVER_LOG_FORMAT="+format, "DROVER_LOG_LEVEL="+level)
}

// curMgr is the current manager process, nil before the first start.
func (m *Master) curMgr() *managerProc { return m.mgrp.Load() }
