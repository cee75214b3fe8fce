package taskworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"

	"github.com/drover-dev/drover/internal/pluginhook"
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
	// ctx is not cancelled while the task runs (tasks run on the goroutine
	// that reads the channel, so nothing notices the master going away
	// meanwhile); bound long tasks yourself, and see task_timeout.
	OnTask func(ctx context.Context, task []byte) ([]byte, error)
	// OnMessage, optional, gets a message a worker sent with SendMessage
	// (from is its worker id), between tasks. data is valid only during
	// the call.
	OnMessage func(from int, data []byte)
}

// out is the channel's writer of the task worker running in this process,
// for SendMessage.
var out atomic.Pointer[ipc.Writer]

// SendMessage sends data to the worker (or task worker) running as
// workerID: workers are 0..worker_num-1, task workers follow. It fails
// outside a running task worker.
func SendMessage(workerID int, data []byte) error {
	w := out.Load()
	if w == nil {
		return errors.New("taskworker: no task worker runs in this process (call Serve first)")
	}
	if err := w.WriteFrame(ipc.TypeMessage, 0, uint64(workerID), data); err != nil {
		return fmt.Errorf("taskworker: send message to worker %d: %w", workerID, err)
	}
	return nil
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
	// Started with launch: plugin, the go-plugin handshake comes first
	// (served by worker/plugin when the handler imports it; a
	// stop request over it is answered by the stop frame that follows).
	if err := pluginhook.ServeIfLaunched(func() {}); err != nil {
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
	// One task at a time, as Swoole's task workers; ctx ends when Serve
	// returns.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ipc.WriteHello(w, ipc.Hello{Role: ipc.RoleTaskWorker, SDK: SDK, Concurrency: 1}); err != nil {
		return fmt.Errorf("task worker %d: %w", id, err)
	}
	out.Store(w)
	defer out.CompareAndSwap(w, nil)
	for {
		fh, payload, err := r.ReadFrame()
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
		case ipc.TypeMessage:
			if h.OnMessage != nil {
				onMessage(id, h.OnMessage, int(fh.ID), payload)
			}
		case ipc.TypeTask:
			// One task at a time, on this goroutine (concurrency 1).
			result, terr := runTask(ctx, id, h.OnTask, payload)
			var werr error
			if terr != nil {
				werr = w.WriteFrame(ipc.TypeTaskResult, ipc.FlagAbort, fh.ID, []byte(terr.Error()))
			} else {
				werr = w.WriteFrame(ipc.TypeTaskResult, 0, fh.ID, result)
			}
			if werr != nil {
				return fmt.Errorf("task worker %d: send a task result: %w", id, werr)
			}
		}
		// Other types are newer than this SDK (or meant for workers): ignored.
	}
}

// runTask runs OnTask for one task and recovers its panic as the task's
// error.
func runTask(ctx context.Context, id int, onTask func(context.Context, []byte) ([]byte, error), task []byte) (result []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 64<<10)
			fmt.Fprintf(os.Stderr, "task worker %d: OnTask panicked: %v\n%s\n", id, r, buf[:runtime.Stack(buf, false)])
			result, err = nil, fmt.Errorf("the task panicked: %v", r)
		}
	}()
	return onTask(ctx, task)
}

// onMessage runs OnMessage and recovers its panic.
func onMessage(id int, fn func(int, []byte), from int, data []byte) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 64<<10)
			fmt.Fprintf(os.Stderr, "task worker %d: OnMessage panicked (message from worker %d): %v\n%s\n", id, from, r, buf[:runtime.Stack(buf, false)])
		}
	}()
	fn(from, data)
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
