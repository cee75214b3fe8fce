package worker_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/drover-dev/drover/worker"
)

// An HTTP handler that fans work out to the task workers and sums the
// results (examples/tasks runs it).
func ExampleTaskWaitMulti() {
	http.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		parts := [][]byte{[]byte("sales 2026-10"), []byte("sales 2026-11")}
		results, errs := worker.TaskWaitMulti(ctx, parts)
		for i := range parts {
			if errs[i] != nil {
				http.Error(w, errs[i].Error(), http.StatusBadGateway)
				return
			}
			fmt.Fprintf(w, "%s: %s\n", parts[i], results[i])
		}
	})
	worker.RunHTTP(http.DefaultServeMux)
}

// Fire-and-forget work with a completion callback.
func ExampleTask() {
	http.HandleFunc("POST /signup", func(w http.ResponseWriter, r *http.Request) {
		_, err := worker.Task([]byte("welcome-mail alice@example.com"), func(_ []byte, err error) {
			if err != nil {
				fmt.Println("welcome mail failed:", err)
			}
		})
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	worker.RunHTTP(http.DefaultServeMux)
}

// Workers tell each other to drop a cached entry.
func ExampleSendMessage() {
	cache := map[string]string{}
	http.HandleFunc("POST /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		// … update the user, then tell worker 0 and 1 (and ourselves).
		for id := 0; id < 2; id++ {
			worker.SendMessage(id, []byte("forget user:"+r.PathValue("id")))
		}
	})
	worker.RunHTTP(http.DefaultServeMux, worker.WithOnMessage(func(s *worker.Server, from int, data []byte) {
		delete(cache, string(data[len("forget "):])) // messages run one at a time, in order per sender
	}))
}
