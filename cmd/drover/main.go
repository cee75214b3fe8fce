// Command drover is the drover application server: the CLI, and — by
// re-execution with DROVER_ROLE=manager — the manager process.
package main

import (
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

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// Roles by re-execution: decided before anything else runs.
	if os.Getenv(ipc.EnvRole) == ipc.RoleManager {
		// The master alone decides when the manager stops (control channel),
		// or kills it; signals sent to the whole tree must not cut it short.
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		log := newLogger(os.Stderr, os.Getenv("DROVER_LOG_FORMAT"), os.Getenv("DROVER_LOG_LEVEL"))
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
			upgradeCommand(),
			statusCommand(),
			reopenLogsCommand(),
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
