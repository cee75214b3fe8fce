package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/internal/config"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name: "check",
		Usage: "validate a config file and exit (0: valid, 1: not), starting nothing, as nginx -t; " +
			"prints what it checked, or every problem with its file and line",
		Flags: []cli.Flag{configFlag},
		Action: func(c *cli.Context) error {
			path := c.String("config")
			if path == "" {
				path = "drover.yaml"
			}
			cfg, err := config.Load(path)
			if err == nil {
				_, err = cfg.WorkerCredential() // user: and group: as the master checks them
			}
			if err != nil {
				n := problems(err)
				fmt.Fprintln(os.Stderr, err)
				s := "s"
				if n == 1 {
					s = ""
				}
				fmt.Fprintf(os.Stderr, "%s: the configuration is not valid (%d problem%s)\n", path, n, s)
				return reportedError{err}
			}
			printChecked(os.Stdout, cfg)
			fmt.Printf("%s: the configuration is valid\n", path)
			return nil
		},
	}
}

// problems counts the problems in a config error (one per line).
func problems(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return 1
	}
	return strings.Count(strings.TrimSpace(err.Error()), "\n") + 1
}

// printChecked says what drover check found in cfg, resolved: the
// processes it would start and the sockets and files it would use.
func printChecked(out io.Writer, cfg *config.Config) {
	handler := func(n int, h config.Handler) string {
		launch := h.Launch
		if launch == "" {
			launch = "auto"
		}
		args := append([]string{h.Path}, h.Cmd[1:]...)
		return fmt.Sprintf("%d × %s (dir %s, launch %s)", n, strings.Join(args, " "), h.Dir, launch)
	}
	fmt.Fprintf(out, "config:       %s\n", cfg.File)
	if p := cfg.Pool; p.Dynamic {
		fmt.Fprintf(out, "workers:      %d..%d (dynamic: one more after a wait of %s, one fewer after %s idle) × %s\n",
			p.Min, p.Max, p.QueueWait, p.IdleTimeout, strings.TrimPrefix(handler(0, cfg.Worker), "0 × "))
	} else {
		fmt.Fprintf(out, "workers:      %s\n", handler(cfg.WorkerNum, cfg.Worker))
	}
	if cfg.TaskWorkerNum > 0 {
		fmt.Fprintf(out, "task workers: %s\n", handler(cfg.TaskWorkerNum, cfg.TaskWorker))
	} else {
		fmt.Fprintf(out, "task workers: none\n")
	}
	for _, p := range cfg.Processes {
		fmt.Fprintf(out, "process:      %s: %s\n", p.Name, handler(1, p.Handler))
	}
	var lns []string
	for _, l := range cfg.Listeners {
		lns = append(lns, fmt.Sprintf("%s://%s (%s)", l.Network, l.Addr, l.Protocol))
	}
	fmt.Fprintf(out, "listeners:    %s\n", strings.Join(lns, ", "))
	if a := cfg.Admin; a.Address != "" {
		fmt.Fprintf(out, "admin:        %s://%s (/metrics, /health, /ready, /status)\n", a.Network, a.Addr)
	}
	if len(cfg.Watch) > 0 {
		fmt.Fprintf(out, "watch:        %s\n", strings.Join(cfg.Watch, ", "))
	}
	checkShared(out, cfg)
	pid := cfg.PidFile
	if pid == "" {
		pid = "(default: in the runtime directory)"
	}
	logTo := cfg.LogFile
	if logTo == "" {
		logTo = "stderr"
	}
	fmt.Fprintf(out, "pid file:     %s\nlog:          %s (%s, %s)\n", pid, logTo, cfg.LogFormat, cfg.LogLevel)
	if a := cfg.AccessLog; a.On() {
		to := a.Path
		if to == config.AccessLogStdout {
			to = "stdout"
		}
		fmt.Fprintf(out, "access log:   %s (%s)\n", to, a.Format)
	}
	if cfg.User != "" || cfg.Group != "" {
		fmt.Fprintf(out, "workers run as: user %q, group %q\n", cfg.User, cfg.Group)
	}
}
