// Command task is a drover task worker that returns every task unchanged.
//
//	task_worker_num: 2
//	task_worker:
//	  cmd: [bin/task]
package main

import (
	"context"

	"github.com/drover-dev/drover/taskworker"
)

func main() {
	taskworker.Run(taskworker.Handler{
		OnTask: func(ctx context.Context, task []byte) ([]byte, error) {
			// task is only valid during the call: return a copy.
			return append([]byte(nil), task...), nil
		},
	})
}
