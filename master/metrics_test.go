package master

import (
	"testing"

	"github.com/drover-dev/drover/ipc"
)

// The reason of drover_worker_restarts_total, from exit events as the
// manager reports them (the causes are the ones the master and the
// manager give: lifecycle.go, plane, manager/child.go).
func TestRestartReason(t *testing.T) {
	tests := []struct {
		ev   ipc.WorkerEvent
		want string
	}{
		{ipc.WorkerEvent{Cause: "replaced: reload", ExitCode: 0}, "reload"},
		{ipc.WorkerEvent{Cause: "replaced: max_request reached (1000 served)", ExitCode: 0}, "max_request"},
		{ipc.WorkerEvent{Cause: "replaced: task_max_request reached (10 served)", ExitCode: 0}, "max_request"},
		{ipc.WorkerEvent{Cause: "replaced: max_memory exceeded (RSS 300.0MiB > 256.0MiB)", ExitCode: 0}, "max_memory"},
		{ipc.WorkerEvent{Cause: "replaced: task_worker.max_memory exceeded (RSS 3.0MiB > 1.0MiB)", ExitCode: 0}, "max_memory"},
		{ipc.WorkerEvent{Cause: "replaced: the worker asked to be replaced: leak", ExitCode: 0}, "asked"},
		{ipc.WorkerEvent{Cause: "replaced: retired", ExitCode: 0}, "replaced"},
		{ipc.WorkerEvent{Cause: "replaced: ttl (1h0m0s) reached", ExitCode: 0}, "ttl"},
		{ipc.WorkerEvent{Cause: "replaced: idle_ttl (10m0s) reached: idle for 10m0.3s", ExitCode: 0}, "ttl"},
		{ipc.WorkerEvent{Cause: "retired: the pool shrank", ExitCode: 0}, "scaled"},
		{ipc.WorkerEvent{Cause: "request_timeout (5s) exceeded by GET /hang", ExitCode: -1, Signal: "SIGKILL"}, "request_timeout"},
		{ipc.WorkerEvent{Cause: "task_timeout (1s) exceeded by a task", ExitCode: -1, Signal: "SIGKILL"}, "request_timeout"},
		{ipc.WorkerEvent{Cause: "worker_send_timeout (1m0s) exceeded: …", ExitCode: -1, Signal: "SIGKILL"}, "send_timeout"},
		{ipc.WorkerEvent{Cause: "no hello within start_timeout (10s)", ExitCode: -1, Signal: "SIGKILL"}, "start_timeout"},
		{ipc.WorkerEvent{Cause: "malformed frame: bad magic", ExitCode: -1, Signal: "SIGKILL"}, "protocol"},
		{ipc.WorkerEvent{ExitCode: ipc.ExitBootFailure}, "boot_failure"},
		{ipc.WorkerEvent{Cause: "fork/exec /srv/app: no such file or directory", ExitCode: -1}, "boot_failure"},
		{ipc.WorkerEvent{ExitCode: -1, Signal: "SIGKILL"}, "crashed"},
		{ipc.WorkerEvent{ExitCode: 2}, "crashed"},
		{ipc.WorkerEvent{ExitCode: 0}, "exited"},
	}
	for _, tt := range tests {
		if got := restartReason(tt.ev); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.ev, got, tt.want)
		}
	}
}
