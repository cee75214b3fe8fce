package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// startTasks runs a worker and returns its Server for the task calls.
func startTasks(t *testing.T) (*fakeMaster, *Server) {
	t.Helper()
	got := make(chan *Server, 1)
	m := startWorker(t, Events{}, nil, WithConcurrency(4), func(o *options) { o.onServer = func(s *Server) { got <- s } })
	return m, <-got
}

// readTask reads the next task frame.
func (m *fakeMaster) readTask() (uint64, string) {
	m.t.Helper()
	f := m.read()
	if f.typ != ipc.TypeTask {
		m.t.Fatalf("got %v, want a task", f)
	}
	return f.id, f.payload
}

func TestTaskWait(t *testing.T) {
	m, s := startTasks(t)
	type answer struct {
		res []byte
		err error
	}
	ask := func(ctx context.Context, data string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			res, err := s.TaskWait(ctx, []byte(data))
			ch <- answer{res, err}
		}()
		return ch
	}
	// A result.
	a := ask(context.Background(), "square 3")
	id, data := m.readTask()
	if data != "square 3" {
		t.Fatalf("task %q", data)
	}
	m.sendFlags(ipc.TypeTaskResult, 0, id, []byte("9"))
	if got := <-a; got.err != nil || string(got.res) != "9" {
		t.Fatalf("TaskWait = %q, %v", got.res, got.err)
	}
	// An error.
	a = ask(context.Background(), "x")
	id, _ = m.readTask()
	m.sendFlags(ipc.TypeTaskResult, ipc.FlagAbort, id, []byte("task queue full"))
	var te *TaskError
	if got := <-a; !errors.As(got.err, &te) || te.Msg != "task queue full" {
		t.Fatalf("TaskWait error = %v, want a TaskError", got.err)
	}
	// The context ends first; the late result is dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	a = ask(ctx, "slow")
	late, _ := m.readTask()
	if got := <-a; !errors.Is(got.err, context.DeadlineExceeded) {
		t.Fatalf("TaskWait after its deadline = %v", got.err)
	}
	m.sendFlags(ipc.TypeTaskResult, 0, late, []byte("late"))
	a = ask(context.Background(), "next")
	id, _ = m.readTask()
	m.sendFlags(ipc.TypeTaskResult, 0, id, []byte("next result"))
	if got := <-a; got.err != nil || string(got.res) != "next result" {
		t.Fatalf("after a late result: %q, %v", got.res, got.err)
	}
	m.stop()
}

func TestTaskWaitMulti(t *testing.T) {
	m, s := startTasks(t)
	type answer struct {
		res  [][]byte
		errs []error
	}
	ch := make(chan answer, 1)
	go func() {
		res, errs := s.TaskWaitMulti(context.Background(), [][]byte{[]byte("0"), []byte("1"), []byte("2")})
		ch <- answer{res, errs}
	}()
	ids := map[string]uint64{}
	for range 3 {
		id, data := m.readTask()
		ids[data] = id
	}
	// Answered out of order; task 1 fails.
	m.sendFlags(ipc.TypeTaskResult, 0, ids["2"], []byte("two"))
	m.sendFlags(ipc.TypeTaskResult, ipc.FlagAbort, ids["1"], []byte("task worker 1 (pid 9) left"))
	m.sendFlags(ipc.TypeTaskResult, 0, ids["0"], []byte("zero"))
	got := <-ch
	if string(got.res[0]) != "zero" || got.errs[0] != nil || string(got.res[2]) != "two" || got.errs[2] != nil || got.errs[1] == nil {
		t.Fatalf("TaskWaitMulti = %q, %v", got.res, got.errs)
	}
	m.stop()
}
