package taskworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/drover-dev/drover/internal/plugin"
	"github.com/drover-dev/drover/ipc"
)

// SDK is the name this package announces in its hello ("sdk" key).
const SDK = "go"

// Handler is a task worker's callbacks.
type Handler struct {
	// OnStart, optional, runs once before the hello; an error (or a panic)
	// ends the process with ipc.ExitBootFailure after it is printed on
	// stderr.
	OnStart func() error
	// OnTask, required, runs one task and returns its result, which goes
	// back to the worker that asked. task is valid only during the call.
	// ctx is cancelled when the task is abandoned (the master went away).
	// Not called yet: no task frame exists in protocol version 1.
	OnTask func(ctx context.Context, task []byte) ([]byte, error)
}

// Run is the usual main of a task worker: it calls Serve and exits with 0
// after a graceful stop, ipc.ExitBootFailure (78) when OnStart failed, and 1
// otherwise (run by hand, master gone), printing the error on stderr.
func Run(h Handler) {
	err := Serve(h)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(ipc.ExitCode(err))
}

// Serve runs the task worker until the master stops it and then returns nil.
// It returns an error wrapping ipc.ErrNotStarted when drover did not start
// the process, one wrapping ipc.ErrBootFailure when OnTask is nil or
// OnStart failed, and the read error, at once, when the master went away
// (io.EOF) or sent a malformed frame.
func Serve(h Handler) error {
	f, err := ipc.OpenWorkerEnd(ipc.RoleTaskWorker)
	if err != nil {
		return err
	}
	defer f.Close()
	// Started with launch: plugin, the go-plugin handshake comes first (a
	// stop request over it is answered by the stop frame that follows).
	if err := plugin.ServeIfLaunched(func() {}); err != nil {
		return fmt.Errorf("%w: plugin handshake: %v", ipc.ErrBootFailure, err)
	}
	return serve(ipc.NewReader(f, ipc.DefaultMaxPayload), ipc.NewWriter(f, ipc.WriterBacklog), ipc.WorkerID(), h)
}

// serve runs a task worker on a channel: OnStart, hello, then the frame loop.
func serve(r *ipc.Reader, w *ipc.Writer, id int, h Handler) error {
	if h.OnTask == nil {
		return fmt.Errorf("%w: task worker %d: Handler.OnTask is nil", ipc.ErrBootFailure, id)
	}
	if err := start(id, h.OnStart); err != nil {
		return err
	}
	// One task at a time, as Swoole's task workers; concurrency becomes an
	// option when tasks exist.
	if err := ipc.WriteHello(w, ipc.Hello{Role: ipc.RoleTaskWorker, SDK: SDK, Concurrency: 1}); err != nil {
		return fmt.Errorf("task worker %d: %w", id, err)
	}
	for {
		fh, _, err := r.ReadFrame()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("task worker %d: master closed the channel (fd %d), exiting: %w", id, ipc.WorkerFD, err)
		}
		if err != nil {
			return fmt.Errorf("task worker %d: read from master: %w", id, err)
		}
		switch fh.Type {
		case ipc.TypeStop:
			// Tasks run on this goroutine, so none is in flight here.
			if err := w.Close(); err != nil && !errors.Is(err, ipc.ErrWriterClosed) {
				return fmt.Errorf("task worker %d: flush before exit: %w", id, err)
			}
			return nil
		}
		// TODO(tasks): when the protocol gains task frames, run OnTask for
		// each here with a context cancelled on EOF, send its result or
		// error to the asking worker, and answer with Done.
		//
		// Other types are newer than this SDK (or meant for workers):
		// ignored, without Done.
	}
}

// start runs OnStart; a failure or panic is a boot failure.
func start(id int, onStart func() error) (err error) {
	if onStart == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 64<<10)
			err = fmt.Errorf("%w: task worker %d: OnStart panicked: %v\n%s", ipc.ErrBootFailure, id, r, buf[:runtime.Stack(buf, false)])
		}
	}()
	if err := onStart(); err != nil {
		return fmt.Errorf("%w: task worker %d: OnStart: %w", ipc.ErrBootFailure, id, err)
	}
	return nil
}
