package ipc

import (
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Hello is the payload of TypeHello, the first frame a worker writes. It is
// a msgpack map with these string keys; unknown keys are ignored.
type Hello struct {
	// Version is the frame protocol version the worker speaks (ProtocolVersion).
	Version int `msgpack:"version"`
	// PID is the worker's process id.
	PID int `msgpack:"pid"`
	// Concurrency is how many events the worker accepts in flight at once
	// (events sent and not yet answered with Done); at least 1.
	Concurrency int `msgpack:"concurrency"`
	// Role is "worker" or "task_worker".
	Role string `msgpack:"role"`
	// SDK names the library that wrote the hello ("go", "php", …) for status.
	SDK string `msgpack:"sdk,omitempty"`
	// Flow says the worker honours and grants TypeWindow credits for HTTP
	// bodies (FlowWindow). Without it the master forwards request bodies
	// at once and buffers response bodies up to buffer_output_size.
	Flow bool `msgpack:"flow,omitempty"`
	// Prefetch is how many events beyond Concurrency the master may send
	// ahead while every worker is busy, to wait in the worker's channel
	// (0 to MaxPrefetch). A sequential worker (PHP) declares 1: it finds
	// its next request waiting when it finishes one, instead of sleeping
	// until the master hears of the answer and sends the next.
	Prefetch int `msgpack:"prefetch,omitempty"`
	// Arenas says the worker mapped the body arenas the manager passed it
	// (arena.go): it reads a Request's `body_at` and may send FlagRef
	// answers. Without it the master sends and takes bodies in frames.
	Arenas bool `msgpack:"arenas,omitempty"`
	// CGI says the worker takes Requests in the CGI layout (cgi.go): a
	// map of $_SERVER's keys, which PHP decodes in one call. It reads the
	// default layout too (a request encoded before it said hello).
	CGI bool `msgpack:"cgi,omitempty"`
}

// MaxPrefetch bounds Hello.Prefetch.
const MaxPrefetch = 16

// ConnInfo is the payload of TypeConnect.
type ConnInfo struct {
	// Listener is the index of the listener in the config's listeners list.
	Listener int `msgpack:"listener"`
	// Remote is the peer address: "ip:port" for TCP, the socket path or ""
	// for Unix sockets.
	Remote string `msgpack:"remote"`
	// Local is the listening address the connection arrived on.
	Local string `msgpack:"local"`
}

// Roles of processes, as they appear in hellos, status and logs.
const (
	RoleMaster     = "master"
	RoleManager    = "manager"
	RoleWorker     = "worker"
	RoleTaskWorker = "task_worker"
	RoleProcess    = "process" // a user process (config processes:)
)

// WorkerEvent is the payload of the control messages about one worker
// incarnation (CtlWorkerStarted, CtlWorkerExited, CtlWorkerReady, CtlRetire).
type WorkerEvent struct {
	Role string `msgpack:"role"` // RoleWorker or RoleTaskWorker
	Slot int    `msgpack:"slot"` // worker id: 0..worker_num-1 or 0..task_worker_num-1
	Gen  uint64 `msgpack:"gen"`  // incarnation number, unique within a manager
	PID  int    `msgpack:"pid"`
	// Exit details, for CtlWorkerExited.
	ExitCode int      `msgpack:"exit_code"` // -1 when killed by a signal or never started
	Signal   string   `msgpack:"signal,omitempty"`
	Cause    string   `msgpack:"cause,omitempty"` // why it ended, as the manager knows it
	Stderr   []string `msgpack:"stderr,omitempty"`
	// Backoff is how long the manager waits before the slot's next start.
	BackoffMS int64  `msgpack:"backoff_ms,omitempty"`
	Launch    string `msgpack:"launch,omitempty"` // "exec" or "plugin", for CtlWorkerStarted
	StartMS   int64  `msgpack:"start_ms,omitempty"`
	RSS       uint64 `msgpack:"rss,omitempty"` // resident set in bytes, for CtlOverMemory
}

// Marshal encodes v as msgpack for a frame payload.
func Marshal(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("ipc: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes a msgpack frame payload into v.
func Unmarshal(b []byte, v any) error {
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: decode %T: %v", ErrBadFrame, v, err)
	}
	return nil
}

// Exit codes with a meaning for the manager.
const (
	// ExitBootFailure is the code a handler exits with when it cannot start
	// (bad configuration, missing dependency). The manager backs off instead
	// of respawning at once, and logs the handler's last stderr lines.
	ExitBootFailure = 78
)

// Environment variables set for every worker and task worker.
const (
	// EnvRole is "worker" or "task_worker" (and "manager" for the manager).
	EnvRole = "DROVER_ROLE"
	// EnvWorkerID is the worker's slot number, 0-based.
	EnvWorkerID = "DROVER_WORKER_ID"
	// EnvFD is the file descriptor of the worker's end of its socket pair ("3").
	EnvFD = "DROVER_FD"
	// EnvWorkerNum is the configured worker_num (task_worker_num for task
	// workers); worker_num.max for a dynamic pool.
	EnvWorkerNum = "DROVER_WORKER_NUM"
	// EnvLaunch is "exec" or "plugin": how the manager started the process.
	EnvLaunch = "DROVER_LAUNCH"
	// EnvPluginDir (manager only) names a directory the master makes and
	// removes, under which go-plugin puts plugin workers' sockets: killing
	// the manager then leaves nothing behind.
	EnvPluginDir = "DROVER_PLUGIN_DIR"
	// EnvWorkers and EnvTaskWorkers are worker_num (worker_num.max for a
	// dynamic pool) and task_worker_num: the worker ids to message are
	// 0..EnvWorkers-1, then the task workers.
	EnvWorkers     = "DROVER_WORKERS"
	EnvTaskWorkers = "DROVER_TASK_WORKERS"
	// EnvMaxMemory is the handler's max_memory in bytes, set only when it
	// is (the master replaces a worker whose RSS exceeds it; an SDK may
	// retire its worker earlier with TypeRetire).
	EnvMaxMemory = "DROVER_MAX_MEMORY"
)

// WorkerFD is the descriptor number of the socket pair in a worker.
const WorkerFD = 3

// Init is the payload of CtlInit, the manager's first message.
type Init struct {
	// Config is the resolved configuration as JSON (internal/config.Config).
	Config []byte `msgpack:"config"`
	// GenBase is added to the manager's incarnation numbers so they stay
	// unique across managers of one master.
	GenBase uint64 `msgpack:"gen_base"`
	// LogFormat and LogLevel configure the manager's logger like the master's.
	LogFormat string `msgpack:"log_format"`
	LogLevel  string `msgpack:"log_level"`
	// WorkerSlots and TaskSlots, when set, are the slots to supervise (the
	// pool's size changed since start: a manager started again takes over
	// the pool as it is); unset, 0..worker_num-1 and 0..task_worker_num-1.
	WorkerSlots []int `msgpack:"worker_slots,omitempty"`
	TaskSlots   []int `msgpack:"task_slots,omitempty"`
}

// RuntimeStats are a Go worker's runtime figures, as its go-plugin control
// service reports them (CtlStatsReply, keyed by incarnation).
type RuntimeStats struct {
	Goroutines int    `msgpack:"goroutines" json:"goroutines"`
	HeapAlloc  uint64 `msgpack:"heap_alloc" json:"heap_alloc"`
	HeapSys    uint64 `msgpack:"heap_sys" json:"heap_sys"`
	NumGC      uint32 `msgpack:"num_gc" json:"num_gc"`
}

// ShutdownForce is the Cause of a CtlShutdown (otherwise sent without a
// payload) that asks the manager to kill every child and its process group
// at once instead of giving them max_wait_time.
const ShutdownForce = "force"

// MaxHelloSize bounds the payload of a Hello frame. A hello is a handful of
// short keys (about 60 bytes from the SDKs); the master refuses a larger
// one, and reads no more than this many bytes from a worker before its
// hello, whatever package_max_length allows later.
const MaxHelloSize = 64 << 10

// DecodeHello decodes a Hello payload without reflection and with bounded
// work: the payload must be at most MaxHelloSize bytes, and an unknown key's
// value is skipped by MsgReader.Skip, which refuses values nested deeper
// than 32 levels (the msgpack library's generic decoder recurses without a
// limit, so a deeply nested hello could exhaust the master's stack). It
// accepts what msgpack.Unmarshal into a Hello accepts from a well-formed
// hello: any integer encoding, str or bin keys and strings, nil for a
// missing value, keys in any order; a value of the wrong type is an error.
// Errors wrap ErrBadFrame.
func DecodeHello(payload []byte) (Hello, error) {
	var h Hello
	if len(payload) > MaxHelloSize {
		return h, fmt.Errorf("%w: hello of %d bytes exceeds %d", ErrBadFrame, len(payload), MaxHelloSize)
	}
	d := NewMsgReader(payload)
	n, err := d.MapLen()
	if err != nil {
		return h, fmt.Errorf("%w: decode *ipc.Hello: want a msgpack map: %v", ErrBadFrame, err)
	}
	for i := 0; i < n; i++ {
		key, _, err := d.Bytes()
		if err != nil {
			return h, fmt.Errorf("%w: decode *ipc.Hello: key %d: %v", ErrBadFrame, i, err)
		}
		var v int64
		var s []byte
		switch string(key) {
		case "version":
			v, err = d.Int()
			h.Version = int(v)
		case "pid":
			v, err = d.Int()
			h.PID = int(v)
		case "concurrency":
			v, err = d.Int()
			h.Concurrency = clampInt(v)
		case "prefetch":
			v, err = d.Int()
			h.Prefetch = clampInt(v)
		case "role":
			s, _, err = d.Bytes()
			h.Role = string(s)
		case "sdk":
			s, _, err = d.Bytes()
			h.SDK = string(s)
		case "flow":
			h.Flow, err = d.Bool()
		case "arenas":
			h.Arenas, err = d.Bool()
		case "cgi":
			h.CGI, err = d.Bool()
		default:
			err = d.Skip()
		}
		if err != nil {
			return h, fmt.Errorf("%w: decode *ipc.Hello: value of %q: %v", ErrBadFrame, key, err)
		}
	}
	return h, nil
}

// clampInt converts v to an int without wrapping on 32-bit platforms, so a
// huge declared count stays huge (and is refused or capped) instead of
// turning small or negative.
func clampInt(v int64) int {
	if v > math.MaxInt32 {
		return math.MaxInt32
	}
	if v < math.MinInt32 {
		return math.MinInt32
	}
	return int(v)
}
