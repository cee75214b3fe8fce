package worker

import (
	"context"
	"fmt"
	"os"

	"github.com/drover-dev/drover/ipc"
)

// User processes (config processes:, Swoole's addProcess) run once per
// server beside the workers: a Kafka consumer, a cache refresher, a
// heartbeat reporter. The manager starts each, restarts it with back-off
// when it dies and leaves it alone on drover reload (unless its reload:
// is true). Its Server sends messages to workers (SendMessage, and
// receives theirs with WithOnMessage) and writes to or closes client
// connections (Send, Close). It receives no connection events.

// ServeProcess runs a user process: run gets a context that ends when drover
// stops the process (or the master goes away) and returns when its work is
// done; ServeProcess then returns run's error. Options apply as to Serve
// (WithOnMessage for messages from workers).
func ServeProcess(run func(ctx context.Context, s *Server) error, opts ...Option) error {
	o := newOptions(opts)
	o.concurrency = 1 // no events come to a user process
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := o.onStopFrame
	o.onStopFrame = func() {
		cancel()
		if stopped != nil {
			stopped()
		}
	}
	got := make(chan *Server, 1)
	o.onServer = func(s *Server) { got <- s }
	served := make(chan error, 1)
	go func() {
		err := serveRole(ipc.RoleProcess, Events{OnMessage: o.onMessage}, o)
		cancel() // stopped, or the master went away
		served <- err
	}()
	var s *Server
	select {
	case s = <-got:
	case err := <-served:
		return err // not started by drover, or no hello
	}
	runErr := run(ctx, s)
	cancel()
	if runErr != nil {
		return fmt.Errorf("user process %d: %w", s.id, runErr)
	}
	if ctx.Err() != nil {
		// Stopped (or the master went away): serve's verdict.
		return <-served
	}
	return nil
}

// RunProcess is the usual main of a user process: ServeProcess, then exit 0
// after a stop, 1 on an error (printed on stderr).
func RunProcess(run func(ctx context.Context, s *Server) error, opts ...Option) {
	err := ServeProcess(run, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(ipc.ExitCode(err))
}
