// Command drover is the drover application server: the CLI, and — by
// re-execution with DROVER_ROLE=manager — the manager process.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/manager"
)

// managerSignals are the signals the manager catches and drops (see main).
var managerSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// Roles by re-execution: decided before anything else runs.
	if os.Getenv(ipc.EnvRole) == ipc.RoleManager {
		// The master alone decides when the manager stops (control channel),
		// or kills it; signals sent to the whole tree must not cut it short.
		// They are caught and dropped, not ignored: an ignored disposition
		// survives exec, so every worker and whatever it runs would start
		// with them ignored; a caught one is reset to the default by exec.
		// SIGPIPE is caught too: a write to a closed stderr then fails with
		// EPIPE instead of killing the manager (and with it every worker),
		// and workers get SIGPIPE's default even when drover was started
		// with it ignored.
		log := newLogger(os.Stderr, os.Getenv("DROVER_LOG_FORMAT"), os.Getenv("DROVER_LOG_LEVEL"))
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, managerSignals...)
		go func() {
			for s := range sigs {
				log.WithFields(logrus.Fields{"role": ipc.RoleManager, "pid": os.Getpid(), "signal": s.String()}).
					Debug("signal to the manager ignored: the master decides when it stops")
			}
		}()
		if err := manager.Run(os.NewFile(manager.ControlFD, "control"), logrus.NewEntry(log)); err != nil {
			log.WithError(err).Error("manager failed")
			os.Exit(1)
		}
		return
	}
	app := &cli.App{
		Name:    "drover",
		Usage:   "a multi-process application server (Swoole's process model for any language)",
		Version: version,
		Commands: []*cli.Command{
			startCommand(),
			stopCommand(),
			reloadCommand(),
			scaleCommand(),
			upgradeCommand(),
			statusCommand(),
			reopenLogsCommand(),
			checkCommand(),
			{
				Name:  "version",
				Usage: "print drover's version",
				Action: func(c *cli.Context) error {
					fmt.Printf("drover %s (frame protocol %d)\n", version, ipc.ProtocolVersion)
					return nil
				},
			},
		},
		ExitErrHandler: func(c *cli.Context, err error) {
			if errors.As(err, new(reportedError)) {
				os.Exit(1) // already printed once
			}
			if je := (jsonError{}); errors.As(err, &je) {
				printJSON(os.Stderr, je.error) // log_format: json
				os.Exit(1)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "drover:", err)
				os.Exit(1)
			}
		},
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(1)
	}
}

// newLogger builds the process's logger: text (default) or JSON.
func newLogger(out io.Writer, format, level string) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(out)
	if format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: "2006-01-02T15:04:05.000Z07:00"})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02T15:04:05.000Z07:00"})
	}
	if lv, err := logrus.ParseLevel(level); err == nil {
		log.SetLevel(lv)
	}
	return log
}
