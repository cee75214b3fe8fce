package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/internal/logfile"
	"github.com/drover-dev/drover/master"
)

// checkPIDFile refuses to start while the pid file names a live drover
// master, and removes a pid file left behind by one that is gone (its pid
// dead, or reused by a process that is not a drover master); the master
// writes its own once it serves. The control socket check in master.Run
// catches a second start with the same config; this one also catches a
// master of another config (or another runtime directory) that shares
// the pid file.
func checkPIDFile(cfg *config.Config, log *logrus.Entry) error {
	if master.StartedByUpgrade() {
		return nil // the pid file names the old master, which hands over to us
	}
	path, err := master.PIDPath(cfg)
	if err != nil {
		return err
	}
	// The pid file is written by rename (no link is followed), but someone
	// else who may write its directory could replace it with any pid.
	if err := logfile.CheckDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("pid_file: %w", err)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pid file %s: %w (fix its permissions or remove it)", path, err)
	}
	pid, perr := strconv.Atoi(string(bytes.TrimSpace(b)))
	var cause string
	switch {
	case perr != nil || pid <= 0:
		cause = fmt.Sprintf("it holds %q, not a pid", truncate(string(b), 20))
	default:
		live, why := isDroverMaster(pid)
		if live {
			return alreadyRunning(cfg, path, pid)
		}
		cause = why
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stale pid file %s (%s): %w (remove it by hand)", path, cause, err)
	}
	fields := logrus.Fields{"pid_file": path, "cause": cause}
	if perr == nil {
		fields["stale_pid"] = pid
	}
	log.WithFields(fields).Info("stale pid file removed; the new one is written once drover serves")
	return nil
}

// alreadyRunning is the error for a pid file naming a live master: which
// one, and how to stop it.
func alreadyRunning(cfg *config.Config, path string, pid int) error {
	switch other := configOf(pid); other {
	case cfg.File:
		return fmt.Errorf("drover is already running with this config (master pid %d, pid file %s): "+
			"stop it first with `drover stop -c %s`", pid, path, cfg.File)
	case "":
		return fmt.Errorf("drover is already running (master pid %d, named by pid file %s): "+
			"stop it first with `drover stop -c FILE` (the config it was started with) or `kill -TERM %d`", pid, path, pid)
	default:
		return fmt.Errorf("drover is already running with config %s and the same pid file %s (master pid %d): "+
			"stop it first with `drover stop -c %s`, or give this config another pid_file", other, path, pid, other)
	}
}

// configOf asks the instances in the runtime directory which one has
// master pid; "" if none answers (it may use another runtime directory).
func configOf(pid int) string {
	socks, _ := master.Instances()
	for _, s := range socks {
		cl, err := master.Dial(s)
		if err != nil {
			continue
		}
		resp, err := cl.Do(master.Request{Cmd: "status"}, 5*time.Second)
		cl.Close()
		if err == nil && len(resp.Processes) > 0 && resp.Processes[0].PID == pid {
			return resp.Processes[0].Config
		}
	}
	return ""
}

// isDroverMaster reports whether pid is a running drover master: a process
// of this executable (by file, by path — " (deleted)" after an
// upgrade replaced the binary — or by name) started as `drover start`.
// Otherwise it says what pid is instead.
func isDroverMaster(pid int) (bool, string) {
	// Our own pid (a restarted container numbers its processes alike) and
	// our parent's (the old master during a binary upgrade) are not
	// another master in the way.
	if pid == os.Getpid() || pid == os.Getppid() {
		return false, fmt.Sprintf("pid %d is this process or its parent", pid)
	}
	proc := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false, fmt.Sprintf("no process has pid %d", pid)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 || args[0] == "" {
		// A zombie (or a kernel thread) has no command line.
		return false, fmt.Sprintf("pid %d has exited", pid)
	}
	ours, _ := os.Executable()
	same := false
	if exe, err := os.Readlink(proc + "/exe"); err == nil {
		exe = strings.TrimSuffix(exe, " (deleted)")
		fi1, err1 := os.Stat(proc + "/exe")
		fi2, err2 := os.Stat("/proc/self/exe")
		same = exe == ours || filepath.Base(exe) == filepath.Base(ours) ||
			(err1 == nil && err2 == nil && os.SameFile(fi1, fi2))
		if !same {
			return false, fmt.Sprintf("pid %d is %s, not a drover master", pid, exe)
		}
	} else {
		// Another user's process: only its command line is readable.
		same = filepath.Base(args[0]) == filepath.Base(ours)
	}
	if !same || args[1] != "start" {
		return false, fmt.Sprintf("pid %d is %q, not a drover master", pid, truncate(strings.Join(args, " "), 60))
	}
	return true, ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
