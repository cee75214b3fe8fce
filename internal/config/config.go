package config

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the resolved content of drover.yaml. After [Load] or [Parse]
// succeeds, defaults are applied, every path is absolute and the resolved
// fields (Handler.Path, Listener.Network, Listener.Addr) are set.
//
// Field comments give the YAML key, the default and the accepted range;
// docs/configuration.md is the user-facing version of the same list.
type Config struct {
	// File is the absolute path of the config file, set by Load and Parse.
	// Validate resolves relative paths against its directory.
	File string `yaml:"-" json:"file"`

	// WorkerNum is the number of worker processes at start: worker_num, or
	// worker_num.min for a dynamic pool. Default runtime.NumCPU(); 1..1024.
	WorkerNum int `yaml:"-" json:"worker_num"`
	// Pool is worker_num as written: a number (fixed) or a dynamic pool's
	// {min, max, idle_timeout, queue_wait} (pool.go).
	Pool Pool `yaml:"worker_num" json:"pool"`
	// TaskWorkerNum is the number of task-worker processes. Default 0 (no
	// task workers); 0..1024. When > 0, TaskWorker.Cmd is required.
	TaskWorkerNum int `yaml:"task_worker_num" json:"task_worker_num"`
	// ReactorNum is the number of epoll reactor loops in the master.
	// Default 1; 1..64.
	ReactorNum int `yaml:"reactor_num" json:"reactor_num"`
	// MaxRequest is the number of requests after which a worker is replaced.
	// 0 (default) never recycles.
	MaxRequest int `yaml:"max_request" json:"max_request"`
	// MaxRequestGrace spreads recycling: each worker is replaced after
	// MaxRequest plus a random 0..MaxRequestGrace requests. Default
	// MaxRequest/2, computed when the key is absent from the file; >= 0.
	MaxRequestGrace int `yaml:"max_request_grace" json:"max_request_grace"`
	// TaskMaxRequest is MaxRequest for task workers. 0 (default) never
	// recycles.
	TaskMaxRequest int `yaml:"task_max_request" json:"task_max_request"`
	// DispatchMode chooses the worker for an event (Swoole numbering):
	// 0 = the protocol's default, 1 round-robin, 2 fixed by connection,
	// 3 idle worker first, 4 by client IP, 5 by bound uid.
	DispatchMode int `yaml:"dispatch_mode" json:"dispatch_mode"`
	// DispatchQueueMax is the number of events queued per worker while it
	// is at its concurrency; beyond it the master answers 503 or closes.
	// Default 1024; >= 1.
	DispatchQueueMax int `yaml:"dispatch_queue_max" json:"dispatch_queue_max"`
	// TaskQueueMax bounds the tasks waiting for a free task worker; a task
	// beyond it fails at once. Default 1024.
	TaskQueueMax int `yaml:"task_queue_max" json:"task_queue_max"`
	// TaskTimeout bounds how long a task may run at a task worker: past it
	// the caller gets an error and the task worker is replaced. 0 (default)
	// is no limit.
	TaskTimeout Duration `yaml:"task_timeout" json:"task_timeout"`
	// MaxWaitTime bounds how long a stopping worker may finish in-flight
	// requests. Default 3s.
	MaxWaitTime Duration `yaml:"max_wait_time" json:"max_wait_time"`
	// ReloadBatch is how many workers a rolling reload replaces at once;
	// default 1.
	ReloadBatch int `yaml:"reload_batch" json:"reload_batch"`
	// PackageMaxLength is the largest request packet accepted; a longer one
	// closes its connection. Default 2 MiB; >= 64.
	PackageMaxLength Size `yaml:"package_max_length" json:"package_max_length"`
	// BufferOutputSize bounds each connection's output buffer. Default
	// 2 MiB; >= 64.
	BufferOutputSize Size `yaml:"buffer_output_size" json:"buffer_output_size"`
	// HeartbeatIdleTime closes connections that neither sent nor received
	// a byte for longer. Default 10m (nginx stream's proxy_timeout); 0 is
	// off.
	HeartbeatIdleTime Duration `yaml:"heartbeat_idle_time" json:"heartbeat_idle_time"`
	// MaxConn is the maximum number of concurrent connections. Default
	// 10000; >= 1.
	MaxConn int `yaml:"max_conn" json:"max_conn"`
	// DispatchTimeout bounds how long an HTTP request waits for a worker
	// with a free slot; past it the client gets 503 with Retry-After.
	// Default 5s; > 0.
	DispatchTimeout Duration `yaml:"dispatch_timeout" json:"dispatch_timeout"`
	// HTTPMaxHeaderSize bounds an HTTP request's line and headers (431
	// beyond). Default 16 KiB; >= 1 KiB.
	HTTPMaxHeaderSize Size `yaml:"http_max_header_size" json:"http_max_header_size"`
	// HTTPHeaderTimeout bounds the time from a request's first byte to the
	// end of its headers (slowloris); the connection is closed past it.
	// Default 10s; > 0.
	HTTPHeaderTimeout Duration `yaml:"http_header_timeout" json:"http_header_timeout"`
	// HTTPIdleTimeout closes a keep-alive connection idle between requests
	// for longer. Default 60s; > 0.
	HTTPIdleTimeout Duration `yaml:"http_idle_timeout" json:"http_idle_timeout"`
	// HTTPBodyTimeout bounds the time from the end of a request's head to
	// the end of its body, however steadily it trickles (408 beyond).
	// Default 60s; > 0.
	HTTPBodyTimeout Duration `yaml:"http_body_timeout" json:"http_body_timeout"`
	// HTTPBodyBufferSize is how much of a request body the master holds
	// before it dispatches the request to a pool whose workers take
	// concurrent requests; the rest is forwarded as it arrives. Workers of
	// concurrency 1 get a request only with its whole body. Default 1 MiB;
	// >= 64 KiB.
	HTTPBodyBufferSize Size `yaml:"http_body_buffer_size" json:"http_body_buffer_size"`
	// HTTPSendTimeout and HTTPSendMinRate bound a client that does not
	// read its answer: while the master holds output for it, it must take
	// at least HTTPSendTimeout×HTTPSendMinRate bytes (and at least one) in
	// each HTTPSendTimeout, or the connection is closed and the handler
	// cancelled. Defaults 60s (> 0) and 512 bytes/s (0: any progress).
	HTTPSendTimeout Duration `yaml:"http_send_timeout" json:"http_send_timeout"`
	HTTPSendMinRate Size     `yaml:"http_send_min_rate" json:"http_send_min_rate"`
	// HTTPMaxBuffered bounds the request bodies and answers the master
	// holds for all HTTP connections together: past it new body bytes are
	// refused with 503 and handlers' answers are held back by flow
	// control. Default 256 MiB; >= 1 MiB.
	HTTPMaxBuffered Size `yaml:"http_max_buffered" json:"http_max_buffered"`
	// UpgradeTimeout bounds how long a new master may take to become ready
	// during a binary upgrade. Default 60s; > 0.
	UpgradeTimeout Duration `yaml:"upgrade_timeout" json:"upgrade_timeout"`
	// PidFile is the master's pid file; empty (default) means one in the
	// runtime directory, named after the config file. Its directory must
	// exist.
	PidFile string `yaml:"pid_file" json:"pid_file"`
	// LogFile receives the logs; empty (default) logs to stderr. Its
	// directory must exist.
	LogFile string `yaml:"log_file" json:"log_file"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `yaml:"log_level" json:"log_level"`
	// LogFormat is text (default) or json.
	LogFormat string `yaml:"log_format" json:"log_format"`
	// AccessLog writes a line per HTTP request and per stream connection
	// closed; off by default (accesslog.go).
	AccessLog AccessLog `yaml:"access_log" json:"access_log"`
	// Daemonize detaches the master from the terminal.
	Daemonize bool `yaml:"daemonize" json:"daemonize"`
	// User is the user workers run as; it must exist when set.
	User string `yaml:"user" json:"user"`
	// Group is the group workers run as; it must exist when set.
	Group string `yaml:"group" json:"group"`
	// Worker is the worker handler. Required.
	Worker Handler `yaml:"worker" json:"worker"`
	// TaskWorker is the task-worker handler, required when TaskWorkerNum > 0
	// and otherwise ignored.
	TaskWorker Handler `yaml:"task_worker" json:"task_worker"`
	// Watch lists files and directories whose changes reload the workers.
	// Each must exist.
	Watch []string `yaml:"watch" json:"watch"`
	// Listeners are the sockets the master accepts on. At least one.
	Listeners []Listener `yaml:"listeners" json:"listeners"`
	// Admin is the admin listener (/metrics, /health, /ready, /status);
	// off by default.
	Admin Admin `yaml:"admin" json:"admin"`
	// Processes are user processes (Swoole's addProcess): commands the
	// manager keeps running once per server, beside the workers.
	Processes []Process `yaml:"processes" json:"processes"`
	// Tables are shared-memory tables by name (Swoole\Table), mapped by
	// every worker, task worker and user process; see Table and
	// docs/tables.md.
	Tables map[string]Table `yaml:"tables" json:"tables"`
	// Atomics are shared counters by name (Swoole\Atomic).
	Atomics []string `yaml:"atomics" json:"atomics"`
	// MaxConcurrency caps the concurrency a worker declares in its hello
	// (events in flight at it at once); a larger one is lowered to it with
	// a log line. Default 16384; 1..1048576.
	MaxConcurrency int `yaml:"max_concurrency" json:"max_concurrency"`
	// WorkerBufferSize bounds the bytes the master holds for one worker:
	// frames written and not yet read by it plus events queued for it. An
	// event beyond it closes its connection (stream), an HTTP request waits
	// for another worker (then 503), a message to it is dropped; each with a
	// log line. Default 32 MiB; >= 64 KiB.
	WorkerBufferSize Size `yaml:"worker_buffer_size" json:"worker_buffer_size"`
	// WorkerSendTimeout replaces a worker whose buffer is full (see
	// WorkerBufferSize) and whose socket pair has taken nothing for this
	// long: it is stuck, or does not read at all. Default 60s (nginx's
	// proxy_send_timeout); 0 is off.
	WorkerSendTimeout Duration `yaml:"worker_send_timeout" json:"worker_send_timeout"`
}

// Process is one user process.
type Process struct {
	// Name identifies it in logs and drover status; unique, required.
	Name string `yaml:"name" json:"name"`
	// Cmd, Launch, Dir and Env are as a handler's.
	Cmd    []string          `yaml:"cmd" json:"cmd" split:"fields"`
	Launch string            `yaml:"launch" json:"launch"`
	Dir    string            `yaml:"dir" json:"dir"`
	Env    map[string]string `yaml:"env" json:"env"`
	// Reload, when true, replaces it on drover reload like a worker; by
	// default a reload leaves it running.
	Reload bool `yaml:"reload" json:"reload"`
	// ClearEnv is as a handler's clear_env. Default true.
	ClearEnv bool `yaml:"clear_env" json:"clear_env"`
	// Handler is the above, resolved by validation.
	Handler Handler `yaml:"-" json:"handler"`
}

// Handler describes the executable that a worker or task worker runs.
type Handler struct {
	// Cmd is the argv of the handler. In YAML a list (preferred) or a string
	// split on spaces. Required.
	Cmd []string `yaml:"cmd" json:"cmd" split:"fields"`
	// Launch is auto (default), plugin (hashicorp/go-plugin handshake, for
	// Go handlers) or exec (any executable speaking the frame protocol).
	Launch string `yaml:"launch" json:"launch"`
	// Dir is the handler's working directory; default the config file's
	// directory. Must exist.
	Dir string `yaml:"dir" json:"dir"`
	// Env is added to the handler's environment. A value of the form
	// $NAME takes the master's variable NAME (empty if unset), as php-fpm's
	// env[NAME] = $NAME; $$ starts a literal $.
	Env map[string]string `yaml:"env" json:"env"`
	// ClearEnv, true by default (php-fpm's clear_env), starts the handler
	// with a minimal environment — PATH, the locale (LANG, LANGUAGE,
	// LC_*), TZ, GORACE, and HOME, USER and LOGNAME of the user it runs
	// as — plus Env and drover's own variables, instead of the master's
	// whole environment. false passes the master's environment on.
	ClearEnv bool `yaml:"clear_env" json:"clear_env"`
	// Checksum is the optional hex sha256 of the executable, checked at
	// launch.
	Checksum string `yaml:"checksum" json:"checksum"`
	// MaxMemory replaces a handler whose RSS exceeds it. 0 (default) is off.
	MaxMemory Size `yaml:"max_memory" json:"max_memory"`
	// RequestTimeout replaces a handler that takes longer to answer a
	// request. 0 (default) is off.
	RequestTimeout Duration `yaml:"request_timeout" json:"request_timeout"`
	// SlowRequestLog logs (once) a request or stream event that has been
	// at its worker longer, without stopping it; worker only. 0 (default)
	// is off.
	SlowRequestLog Duration `yaml:"slow_request_log" json:"slow_request_log"`
	// StartTimeout bounds the time from spawn to the handler's hello.
	// Default 10s; > 0.
	StartTimeout Duration `yaml:"start_timeout" json:"start_timeout"`
	// TTL replaces a worker, the graceful way, once it has run this long;
	// IdleTTL once it has served nothing for this long (RoadRunner's
	// supervisor ttl and idle_ttl). 0 (default) is off; else at least 1s.
	TTL     Duration `yaml:"ttl" json:"ttl"`
	IdleTTL Duration `yaml:"idle_ttl" json:"idle_ttl"`

	// Path is the absolute path of Cmd[0], resolved by validation: against
	// Dir when Cmd[0] contains a slash, through $PATH otherwise.
	Path string `yaml:"-" json:"path"`
}

// Listener is one listening socket and the protocol spoken on it.
type Listener struct {
	// Address is tcp://host:port, unix:///abs/path (or unix://rel/path,
	// against the config directory) or udp://host:port.
	Address string `yaml:"address" json:"address"`
	// Protocol is http, length, eof or raw. Required.
	Protocol string `yaml:"protocol" json:"protocol"`
	// PackageLengthType is the Swoole/PHP pack code of the length field of
	// protocol length: c C (1 byte), s S n v (2 bytes), N V l L (4 bytes).
	// Default "N" (unsigned 32-bit big-endian) for protocol length.
	PackageLengthType string `yaml:"package_length_type" json:"package_length_type"`
	// PackageLengthOffset is the byte offset of the length field. Default 0.
	PackageLengthOffset int `yaml:"package_length_offset" json:"package_length_offset"`
	// PackageBodyOffset is added to the length field's value to get the
	// packet size (Swoole semantics): 0 when the length counts the whole
	// packet, the header size when it counts the body only. Default 0.
	PackageBodyOffset int `yaml:"package_body_offset" json:"package_body_offset"`
	// PackageMaxLength overrides the top-level package_max_length for this
	// listener; 0 in the file inherits it (the resolved value is filled in).
	PackageMaxLength Size `yaml:"package_max_length" json:"package_max_length"`
	// PackageEOF ends each packet of protocol eof; 1..8 bytes.
	PackageEOF string `yaml:"package_eof" json:"package_eof"`
	// Mode is the permission of a unix:// listener's socket file, octal
	// (php-fpm's listen.mode). Default "0660": the owner and the group
	// may connect. Only for unix listeners.
	Mode string `yaml:"mode" json:"mode"`
	// Owner and Group name the user and group (names or ids) that the
	// socket file of a unix:// listener is given (php-fpm's listen.owner
	// and listen.group), e.g. group: www-data for nginx. Default: the
	// user and group drover runs as (no change). Only for unix listeners.
	Owner string `yaml:"owner" json:"owner"`
	Group string `yaml:"group" json:"group"`

	// Network is "tcp", "unix" or "udp", set by validation.
	Network string `yaml:"-" json:"network"`
	// Addr is the address to bind, set by validation: "host:port" for tcp
	// and udp, the absolute socket path for unix.
	Addr string `yaml:"-" json:"addr"`
}

// DefaultSocketMode is the default mode of a unix listener's socket file.
const DefaultSocketMode = "0660"

// SocketMode returns Mode as permission bits (0660 when Mode is empty) and
// whether it is a valid octal mode of at most 0777.
func (l Listener) SocketMode() (os.FileMode, bool) {
	m := l.Mode
	if m == "" {
		m = DefaultSocketMode
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(m, "0o"), "0O"), 8, 32)
	if err != nil || n > 0o777 {
		return 0, false
	}
	return os.FileMode(n), true
}

// SocketOwner resolves Owner and Group to the uid and gid a unix
// listener's socket file is given; -1 leaves either as it is.
func (l Listener) SocketOwner() (uid, gid int, err error) {
	uid, gid = -1, -1
	if l.Owner != "" {
		u, err := user.Lookup(l.Owner)
		if err != nil {
			if u, err = user.LookupId(l.Owner); err != nil {
				return -1, -1, fmt.Errorf("unknown user %q", l.Owner)
			}
		}
		uid, _ = strconv.Atoi(u.Uid)
	}
	if l.Group != "" {
		g, err := user.LookupGroup(l.Group)
		if err != nil {
			if g, err = user.LookupGroupId(l.Group); err != nil {
				return -1, -1, fmt.Errorf("unknown group %q", l.Group)
			}
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, nil
}

// LengthSize returns the size in bytes of the length field described by
// PackageLengthType (1, 2 or 4), or 0 when the type is not valid.
func (l Listener) LengthSize() int {
	switch l.PackageLengthType {
	case "c", "C":
		return 1
	case "s", "S", "n", "v":
		return 2
	case "N", "V", "l", "L":
		return 4
	}
	return 0
}

// Load reads, strictly parses, applies defaults to and validates the YAML
// file at path. Relative paths in the file resolve against the file's
// directory, and Config.File is set to the file's absolute path.
//
// On failure the error lists every problem found, one per line, each
// formatted "<path>:<line>: <key>: <what is wrong> (<how to fix>)" with path
// as given; errors.As finds the individual *[Error] values.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: readProblem(err)}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	c, err := Parse(path, data, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	c.File = abs
	return c, nil
}

func readProblem(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file (give the config file with -c, e.g. drover start -c drover.yaml)"
	case errors.Is(err, os.ErrPermission):
		return "permission denied (make the file readable by this user)"
	}
	return err.Error()
}

// Parse is Load on bytes: name is the file name used in error messages and
// dir the directory that relative paths resolve against ("" means the
// current directory). Config.File is set to the file's base name in dir, so
// that Validate resolves relative paths the same way.
func Parse(name string, data []byte, dir string) (*Config, error) {
	if dir == "" {
		dir = "."
	}
	base, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{File: name, Msg: err.Error()}
	}
	c := &Config{File: filepath.Join(base, filepath.Base(name))}
	d := newDecoder(name)
	if !d.decode(data, c) {
		return nil, d.err()
	}
	v := &validator{base: base, file: name, lines: d.lines, set: d.set, bad: d.bad}
	v.defaults(c)
	v.validate(c)
	if len(v.errs) > 0 {
		d.errs = append(d.errs, v.errs...)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate re-checks c, typically after the CLI applied flag overrides, and
// refreshes the resolved fields (absolute paths, Handler.Path,
// Listener.Network and Listener.Addr). It applies no defaults. Relative
// paths resolve against the directory of c.File, or the current directory
// when c.File is empty. Errors have no line numbers: "<key>: <problem>",
// one per line.
// TaskLimit is how long a task may run at a task worker, and the key that
// set it: task_timeout and task_worker.request_timeout both bound it (a task
// is a task worker's request), the smaller one when both are set. 0 is no
// limit.
func (c *Config) TaskLimit() (time.Duration, string) {
	d, key := c.TaskTimeout.D(), "task_timeout"
	if r := c.TaskWorker.RequestTimeout.D(); r > 0 && (d == 0 || r < d) {
		d, key = r, "task_worker.request_timeout"
	}
	return d, key
}

func (c *Config) Validate() error {
	base := "."
	if c.File != "" {
		base = filepath.Dir(c.File)
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return err
	}
	v := &validator{base: base}
	v.validate(c)
	return joinErrors(v.errs)
}
