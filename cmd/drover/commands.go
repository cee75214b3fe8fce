package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/internal/logfile"
	"github.com/drover-dev/drover/internal/watch"
	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/master"
)

var configFlag = &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config `FILE` (default: drover.yaml; to address a running instance, the file it was started with, or without one here, the only instance running)"}

// readyFDEnv names the descriptor on which a daemonized master reports
// that it serves ("ready") or why it failed.
const readyFDEnv = "DROVER_READY_FD"

func startCommand() *cli.Command {
	return &cli.Command{
		Name:  "start",
		Usage: "start the master, manager and workers",
		Flags: []cli.Flag{
			configFlag,
			&cli.BoolFlag{Name: "daemonize", Aliases: []string{"d"}, Usage: "run in the background (logs go to log_file); --daemonize=false runs in the foreground whatever the file says (daemonize)"},
			&cli.IntFlag{Name: "worker-num", Usage: "number of worker processes (worker_num)"},
			&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error (log_level)"},
		},
		Action: func(c *cli.Context) error {
			path := c.String("config")
			if path == "" {
				path = "drover.yaml"
			}
			cfg, err := config.Load(path)
			if err == nil {
				err = applyFlags(c, cfg)
			}
			if err != nil {
				if master.ReportUpgradeFailure(path, err) { // to the master we would replace
					// It logs err as the upgrade's cause, on the stream that is
					// our stderr too.
					return reportedError{err}
				}
				return inFormat(cli.Exit(err.Error(), 2), startFormat(cfg, path))
			}
			if cfg.Daemonize && os.Getenv(readyFDEnv) == "" {
				return inFormat(daemonize(cfg, overrides(c)), cfg.LogFormat)
			}
			return inFormat(asGiven(runMaster(cfg), cfg.File, path), cfg.LogFormat)
		},
	}
}

// applyFlags sets the keys that drover start's flags name, where given
// (a flag beats the file), and checks the result again: a flag's bad value
// is reported as the file's would be, by its key, without a line.
func applyFlags(c *cli.Context, cfg *config.Config) error {
	if !c.IsSet("daemonize") && !c.IsSet("worker-num") && !c.IsSet("log-level") {
		return nil
	}
	if c.IsSet("daemonize") {
		cfg.Daemonize = c.Bool("daemonize")
	}
	if c.IsSet("worker-num") {
		cfg.FixedPool(c.Int("worker-num")) // a dynamic worker_num too
	}
	if c.IsSet("log-level") {
		cfg.LogLevel = c.String("log-level")
	}
	return cfg.Validate()
}

// overrides are the flags of applyFlags that c was given, for the daemon
// started by daemonize (which runs in the background whatever its flags say).
func overrides(c *cli.Context) []string {
	var out []string
	for _, name := range []string{"worker-num", "log-level"} {
		if c.IsSet(name) {
			out = append(out, "--"+name+"="+c.String(name))
		}
	}
	return out
}

// asGiven names the config file in a problem the master found with it
// (config.Config.KeyError: an address that cannot be bound) as the user
// gave it to -c, as Load's problems do, instead of by its absolute path.
func asGiven(err error, abs, given string) error {
	var ce *config.Error
	if errors.As(err, &ce) && ce.File == abs {
		ce.File = given
	}
	return err
}

// runMaster runs the master in this process, logging to log_file or stderr.
// A daemon without log_file logs to the file its parent chose (daemonLogFile).
func runMaster(cfg *config.Config) error {
	daemon := os.Getenv(readyFDEnv) != ""
	if daemon && cfg.LogFile == "" {
		path, err := daemonLogFile(cfg)
		if err != nil {
			return err
		}
		cfg.LogFile = path
	}
	var out io.Writer = os.Stderr
	var lf *logfile.Writer
	var reopen func() error
	if cfg.LogFile != "" {
		var err error
		if lf, err = logfile.Open(cfg.LogFile); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("log_file: %w (create its directory or fix its permissions)", err)
			}
			return fmt.Errorf("log_file: %w", err)
		}
		defer lf.Close()
		out, reopen = lf, lf.Reopen
	}
	log := newLogger(out, cfg.LogFormat, cfg.LogLevel)
	if daemon && lf != nil {
		// stdout and stderr are the log file the parent opened: keep them
		// on the current file after a rotation, so that a crash report
		// lands where the logs are.
		if err := lf.CaptureStdio(); err != nil {
			log.WithError(err).Warn("stderr not moved to log_file; a crash report would go to the file drover started with")
		}
	}
	var notify *os.File
	if daemon {
		notify = os.NewFile(3, "ready")
		unix.CloseOnExec(3)
		os.Unsetenv(readyFDEnv)
	}
	err := checkPIDFile(cfg, logrus.NewEntry(log).WithField("role", ipc.RoleMaster))
	if err == nil {
		err = master.Run(cfg, master.Options{
			Log:        logrus.NewEntry(log),
			LogOutput:  out,
			ReopenLogs: reopen,
			Watch:      watchPaths,
			Version:    version,
			Ready: func() {
				if notify != nil {
					notify.WriteString("ready\n")
					notify.Close()
					notify = nil
				}
			},
		})
	}
	if err != nil {
		if notify != nil {
			notify.WriteString(err.Error() + "\n")
		}
		log.WithError(err).Error("drover failed")
		if out == os.Stderr || daemon {
			// Logged where main would print it: on stderr, or in the log
			// file that is a daemon's stderr.
			return reportedError{err}
		}
		return err
	}
	return nil
}

// reportedError is an error already written where main would print it
// (logged on stderr, or handed to the master that logs it): main exits 1
// without printing it a second time.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// daemonLogFile is where a daemon logs: log_file, or
// <runtime dir>/<config name>.log when none is set.
func daemonLogFile(cfg *config.Config) (string, error) {
	if cfg.LogFile != "" {
		return cfg.LogFile, nil
	}
	dir, err := master.RunDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, strings.TrimSuffix(filepath.Base(cfg.File), filepath.Ext(cfg.File))+".log"), nil
}

// daemonize starts this command again in a new session, detached from the
// terminal, with flags (overrides), and waits until it serves or fails.
func daemonize(cfg *config.Config, flags []string) error {
	logFile, err := daemonLogFile(cfg)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// -c made absolute; the child applies the same overrides to the file.
	cmd := exec.Command(exe, append([]string{"start", "-c", cfg.File}, flags...)...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.Stdin, cmd.ExtraFiles = devnull, []*os.File{w}
	// Checked as the master checks log_file: no link, no file or directory
	// of another user (internal/logfile).
	lf, err := logfile.OpenFile(logFile)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	lf.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	if line != "ready" {
		if line == "" {
			line = "the master exited before it was ready"
		}
		return fmt.Errorf("drover did not start: %s (log: %s)", line, logFile)
	}
	fmt.Printf("drover started in the background (pid %d, log %s)\n", cmd.Process.Pid, logFile)
	return nil
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "stop gracefully: stop accepting, finish in-flight work (up to max_wait_time), stop every process",
		Flags: []cli.Flag{configFlag,
			&cli.BoolFlag{Name: "force", Usage: "stop at once without waiting for in-flight work"}},
		Action: func(c *cli.Context) error {
			cl, err := dialInstance(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			before, _ := cl.Do(master.Request{Cmd: "status"}, 10*time.Second)
			cl.Close()
			if cl, err = master.Dial(cl.Path); err != nil {
				return err
			}
			resp, err := cl.Do(master.Request{Cmd: "stop", Force: c.Bool("force")}, 10*time.Second)
			if err != nil {
				return err
			}
			if !resp.OK {
				return errors.New(resp.Error)
			}
			start := time.Now()
			if err := cl.WaitClosed(10 * time.Minute); err != nil {
				return fmt.Errorf("waiting for drover to stop: %w", err)
			}
			// The master is gone; its children die with it, but say so only
			// once they are.
			for _, p := range before.Processes {
				if p.PID > 0 {
					waitExit(p.PID, start.Add(5*time.Second))
				}
			}
			pid := 0
			if len(before.Processes) > 0 {
				pid = before.Processes[0].PID
			}
			fmt.Printf("drover stopped (master pid %d, %d processes, %.1fs)\n", pid, len(before.Processes), time.Since(start).Seconds())
			return nil
		},
	}
}

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name: "reload",
		Usage: "replace every worker and task worker, one at a time, without losing a request " +
			"(each successor is ready before its predecessor leaves); waits and prints progress",
		Flags: []cli.Flag{configFlag,
			&cli.BoolFlag{Name: "tasks", Usage: "replace only the task workers (as SIGUSR2)"}},
		Action: func(c *cli.Context) error {
			start := time.Now()
			if c.Bool("tasks") {
				if err := haveTaskWorkers(c); err != nil {
					return err
				}
			}
			resp, err := command(c, master.Request{Cmd: "reload", Tasks: c.Bool("tasks")}, func(msg string) {
				if msg != "reload started" {
					fmt.Println(msg)
				}
			})
			if err != nil {
				return err
			}
			fmt.Printf("%s in %.1fs\n", resp.Message, time.Since(start).Seconds())
			return nil
		},
	}
}

// haveTaskWorkers fails when the instance has no task worker slot: reload
// --tasks would report "reloaded 0 task workers" as a success, and a deploy
// step aimed at the wrong instance or config would pass unnoticed.
func haveTaskWorkers(c *cli.Context) error {
	resp, err := command(c, master.Request{Cmd: "status"}, func(string) {})
	if err != nil {
		return err
	}
	for _, p := range resp.Processes {
		if p.Role == ipc.RoleTaskWorker {
			return nil
		}
	}
	return errors.New("no task workers to reload (task_worker_num is 0); drover reload without --tasks replaces the workers")
}

func reopenLogsCommand() *cli.Command {
	return &cli.Command{
		Name: "reopen-logs",
		Usage: "make the master reopen log_file and access_log, e.g. after logrotate renamed them " +
			"(the manager's and workers' lines follow: they go through the master)",
		Flags: []cli.Flag{configFlag},
		Action: func(c *cli.Context) error {
			resp, err := command(c, master.Request{Cmd: "reopen-logs"}, func(string) {})
			if err != nil {
				return err
			}
			fmt.Println(resp.Message)
			return nil
		},
	}
}

func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name: "upgrade",
		Usage: "replace the master by the binary now at its path, with the config file re-read, without dropping a " +
			"connection; returns once the new master serves and the old one has exited",
		Flags: []cli.Flag{configFlag},
		Action: func(c *cli.Context) error {
			start := time.Now()
			var cl *master.Client
			resp, err := commandOn(c, &cl, master.Request{Cmd: "upgrade"}, func(string) {})
			if err != nil {
				return err
			}
			defer cl.Close()
			fmt.Println(resp.Message)
			ready := time.Now()
			if err := cl.WaitClosed(30 * time.Minute); err != nil {
				return fmt.Errorf("waiting for the old master to exit: %w", err)
			}
			fmt.Printf("upgraded in %.1fs: new master ready after %.1fs, old master drained in %.1fs\n",
				time.Since(start).Seconds(), ready.Sub(start).Seconds(), time.Since(ready).Seconds())
			return nil
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show every process (role, pid, state, uptime, requests, RSS, CPU, restarts) and server counters",
		Flags: []cli.Flag{configFlag,
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array, one object per process"},
			&cli.BoolFlag{Name: "watch", Usage: "refresh every second until interrupted"}},
		Action: func(c *cli.Context) error {
			for {
				cl, err := dialInstance(c)
				if err != nil {
					return err
				}
				resp, err := cl.Do(master.Request{Cmd: "status"}, 10*time.Second)
				cl.Close()
				if err != nil {
					return err
				}
				if !resp.OK {
					return errors.New(resp.Error)
				}
				if c.Bool("watch") {
					fmt.Print("\033[H\033[2J")
				}
				if c.Bool("json") {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					enc.Encode(resp.Processes)
				} else {
					printStatus(os.Stdout, resp.Processes)
				}
				if !c.Bool("watch") {
					return nil
				}
				time.Sleep(time.Second)
			}
		},
	}
}

// statusTimeFormat is how drover status prints a start time.
const statusTimeFormat = "2006-01-02 15:04:05 MST"

func printStatus(out io.Writer, ps []master.Process) {
	if len(ps) > 0 && ps[0].Role == "master" {
		m := ps[0]
		// Its generation (1, then +1 per upgrade) and start time say which
		// master answers, and whether an upgrade took (docs/operations.md).
		fmt.Fprintf(out, "master:      pid %d, generation %d, started %s\n", m.PID, m.Generation, m.Started.Local().Format(statusTimeFormat))
		fmt.Fprintf(out, "config:      %s\nlisteners:   %s\nconnections: %d open, %d accepted\n",
			m.Config, strings.Join(m.Listeners, ", "), m.Connections, m.Accepted)
		if s := m.IPC; s != nil {
			fmt.Fprintf(out, "worker ipc:  %d frames out in %d writes (%.1f per write), %d frames in over %d reads (%.1f per read)\n",
				s.FramesToWorkers, s.Writes, ratio(s.FramesToWorkers, s.Writes), s.FramesFromWorkers, s.Reads, ratio(s.FramesFromWorkers, s.Reads))
		}
		printPools(out, m.Pools)
		printShared(out, m)
		fmt.Fprintln(out)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tID\tPID\tSDK\tSTATE\tUPTIME\tREQUESTS\tIN-FLIGHT\tRSS\tCPU\tGO HEAP\tRESTARTS\tLAST EXIT")
	for _, p := range ps {
		id, pid := fmt.Sprint(p.ID), fmt.Sprint(p.PID)
		if p.Role == "master" || p.Role == "manager" {
			id = "-"
		}
		if p.PID == 0 {
			pid = "-"
		}
		heap, sdk := "-", p.SDK
		if sdk == "" {
			sdk = "-"
		}
		if p.Runtime != nil {
			heap = humanBytes(p.Runtime.HeapAlloc)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.1f%%\t%s\t%d\t%s\n", p.Role, id, pid, sdk, p.State,
			(time.Duration(p.UptimeSec) * time.Second).String(), p.Requests, p.InFlight,
			humanBytes(p.RSS), p.CPU, heap, p.Restarts, p.LastExit)
	}
	tw.Flush()
}

// dialInstance connects to the instance named by -c, or to the only one
// this user runs.
func dialInstance(c *cli.Context) (*master.Client, error) {
	path := c.String("config")
	if path == "" {
		// Where a drover.yaml is, it names the instance, as it does for
		// `drover start`: a command run in one app's directory never
		// acts on another app's drover.
		if st, err := os.Stat("drover.yaml"); err == nil && st.Mode().IsRegular() {
			path = "drover.yaml"
		}
	}
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		sock, err := master.ControlPath(abs)
		if err != nil {
			return nil, err
		}
		cl, err := master.Dial(sock)
		if err != nil {
			return nil, fmt.Errorf("no drover is running with config %s (start it with `drover start -c %s`)", abs, path)
		}
		return cl, nil
	}
	socks, err := master.Instances()
	if err != nil {
		return nil, err
	}
	var live []*master.Client
	var configs []string
	for _, s := range socks {
		cl, err := master.Dial(s)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				os.Remove(s) // left by a killed master: nobody listens on it
			}
			continue
		}
		resp, err := cl.Do(master.Request{Cmd: "status"}, 5*time.Second)
		cl.Close()
		if err != nil || len(resp.Processes) == 0 {
			continue
		}
		if cl, err = master.Dial(s); err == nil {
			live = append(live, cl)
			configs = append(configs, resp.Processes[0].Config)
		}
	}
	switch len(live) {
	case 0:
		return nil, errors.New("no drover is running for this user (start one with `drover start -c drover.yaml`)")
	case 1:
		return live[0], nil
	}
	for _, cl := range live {
		cl.Close()
	}
	return nil, fmt.Errorf("%d drover instances are running; pick one with -c:\n  %s", len(live), strings.Join(configs, "\n  "))
}

// waitExit waits until process pid has exited (a zombie counts: a stopped
// master stays one until whoever started it reaps it) or the deadline.
// A pidfd becomes readable when its process exits, so this is an event,
// not a poll of /proc.
func waitExit(pid int, deadline time.Time) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if err != unix.EINTR && (err != nil || n > 0) {
			return
		}
	}
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// humanBytes formats n with a binary unit and one decimal: 15.3MiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f%ciB", v, "KMGT"[i])
}

// watchPaths is master.Options.Watch on internal/watch.
func watchPaths(paths []string, onChange func(string), onError func(error)) (io.Closer, error) {
	return watch.New(paths, watch.Options{
		OnChange: func(c watch.Change) { onChange(c.String()) },
		OnError:  onError,
	})
}

// command sends req to the instance c addresses and follows its progress
// lines (passed to progress) to the final answer, which it returns; an
// answer that is not OK is returned as an error.
func command(c *cli.Context, req master.Request, progress func(string)) (master.Response, error) {
	var cl *master.Client
	resp, err := commandOn(c, &cl, req, progress)
	if cl != nil {
		cl.Close()
	}
	return resp, err
}

// commandOn is command that leaves the connection open in *clp (nil on a
// dial error) for what the command does after its answer.
func commandOn(c *cli.Context, clp **master.Client, req master.Request, progress func(string)) (master.Response, error) {
	cl, err := dialInstance(c)
	if err != nil {
		return master.Response{}, err
	}
	*clp = cl
	resp, err := cl.Do(req, 10*time.Second)
	for err == nil && resp.OK && resp.Progress {
		progress(resp.Message)
		// A reload waits for successors (start_timeout) and predecessors
		// (max_wait_time), an upgrade for the new master (upgrade_timeout).
		resp, err = cl.Next(30 * time.Minute)
	}
	if err == nil && !resp.OK {
		err = errors.New(resp.Error)
	}
	return resp, err
}
