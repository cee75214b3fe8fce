package ipc

import (
	"encoding/binary"
	"fmt"
)

// Task frames (Swoole's task / finish). A worker hands work to the task
// worker pool and gets the result back; the master routes both ways.
const (
	// TypeTask carries a task's data (raw bytes). W→M: a worker asks, id =
	// its own task id (unique among its tasks in flight). M→T: the master
	// hands the task to a task worker, id = the master's task id.
	TypeTask Type = 9
	// TypeTaskResult carries a task's result (raw bytes), or with FlagAbort
	// its error (UTF-8 text). T→M: id = the master's task id; exactly one
	// per task. M→W: id = the asking worker's task id. The master also
	// answers with FlagAbort itself when the task could not run: the task
	// queue is full (task_queue_max), there are no task workers, or the
	// task worker died while running it.
	TypeTaskResult Type = 10
)

// TypeMessage carries a message between workers (Swoole's sendMessage,
// raw bytes). W→M: id = the receiver's worker id; M→W: id = the sender's.
// Worker ids are 0..worker_num-1 for workers, then worker_num..
// worker_num+task_worker_num-1 for task workers. The master drops (and
// logs) a message for an id with no worker running.
const TypeMessage Type = 11

// TypeBind (W→M, 8-byte big-endian uid) binds connection id to a user id
// for dispatch_mode 5: from then on the connection's events go to worker
// uid % worker_num (Swoole's bind). Before it, the connection is fixed to
// one worker as in mode 2.
const TypeBind Type = 12

// TypeRetire (W→M, raw UTF-8 reason, id 0) asks the master to replace the
// worker the graceful way, as max_request does: the master stops giving it
// new work at once, starts its successor, and sends it Stop once the
// successor is ready. A worker that watches its own memory (the PHP SDK
// against worker.max_memory) uses it to leave before it passes its limit.
// With FlagEnd it says the worker is exiting now (a fatal error): the
// master gives it no new work and no successor is started for it; the
// manager restarts its slot once it has gone, as after any crash. It comes
// before the worker's last answers, so nothing is sent to a dying worker
// after them.
const TypeRetire Type = 13

// AppendBind appends a TypeBind payload binding to uid.
func AppendBind(dst []byte, uid uint64) []byte { return binary.BigEndian.AppendUint64(dst, uid) }

// ParseBind decodes a TypeBind payload.
func ParseBind(p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("bind with a %d-byte payload (want an 8-byte uid)", len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}
