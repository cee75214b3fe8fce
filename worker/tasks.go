package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/drover-dev/drover/ipc"
)

// Tasks hand work to the task worker pool (task_worker_num processes
// running a taskworker.Handler) and get its result back, as Swoole's
// task / taskwait / taskWaitMulti. The master queues tasks while every
// task worker is busy, up to task_queue_max; beyond that, and when the
// task worker running a task dies, the task fails with an error.

// ErrNoServer is returned by the package-level task functions outside a
// drover worker.
var ErrNoServer = errors.New("worker: no drover worker runs in this process (call Serve or ServeHTTP first)")

// TaskError is a task that failed: the task worker returned an error, or
// the master could not run it (queue full, no task workers, task worker
// died). Its text says which.
type TaskError struct{ Msg string }

func (e *TaskError) Error() string { return "task failed: " + e.Msg }

// taskResult is one answer of the master.
type taskResult struct {
	data []byte
	err  error
}

// taskTable holds the tasks a worker waits for, by its task id.
type taskTable struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]func(taskResult)
}

// current is the Server running in this process, for the package-level
// task functions (an HTTP handler has no Server at hand).
var current atomic.Pointer[Server]

func running() (*Server, error) {
	if s := current.Load(); s != nil {
		return s, nil
	}
	return nil, ErrNoServer
}

// send registers done for a new task and writes the task frame.
func (s *Server) send(data []byte, done func(taskResult)) (uint64, error) {
	t := &s.tasks
	t.mu.Lock()
	if t.waiting == nil {
		t.waiting = make(map[uint64]func(taskResult))
	}
	t.next++
	id := t.next
	t.waiting[id] = done
	t.mu.Unlock()
	if err := s.ch.w.WriteFrame(ipc.TypeTask, 0, id, data); err != nil {
		s.forget(id)
		return 0, fmt.Errorf("worker: send task: %w", err)
	}
	if err := s.ch.w.Flush(); err != nil { // out now, even in a held batch
		s.forget(id)
		return 0, fmt.Errorf("worker: send task: %w", err)
	}
	return id, nil
}

func (s *Server) forget(id uint64) {
	s.tasks.mu.Lock()
	delete(s.tasks.waiting, id)
	s.tasks.mu.Unlock()
}

// taskResultFrame delivers a TypeTaskResult; called by the reading
// goroutine. A result nobody waits for (given up on) is dropped.
func (s *Server) taskResultFrame(h ipc.Header, payload []byte) {
	s.tasks.mu.Lock()
	done := s.tasks.waiting[h.ID]
	delete(s.tasks.waiting, h.ID)
	s.tasks.mu.Unlock()
	if done == nil {
		return
	}
	r := taskResult{data: append([]byte(nil), payload...)}
	if h.Flags&ipc.FlagAbort != 0 {
		r = taskResult{err: &TaskError{Msg: string(payload)}}
	}
	done(r)
}

// Task sends data to a task worker and returns at once; onFinish, if not
// nil, runs on its own goroutine with the result or the error (Swoole's
// task with its onFinish callback). The error return is for a task that
// could not be sent (the master went away).
func (s *Server) Task(data []byte, onFinish func(result []byte, err error)) (uint64, error) {
	return s.send(data, func(r taskResult) {
		if onFinish != nil {
			go onFinish(r.data, r.err)
		}
	})
}

// TaskWait sends data to a task worker and waits for its result, until ctx
// ends (its error is then returned and the result, when it comes, is
// dropped).
func (s *Server) TaskWait(ctx context.Context, data []byte) ([]byte, error) {
	ch := make(chan taskResult, 1)
	id, err := s.send(data, func(r taskResult) { ch <- r })
	if err != nil {
		return nil, err
	}
	// The result comes in a frame: someone must be reading meanwhile.
	s.wakeReader()
	select {
	case r := <-ch:
		return r.data, r.err
	case <-ctx.Done():
		s.forget(id)
		return nil, fmt.Errorf("task abandoned: %w", ctx.Err())
	}
}

// TaskWaitMulti runs the tasks in parallel on the task workers and waits
// until all are done or ctx ends. results[i] and errs[i] answer datas[i];
// a task unfinished when ctx ended has ctx's error.
func (s *Server) TaskWaitMulti(ctx context.Context, datas [][]byte) (results [][]byte, errs []error) {
	results, errs = make([][]byte, len(datas)), make([]error, len(datas))
	type answer struct {
		i int
		r taskResult
	}
	ch := make(chan answer, len(datas))
	ids := make([]uint64, len(datas))
	pending := 0
	for i, d := range datas {
		id, err := s.send(d, func(r taskResult) { ch <- answer{i, r} })
		if err != nil {
			errs[i] = err
			continue
		}
		ids[i] = id
		pending++
	}
	s.wakeReader()
	done := make([]bool, len(datas))
	for pending > 0 {
		select {
		case a := <-ch:
			results[a.i], errs[a.i], done[a.i] = a.r.data, a.r.err, true
			pending--
		case <-ctx.Done():
			for i := range datas {
				if !done[i] && errs[i] == nil {
					s.forget(ids[i])
					errs[i] = fmt.Errorf("task abandoned: %w", ctx.Err())
				}
			}
			return results, errs
		}
	}
	return results, errs
}

// Task is Server.Task on the worker running in this process.
func Task(data []byte, onFinish func(result []byte, err error)) (uint64, error) {
	s, err := running()
	if err != nil {
		return 0, err
	}
	return s.Task(data, onFinish)
}

// TaskWait is Server.TaskWait on the worker running in this process.
func TaskWait(ctx context.Context, data []byte) ([]byte, error) {
	s, err := running()
	if err != nil {
		return nil, err
	}
	return s.TaskWait(ctx, data)
}

// TaskWaitMulti is Server.TaskWaitMulti on the worker running in this
// process.
func TaskWaitMulti(ctx context.Context, datas [][]byte) ([][]byte, []error) {
	s, err := running()
	if err != nil {
		errs := make([]error, len(datas))
		for i := range errs {
			errs[i] = err
		}
		return make([][]byte, len(datas)), errs
	}
	return s.TaskWaitMulti(ctx, datas)
}

// SendMessage sends data to the worker or task worker running as
// workerID (workers are 0..worker_num-1, task workers follow), whose
// OnMessage receives it with this worker's id (Swoole's sendMessage). It
// does not wait for the receiver; a message to an id with no worker
// running is dropped by the master, which logs it.
func (s *Server) SendMessage(workerID int, data []byte) error {
	if workerID < 0 {
		return fmt.Errorf("worker: send message: worker id %d is negative", workerID)
	}
	if err := s.ch.w.WriteFrame(ipc.TypeMessage, 0, uint64(workerID), data); err != nil {
		return fmt.Errorf("worker: send message to worker %d: %w", workerID, err)
	}
	return s.ch.w.Flush()
}

// SendMessage is Server.SendMessage on the worker running in this process.
func SendMessage(workerID int, data []byte) error {
	s, err := running()
	if err != nil {
		return err
	}
	return s.SendMessage(workerID, data)
}

// message runs OnMessage and recovers its panic.
func (s *Server) message(from int, data []byte) {
	if s.ev.OnMessage == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.opt.errorLog.Printf("worker %d: panic in OnMessage (from worker %d): %v\n%s", s.id, from, r, stack())
		}
	}()
	s.ev.OnMessage(s, from, data)
}

// Bind binds connection conn to uid for dispatch_mode 5 (Swoole's bind):
// from then on its events go to worker uid % worker_num, whichever
// connection the user comes back on. Before it, the connection stays with
// one worker as in mode 2.
func (s *Server) Bind(conn, uid uint64) error {
	if err := s.ch.w.WriteFrame(ipc.TypeBind, 0, conn, ipc.AppendBind(nil, uid)); err != nil {
		return fmt.Errorf("worker: bind conn %d to uid %d: %w", conn, uid, err)
	}
	return nil
}
