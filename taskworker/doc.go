// Package taskworker is the Go SDK for drover task-worker processes, the
// counterpart of Swoole's task workers: task_worker_num copies of the
// handler program (task_worker.cmd) that run jobs workers hand off with
// task or taskwait, so that slow work (mail, reports, calls to slow
// services) does not hold a worker's connections.
//
// A task worker is started like a worker — by the manager, with its socket
// pair to the master as fd 3 — and follows the same life: Run checks that
// drover started it (otherwise it says how to start the program and exits
// 1), calls OnStart (an error ends the process with code 78 so the manager
// backs off), says hello with role "task_worker", exits 0 after the
// master's stop frame and 1 at once when the master goes away. The channel
// is fd 3, not stdout: printing is harmless.
//
// Task routing arrives with a later protocol version: there is no task
// frame type yet, so OnTask is not called for now. When it is, each task's
// payload is passed to OnTask and its result (or error) goes back to the
// worker that asked, through the master. Until then a task worker only
// starts, says hello, and stops cleanly — enough for the manager and the
// end-to-end tests.
package taskworker
