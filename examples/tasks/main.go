// Command tasks is a drover worker and task worker in one binary (drover
// starts it in either role): an HTTP handler that hands work to the task
// workers.
//
//	GET /fanout?n=K[&delay=50ms]  K tasks in parallel (TaskWaitMulti); task i
//	                              returns i*i after delay; answers the sum
//	GET /async                    queues a task and answers at once
//	GET /counter                  the count a user process pushes to every worker
//
// See examples/tasks.yaml; run it with
//
//	make build && bin/drover start -c examples/tasks.yaml
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/taskworker"
	"github.com/drover-dev/drover/worker"
)

func main() {
	switch os.Getenv(ipc.EnvRole) {
	case ipc.RoleTaskWorker:
		taskworker.Run(taskworker.Handler{OnTask: square})
	case ipc.RoleProcess:
		worker.RunProcess(pushCounter)
	}
	var counter atomic.Value // the last "counter N" pushed by the user process
	counter.Store("no counter yet")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /counter", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, counter.Load())
	})
	mux.HandleFunc("GET /fanout", fanout)
	mux.HandleFunc("GET /async", func(w http.ResponseWriter, r *http.Request) {
		id, err := worker.Task([]byte("square 7 10ms"), func(result []byte, err error) {
			if err != nil {
				log.Printf("async task: %v", err)
			}
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "task %d queued\n", id)
	})
	worker.RunHTTP(mux, worker.WithOnMessage(func(s *worker.Server, from int, data []byte) {
		counter.Store(string(data))
	}))
}

// pushCounter is the user process: once per server (not per worker), it
// counts and pushes the count to every worker, every COUNTER_EVERY
// (default 1s).
func pushCounter(ctx context.Context, s *worker.Server) error {
	every, err := time.ParseDuration(os.Getenv("COUNTER_EVERY"))
	if err != nil {
		every = time.Second
	}
	workers, _ := strconv.Atoi(os.Getenv(ipc.EnvWorkers))
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil // drover stops us
		case <-t.C:
		}
		for id := 0; id < workers; id++ {
			if err := s.SendMessage(id, fmt.Appendf(nil, "counter %d from pid %d", n, os.Getpid())); err != nil {
				return err
			}
		}
	}
}

// fanout sends n tasks at once and answers the sum of their results.
func fanout(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 1 || n > 10000 {
		http.Error(w, "n must be a number from 1 to 10000", http.StatusBadRequest)
		return
	}
	delay := r.URL.Query().Get("delay")
	if delay == "" {
		delay = "50ms"
	}
	tasks := make([][]byte, n)
	for i := range tasks {
		tasks[i] = fmt.Appendf(nil, "square %d %s", i+1, delay)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	results, errs := worker.TaskWaitMulti(ctx, tasks)
	sum, failed := 0, 0
	for i := range results {
		if errs[i] != nil {
			failed++
			continue
		}
		v, _ := strconv.Atoi(string(results[i]))
		sum += v
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if failed > 0 {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "%d of %d tasks failed (first: %v)\n", failed, n, firstErr(errs))
		return
	}
	fmt.Fprintf(w, "%d\n", sum)
	log.Printf("fanout n=%d delay=%s took %s", n, delay, time.Since(start).Round(time.Millisecond))
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// square runs a task "square <i> <delay>": it waits delay and returns i*i.
func square(ctx context.Context, task []byte) ([]byte, error) {
	f := strings.Fields(string(task))
	if len(f) != 3 || f[0] != "square" {
		return nil, fmt.Errorf("unknown task %q", task)
	}
	i, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, fmt.Errorf("task %q: %v", task, err)
	}
	d, err := time.ParseDuration(f[2])
	if err != nil {
		return nil, fmt.Errorf("task %q: %v", task, err)
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return strconv.AppendInt(nil, int64(i*i), 10), nil
}
