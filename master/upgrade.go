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

// evUpgradeDone: the upgrade asked by req (nil: SIGHUP) is over; err
// says why it failed (this master serves on), else pid is the new master.
type evUpgradeDone struct {
	req *controlReq
	pid int
	err error
}

// upgrade starts an upgrade, refused during a reload or another upgrade.
// The slow part (waiting for a previous master to exit, tableflip starting
// the new one and waiting for its ready) runs on a goroutine, which answers
// req, if any, and ends with evUpgradeDone. Runs on the loop.
func (m *Master) upgrade(req *controlReq) error {
	if m.reloadRun != nil {
		return errors.New("a reload is in progress; upgrade once it is over")
	}
	if m.upgrading {
		return errUpgradeBusy
	}
	m.upgrading = true
	go func() {
		pid, err := m.upgradeSlow()
		if req != nil {
			<-req.sent // after "upgrade started"
			if err != nil {
				writeResponse(req.conn, Response{Error: err.Error()})
				req.conn.Close()
			} else {
				writeResponse(req.conn, Response{OK: true, Message: fmt.Sprintf("new master pid %d ready; old master pid %d draining", pid, os.Getpid())})
			}
		}
		m.post(evUpgradeDone{req: req, pid: pid, err: err})
	}()
	return nil
}

// upgradeDone ends an upgrade: a failed one leaves this master serving;
// after a successful one it drains and exits (end). Runs on the loop.
func (m *Master) upgradeDone(e evUpgradeDone) (end bool) {
	m.upgrading = false
	m.counters.upgradeEnded(e.err)
	if e.err != nil {
		return false
	}
	if e.req != nil {
		// Held open until this process exits: drover upgrade learns from
		// its EOF that the drain is over.
		m.holdMu.Lock()
		m.held = append(m.held, e.req.conn)
		m.holdMu.Unlock()
	}
	return true
}

// upgradeSlow starts a new master and waits until it is ready (then this
// master must drain and exit) or has failed (this one serves on). It
// returns the new master's pid. Runs on the upgrade's goroutine.
func (m *Master) upgradeSlow() (int, error) {
	start := time.Now()
	if m.upg.HasParent() {
		// Back to back: the master we replaced may still be finishing its
		// drain (tableflip allows one upgrade at a time).
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.MaxWaitTime.D()+10*time.Second)
		err := m.upg.WaitForParent(ctx)
		cancel()
		if err != nil {
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
		reason := m.upgradeFailure(err)
		err = fmt.Errorf("upgrade failed, this master (pid %d) keeps serving: %s", os.Getpid(), reason)
		m.log.WithField("cause", reason).Error("upgrade failed; this master keeps serving")
		return 0, err
	}
	pid := 0
	if b, err := os.ReadFile(m.pidPath); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	// At once, not on the loop: a stop handled meanwhile must leave the
	// paths to the new master.
	m.upgraded.Store(true)
	m.adminHandOver() // the new master answers the probes
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
