package master

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Binary upgrade (SIGHUP, drover upgrade). tableflip starts a new master
// — the binary now at our path, the config file re-read — handing it every
// listening socket; it starts its own manager and workers and signals
// ready once they said hello. Then this master stops accepting, finishes
// what it has (HTTP connections get Connection: close on their next
// response), stops its tree and exits. A new master that fails before it
// is ready is abandoned; this one serves on.

// EnvGeneration counts masters across upgrades: 1 for the first.
const EnvGeneration = "DROVER_GENERATION"

// errUpgradeBusy refuses an upgrade while another one, or a reload, runs.
var errUpgradeBusy = errors.New("an upgrade is already in progress; wait for it to finish")

// evUpgraded tells the master's loop that a new master took over: it
// drains and exits. reply, if any, is the control connection of the
// drover upgrade that asked, held open until this process exits.
type evUpgraded struct {
	req *controlReq
}

// generation is this master's generation (EnvGeneration, default 1).
func generation() int {
	if n, err := strconv.Atoi(os.Getenv(EnvGeneration)); err == nil && n > 0 {
		return n
	}
	return 1
}

// upgradeErrorPath is where a new master that fails before it is ready
// leaves its reason for the old one to report.
func (m *Master) upgradeErrorPath() string { return m.ctlPath + ".upgrade-error" }

// upgrade starts a new master and waits until it is ready (then this
// master must drain and exit) or has failed (this one serves on). It
// returns the new master's pid.
func (m *Master) upgrade() (int, error) {
	if m.reloading.Load() {
		return 0, errors.New("a reload is in progress; upgrade once it is over")
	}
	if !m.upgrading.CompareAndSwap(false, true) {
		return 0, errUpgradeBusy
	}
	start := time.Now()
	if m.upg.HasParent() {
		// Back to back: the master we replaced may still be finishing its
		// drain (tableflip allows one upgrade at a time).
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.MaxWaitTime.D()+10*time.Second)
		err := m.upg.WaitForParent(ctx)
		cancel()
		if err != nil {
			m.upgrading.Store(false)
			return 0, fmt.Errorf("upgrade refused: the previous master has not exited yet (%v); try again once it has", err)
		}
	}
	m.log.WithField("upgrade_timeout", m.cfg.UpgradeTimeout.D().String()).Info("upgrade: starting a new master")
	os.Remove(m.upgradeErrorPath())
	gen := generation()
	os.Setenv(EnvGeneration, strconv.Itoa(gen+1)) // inherited by the new master
	err := m.upg.Upgrade()
	os.Setenv(EnvGeneration, strconv.Itoa(gen))
	if err != nil {
		m.upgrading.Store(false)
		reason := m.upgradeFailure(err)
		err = fmt.Errorf("upgrade failed, this master (pid %d) keeps serving: %s", os.Getpid(), reason)
		m.log.WithField("cause", reason).Error("upgrade failed; this master keeps serving")
		return 0, err
	}
	pid := 0
	if b, err := os.ReadFile(m.pidPath); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	m.upgraded.Store(true)
	m.log.WithFields(logrus.Fields{"new_master_pid": pid, "took_ms": time.Since(start).Milliseconds()}).
		Info("upgrade: the new master is ready; this one drains and exits")
	return pid, nil
}

// tableflipChild finds the new master's pid in tableflip's errors
// ("child pid=N exited: …", "new child pid=N timed out").
var tableflipChild = regexp.MustCompile(`child pid=(\d+)`)

// upgradeFailure says why the new master failed, for drover upgrade: the
// reason it left (upgradeErrorPath: a config error with file, line and
// key; a handler that failed to start), else what tableflip saw, in
// drover's words.
func (m *Master) upgradeFailure(err error) string {
	who := "the new master"
	if sm := tableflipChild.FindStringSubmatch(err.Error()); sm != nil {
		who += " (pid " + sm[1] + ")"
	}
	if b, rerr := os.ReadFile(m.upgradeErrorPath()); rerr == nil && len(b) > 0 {
		os.Remove(m.upgradeErrorPath())
		return who + " failed: " + strings.TrimSpace(string(b))
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "timed out"):
		return fmt.Sprintf("%s was not ready within upgrade_timeout (%s) and was killed; its log says where it hung", who, m.cfg.UpgradeTimeout.D())
	case strings.Contains(msg, "exited"):
		if i := strings.Index(msg, "exited: "); i >= 0 {
			return fmt.Sprintf("%s exited (%s) before it was ready; its log says why", who, msg[i+len("exited: "):])
		}
		return who + " exited before it was ready; its log says why"
	}
	return who + " did not start: " + msg
}

// upgradeFor runs an upgrade asked for on the control socket. On success
// the connection stays open until this process exits, so that drover
// upgrade learns when the drain is over.
func (m *Master) upgradeFor(req controlReq) {
	pid, err := m.upgrade()
	if err != nil {
		writeResponse(req.conn, Response{Error: err.Error()})
		req.conn.Close()
		return
	}
	writeResponse(req.conn, Response{OK: true, Message: fmt.Sprintf("new master pid %d ready; old master pid %d draining", pid, os.Getpid())})
	m.post(evUpgraded{req: &req})
}

// reportUpgradeFailure leaves err for the old master when this one was
// started by an upgrade and fails before it is ready.
func (m *Master) reportUpgradeFailure(err error) {
	if m.upg == nil || !m.upg.HasParent() || m.ready.Load() || m.ctlPath == "" {
		return
	}
	os.WriteFile(m.upgradeErrorPath(), []byte(err.Error()), 0o600)
}

// ReportUpgradeFailure leaves err for the old master when this process was
// started by an upgrade and fails before master.Run (a config file that no
// longer loads), so that drover upgrade can say why. It reports whether it
// did: the old master then logs err as the upgrade's cause.
func ReportUpgradeFailure(configFile string, err error) bool {
	if !StartedByUpgrade() {
		return false
	}
	// The instance is named by the absolute path (cfg.File); the command
	// line may hold a relative one.
	if abs, aerr := filepath.Abs(configFile); aerr == nil {
		configFile = abs
	}
	p, perr := ControlPath(configFile)
	return perr == nil && os.WriteFile(p+".upgrade-error", []byte(err.Error()), 0o600) == nil
}

// StartedByUpgrade reports whether this process is a new master started
// by an upgrade (tableflip marks its child's environment), whose old
// master still runs and owns the pid file until the new one is ready.
func StartedByUpgrade() bool { return os.Getenv("TABLEFLIP_HAS_PARENT_7DIU3") != "" }
