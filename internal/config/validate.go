package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Defaults that are not derived from other settings.
const (
	DefaultReactorNum       = 1
	DefaultDispatchQueueMax = 1024
	DefaultMaxWaitTime      = Duration(3 * time.Second)
	DefaultPackageMaxLength = Size(2 << 20)
	DefaultBufferOutputSize = Size(2 << 20)
	DefaultMaxConn          = 10000
	DefaultUpgradeTimeout   = Duration(60 * time.Second)
	DefaultDispatchTimeout  = Duration(5 * time.Second)
	DefaultHTTPMaxHeader    = Size(16 << 10)
	DefaultHTTPHeaderTime   = Duration(10 * time.Second)
	DefaultHTTPIdleTimeout  = Duration(60 * time.Second)
	// HTTP hostile-client bounds (docs/operations.md "Limits and hostile clients").
	DefaultHTTPBodyTimeout    = Duration(60 * time.Second)
	DefaultHTTPBodyBufferSize = Size(1 << 20)
	DefaultHTTPSendTimeout    = Duration(60 * time.Second)
	DefaultHTTPSendMinRate    = Size(512)
	DefaultHTTPMaxBuffered    = Size(256 << 20)
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "text"
	DefaultLaunch             = "auto"
	DefaultStartTimeout       = Duration(10 * time.Second)
	DefaultLengthType         = "N"
	// DefaultMaxConcurrency is max_concurrency: 256 × the Go SDK's default
	// of 64 per CPU.
	DefaultMaxConcurrency = 16384
	// DefaultWorkerBufferSize is worker_buffer_size: 16 packets of the
	// default package_max_length.
	DefaultWorkerBufferSize = Size(32 << 20)
	// DefaultHeartbeatIdleTime is heartbeat_idle_time when the key is
	// absent: nginx's stream proxy_timeout.
	DefaultHeartbeatIdleTime = Duration(10 * time.Minute)
	// DefaultWorkerSendTimeout is worker_send_timeout: nginx's
	// proxy_send_timeout.
	DefaultWorkerSendTimeout = Duration(60 * time.Second)
)

// Dispatch modes, in Swoole's numbering. DispatchDefault lets each
// listener's protocol choose.
const (
	DispatchDefault    = 0
	DispatchRoundRobin = 1
	DispatchFixed      = 2
	DispatchIdle       = 3
	DispatchIP         = 4
	DispatchUID        = 5
)

// maxUnixPath is the size of sun_path, including its terminating NUL.
const maxUnixPath = 108

// validator checks a Config and resolves its paths. With lines set (Parse)
// each problem gets the line of its key, or of the nearest enclosing key
// present in the file; without (Validate) problems carry no line.
type validator struct {
	base  string          // absolute directory relative paths resolve against
	file  string          // file name for messages; "" for Validate
	lines map[string]int  // key path → line; nil for Validate
	set   map[string]bool // key paths given in the file; nil for Validate
	bad   map[string]bool // key paths already reported by the decoder
	errs  []*Error
}

// fail reports a problem with key, on the line of key in the file.
func (v *validator) fail(key, format string, args ...any) {
	v.failNear(key, key, format, args...)
}

// failNear reports a problem with key on the line of the key near; used
// when key itself is missing from the file but another key caused the
// problem. A problem under a key whose value the decoder already rejected
// is not reported again: the value was left at its zero.
func (v *validator) failNear(key, near, format string, args ...any) {
	for k := key; ; k = parentKey(k) {
		if v.bad[k] {
			return
		}
		if k == "" {
			break
		}
	}
	e := &Error{File: v.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if v.lines != nil {
		e.Line = v.lineOf(near)
	}
	v.errs = append(v.errs, e)
}

// lineOf returns the line of key, or of its nearest ancestor in the file.
func (v *validator) lineOf(key string) int {
	for {
		if l, ok := v.lines[key]; ok {
			return l
		}
		if key == "" {
			return 1
		}
		key = parentKey(key)
	}
}

// parentKey strips the last ".name" or "[index]" from a key path.
func parentKey(key string) string {
	if i := strings.LastIndexAny(key, ".["); i > 0 {
		return key[:i]
	}
	return ""
}

// present reports whether key was given: in the file when parsing, a
// non-zero value (nonZero) when re-validating.
func (v *validator) present(key string, nonZero bool) bool {
	if v.set != nil {
		return v.set[key]
	}
	return nonZero
}

// abs resolves p against the config directory.
func (v *validator) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(v.base, p)
}

// defaults fills in what the file left out. Only Parse applies defaults;
// a key given in the file is never overridden.
func (v *validator) defaults(c *Config) {
	unset := func(key string) bool { return !v.set[key] }
	v.poolDefaults(c, runtime.NumCPU())
	if unset("reactor_num") {
		c.ReactorNum = DefaultReactorNum
	}
	if unset("max_request_grace") {
		c.MaxRequestGrace = c.MaxRequest / 2
	}
	if unset("dispatch_queue_max") {
		c.DispatchQueueMax = DefaultDispatchQueueMax
	}
	if unset("task_queue_max") {
		c.TaskQueueMax = 1024
	}
	if unset("max_wait_time") {
		c.MaxWaitTime = DefaultMaxWaitTime
	}
	if unset("reload_batch") {
		c.ReloadBatch = 1
	}
	if unset("package_max_length") {
		c.PackageMaxLength = DefaultPackageMaxLength
	}
	if unset("buffer_output_size") {
		c.BufferOutputSize = DefaultBufferOutputSize
	}
	if unset("max_conn") {
		c.MaxConn = DefaultMaxConn
	}
	if unset("upgrade_timeout") {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if unset("dispatch_timeout") {
		c.DispatchTimeout = DefaultDispatchTimeout
	}
	if unset("http_max_header_size") {
		c.HTTPMaxHeaderSize = DefaultHTTPMaxHeader
	}
	if unset("http_header_timeout") {
		c.HTTPHeaderTimeout = DefaultHTTPHeaderTime
	}
	if unset("http_idle_timeout") {
		c.HTTPIdleTimeout = DefaultHTTPIdleTimeout
	}
	if unset("http_body_timeout") {
		c.HTTPBodyTimeout = DefaultHTTPBodyTimeout
	}
	if unset("http_body_buffer_size") {
		c.HTTPBodyBufferSize = DefaultHTTPBodyBufferSize
	}
	if unset("http_send_timeout") {
		c.HTTPSendTimeout = DefaultHTTPSendTimeout
	}
	if unset("http_send_min_rate") {
		c.HTTPSendMinRate = DefaultHTTPSendMinRate
	}
	if unset("http_max_buffered") {
		c.HTTPMaxBuffered = DefaultHTTPMaxBuffered
	}
	if unset("max_concurrency") {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if unset("worker_buffer_size") {
		c.WorkerBufferSize = DefaultWorkerBufferSize
	}
	if unset("worker_send_timeout") {
		c.WorkerSendTimeout = DefaultWorkerSendTimeout
	}
	if unset("heartbeat_idle_time") {
		c.HeartbeatIdleTime = DefaultHeartbeatIdleTime
	}
	if unset("log_level") {
		c.LogLevel = DefaultLogLevel
	}
	if unset("log_format") {
		c.LogFormat = DefaultLogFormat
	}
	v.accessLogDefaults(c)
	handler := func(key string, h *Handler) {
		if unset(key + ".launch") {
			h.Launch = DefaultLaunch
		}
		if unset(key + ".start_timeout") {
			h.StartTimeout = DefaultStartTimeout
		}
		if unset(key + ".dir") {
			h.Dir = v.base
		}
		if unset(key + ".clear_env") {
			h.ClearEnv = true
		}
	}
	handler("worker", &c.Worker)
	if c.TaskWorkerNum > 0 || v.set["task_worker"] {
		handler("task_worker", &c.TaskWorker)
	}
	for i := range c.Processes {
		if unset(fmt.Sprintf("processes[%d].clear_env", i)) {
			c.Processes[i].ClearEnv = true
		}
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Protocol == "length" && unset(fmt.Sprintf("listeners[%d].package_length_type", i)) {
			l.PackageLengthType = DefaultLengthType
		}
		if l.PackageMaxLength == 0 {
			l.PackageMaxLength = c.PackageMaxLength
		}
	}
}

func (v *validator) validate(c *Config) {
	v.pool(c)
	v.atLeast("task_worker_num", c.TaskWorkerNum, 0, 1024)
	v.atLeast("reactor_num", c.ReactorNum, 1, 64)
	v.atLeast("max_request", c.MaxRequest, 0, -1)
	v.atLeast("max_request_grace", c.MaxRequestGrace, 0, -1)
	v.atLeast("task_max_request", c.TaskMaxRequest, 0, -1)
	if c.DispatchMode < 0 || c.DispatchMode > 5 {
		v.fail("dispatch_mode", "%d is not a dispatch mode (want 0 for the protocol's default, "+
			"1 round-robin, 2 fixed by connection, 3 idle worker first, 4 by client IP or 5 by bound uid)", c.DispatchMode)
	}
	v.atLeast("dispatch_queue_max", c.DispatchQueueMax, 1, -1)
	v.atLeast("task_queue_max", c.TaskQueueMax, 1, -1)
	v.duration("task_timeout", c.TaskTimeout, false)
	v.duration("max_wait_time", c.MaxWaitTime, false)
	v.atLeast("reload_batch", c.ReloadBatch, 1, -1)
	v.minSize("package_max_length", c.PackageMaxLength, 64)
	v.minSize("buffer_output_size", c.BufferOutputSize, 64)
	v.duration("heartbeat_idle_time", c.HeartbeatIdleTime, false)
	v.atLeast("max_conn", c.MaxConn, 1, -1)
	v.atLeast("max_concurrency", c.MaxConcurrency, 1, 1<<20)
	v.minSize("worker_buffer_size", c.WorkerBufferSize, 64<<10)
	v.duration("worker_send_timeout", c.WorkerSendTimeout, false)
	v.duration("upgrade_timeout", c.UpgradeTimeout, true)
	v.duration("dispatch_timeout", c.DispatchTimeout, true)
	v.minSize("http_max_header_size", c.HTTPMaxHeaderSize, 1<<10)
	v.duration("http_header_timeout", c.HTTPHeaderTimeout, true)
	v.duration("http_idle_timeout", c.HTTPIdleTimeout, true)
	v.duration("http_body_timeout", c.HTTPBodyTimeout, true)
	v.minSize("http_body_buffer_size", c.HTTPBodyBufferSize, 64<<10)
	v.duration("http_send_timeout", c.HTTPSendTimeout, true)
	v.minSize("http_send_min_rate", c.HTTPSendMinRate, 0)
	v.minSize("http_max_buffered", c.HTTPMaxBuffered, 1<<20)
	c.PidFile = v.fileInDir("pid_file", c.PidFile, "drover.pid")
	c.LogFile = v.fileInDir("log_file", c.LogFile, "drover.log")
	v.oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	v.oneOf("log_format", c.LogFormat, "text", "json")
	v.accessLog(c)
	if c.User != "" {
		if _, err := user.Lookup(c.User); err != nil {
			if _, err := user.LookupId(c.User); err != nil {
				v.fail("user", "unknown user %s (create it, or remove user: to run workers as the current user)", show(c.User))
			}
		}
	}
	if c.Group != "" {
		if _, err := user.LookupGroup(c.Group); err != nil {
			if _, err := user.LookupGroupId(c.Group); err != nil {
				v.fail("group", "unknown group %s (create it, or remove group: to keep the user's group)", show(c.Group))
			}
		}
	}

	if len(c.Worker.Cmd) == 0 {
		if v.present("worker", false) {
			v.fail("worker.cmd", "required (the handler's argv, e.g. cmd: [../bin/app, --flag])")
		} else {
			v.fail("worker", "required (add a handler, e.g. worker: {cmd: [../bin/app]})")
		}
	} else {
		v.handler("worker", &c.Worker)
	}
	if c.TaskWorkerNum > 0 {
		if len(c.TaskWorker.Cmd) == 0 {
			v.failNear("task_worker.cmd", "task_worker_num", "required when task_worker_num > 0 (add task_worker: {cmd: [../bin/tasks]}, or set task_worker_num: 0)")
		} else {
			v.handler("task_worker", &c.TaskWorker)
		}
	}

	names := map[string]bool{}
	for i := range c.Processes {
		p := &c.Processes[i]
		key := fmt.Sprintf("processes[%d]", i)
		switch {
		case p.Name == "":
			v.fail(key+".name", "required (a name for logs and drover status, e.g. name: cache-refresher)")
		case names[p.Name]:
			v.fail(key+".name", "%s is used by another process (names must be unique)", show(p.Name))
		}
		names[p.Name] = true
		p.Handler = Handler{Cmd: p.Cmd, Launch: p.Launch, Dir: p.Dir, Env: p.Env, ClearEnv: p.ClearEnv, StartTimeout: DefaultStartTimeout}
		if p.Handler.Launch == "" {
			p.Handler.Launch = DefaultLaunch
		}
		if p.Handler.Dir == "" {
			p.Handler.Dir = v.base
		}
		if len(p.Cmd) == 0 {
			v.fail(key+".cmd", "required (the process's argv, e.g. cmd: [../bin/refresher])")
			continue
		}
		v.handler(key, &p.Handler)
	}

	for i, w := range c.Watch {
		key := fmt.Sprintf("watch[%d]", i)
		if w == "" {
			v.fail(key, "empty path (remove it)")
			continue
		}
		p := v.abs(w)
		if _, err := os.Stat(p); err != nil {
			v.fail(key, "%s: %s (create it or remove it from watch; relative paths resolve against the config file's directory)", show(w), statProblem(err))
			continue
		}
		c.Watch[i] = p
	}

	if len(c.Listeners) == 0 {
		v.fail("listeners", `required (add at least one, e.g. listeners: [{address: "tcp://127.0.0.1:9501", protocol: http}])`)
	}
	used := map[string]int{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		key := fmt.Sprintf("listeners[%d]", i)
		v.listener(key, l, c.PackageMaxLength)
		if l.Network == "" {
			continue
		}
		id := l.Network + "://" + l.Addr
		if j, dup := used[id]; dup {
			v.fail(key+".address", "%s is already used by listeners[%d] (give each listener its own address)", show(l.Address), j)
			continue
		}
		used[id] = i
	}
	v.admin(c)
	v.tables(c)
}

// atLeast checks lo <= n and, when hi >= 0, n <= hi.
func (v *validator) atLeast(key string, n, lo, hi int) {
	switch {
	case hi >= 0 && (n < lo || n > hi):
		v.fail(key, "%d is out of range (want %d to %d)", n, lo, hi)
	case n < lo:
		v.fail(key, "%d is out of range (want at least %d)", n, lo)
	}
}

func (v *validator) duration(key string, d Duration, positive bool) {
	switch {
	case d < 0:
		v.fail(key, "%s must not be negative (want 0 or more, e.g. 3 for three seconds)", d)
	case positive && d == 0:
		v.fail(key, "must be more than 0 (e.g. 10 for ten seconds, or \"500ms\")")
	}
}

func (v *validator) minSize(key string, s, lo Size) {
	if s < lo {
		v.fail(key, "%d bytes is too small (want at least %d bytes; sizes take K, M and G suffixes, e.g. 2M)", int64(s), int64(lo))
	}
}

func (v *validator) oneOf(key, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.fail(key, "unknown value %q (want %s)", s, quoteList(allowed, "or"))
}

// fileInDir resolves an optional file path whose directory must exist.
func (v *validator) fileInDir(key, p, example string) string {
	if p == "" {
		return ""
	}
	abs := v.abs(p)
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		v.fail(key, "%s is a directory (want a file path, e.g. %s)", show(p), filepath.Join(p, example))
		return p
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		v.fail(key, "directory %s does not exist (create it or choose another path; relative paths resolve against the config file's directory)", show(dir))
		return p
	}
	return abs
}

// statProblem words an os.Stat error without repeating the path.
func statProblem(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "no such file or directory"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

var hex64 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// handler checks a handler with a non-empty Cmd and resolves its Dir and
// Path.
func (v *validator) handler(key string, h *Handler) {
	v.oneOf(key+".launch", h.Launch, "auto", "plugin", "exec")

	dirOK := true
	if h.Dir == "" {
		h.Dir = v.base
	}
	dir := v.abs(h.Dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		what := "is not a directory"
		if err != nil {
			what = statProblem(err)
		}
		v.fail(key+".dir", "%s: %s (create it or fix the path; relative paths resolve against the config file's directory)", show(h.Dir), what)
		dirOK = false
	} else {
		h.Dir = dir
	}

	h.Path = ""
	switch exe := h.Cmd[0]; {
	case exe == "":
		v.fail(key+".cmd", "the first element is empty (want the handler executable, e.g. ../bin/app)")
	case strings.ContainsRune(exe, '/'):
		if !dirOK && !filepath.IsAbs(exe) {
			break // reported above; the executable cannot be found without its dir
		}
		p := exe
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if problem := checkExecutable(p); problem != "" {
			v.fail(key+".cmd", "%s: %s", show(exe), problem)
			break
		}
		h.Path = p
	default:
		p, err := exec.LookPath(exe)
		if err == nil {
			p, err = filepath.Abs(p)
		}
		if err != nil {
			v.fail(key+".cmd", "%s: not found in $PATH (install it, or give a path such as ./bin/%s, relative to the handler's dir)", show(exe), exe)
			break
		}
		h.Path = p
	}

	for name, val := range h.Env {
		ek := mapKey(key+".env", name)
		switch {
		case name == "":
			v.fail(ek, "empty variable name (remove it)")
		case strings.ContainsAny(name, "=\x00"):
			v.fail(ek, "variable names cannot contain \"=\" or NUL (write NAME: value)")
		case strings.ContainsRune(val, 0):
			v.fail(ek, "the value contains a NUL byte (environment values cannot hold one)")
		}
	}
	if h.Checksum != "" && !hex64.MatchString(h.Checksum) {
		v.fail(key+".checksum", "want the 64 hex digits of the executable's sha256 (as printed by sha256sum), got %q", h.Checksum)
	}
	switch {
	case h.MaxMemory < 0:
		v.fail(key+".max_memory", "%d must not be negative (want 0 for off, or a size like 512M)", int64(h.MaxMemory))
	case h.MaxMemory > 0 && h.MaxMemory < 1<<20:
		v.fail(key+".max_memory", "%d bytes is less than 1MiB (sizes without a unit are bytes; did you mean %dM?)", int64(h.MaxMemory), int64(h.MaxMemory))
	}
	v.duration(key+".request_timeout", h.RequestTimeout, false)
	v.duration(key+".slow_request_log", h.SlowRequestLog, false)
	v.duration(key+".start_timeout", h.StartTimeout, true)
	v.ttls(key, h)
	if h.Launch == "plugin" && h.Path != "" && PluginSupportOf(h.Path) == PluginAbsent {
		v.fail(key+".launch", "plugin, but %s was built with drover's Go SDK without plugin support (go-plugin is not in its build info): "+
			"add import _ \"github.com/drover-dev/drover/worker/plugin\" to its main package and rebuild, or set launch: exec (or auto)", h.Path)
	}
}

// checkExecutable says what keeps p from being run, or "" when nothing does.
func checkExecutable(p string) string {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file (build it first, e.g. make build; paths are relative to the handler's dir)"
	case err != nil:
		return statProblem(err) + " (check the path and its permissions)"
	case fi.IsDir():
		return "is a directory (want the handler executable)"
	case !fi.Mode().IsRegular():
		return "is not a regular file (want the handler executable)"
	case fi.Mode().Perm()&0o111 == 0:
		return "is not executable (chmod +x it)"
	}
	return ""
}

var protocols = []string{"http", "length", "eof", "raw"}

// listener checks one listener and sets its Network and Addr. maxLen is the
// top-level package_max_length, which a 0 in the listener inherits.
func (v *validator) listener(key string, l *Listener, maxLen Size) {
	l.Network, l.Addr = "", ""
	if l.Address == "" {
		v.fail(key+".address", "required (e.g. tcp://127.0.0.1:9501, unix:///run/drover.sock or udp://0.0.0.0:9502)")
	} else if network, addr, problem := v.address(l.Address); problem != "" {
		v.fail(key+".address", "%s", problem)
	} else {
		l.Network, l.Addr = network, addr
	}

	known := false
	for _, p := range protocols {
		known = known || l.Protocol == p
	}
	switch {
	case l.Protocol == "":
		v.fail(key+".protocol", "required (want %s)", quoteList(protocols, "or"))
	case !known:
		v.fail(key+".protocol", "unknown value %q (want %s)", l.Protocol, quoteList(protocols, "or"))
	case l.Network == "udp" && l.Protocol != "raw":
		v.fail(key+".protocol", "%s does not apply to datagrams (want raw for a udp:// listener)", l.Protocol)
	}

	if l.Protocol != "length" {
		for _, opt := range []struct {
			name    string
			nonZero bool
		}{
			{"package_length_type", l.PackageLengthType != ""},
			{"package_length_offset", l.PackageLengthOffset != 0},
			{"package_body_offset", l.PackageBodyOffset != 0},
		} {
			if v.present(key+"."+opt.name, opt.nonZero) {
				v.fail(key+"."+opt.name, "applies to protocol length only (remove it, or set protocol: length)")
			}
		}
	}
	for _, opt := range []struct{ name, val string }{{"mode", l.Mode}, {"owner", l.Owner}, {"group", l.Group}} {
		if l.Network != "unix" && l.Network != "" && v.present(key+"."+opt.name, opt.val != "") {
			v.fail(key+"."+opt.name, "applies to unix:// listeners only (remove it)")
		}
	}
	if l.Network == "unix" {
		if _, ok := l.SocketMode(); !ok {
			v.fail(key+".mode", "%s is not an octal file mode (want e.g. 0660 for owner and group, 0666 for everyone)", show(l.Mode))
		}
		if _, _, err := l.SocketOwner(); err != nil {
			k := key + ".owner"
			if strings.Contains(err.Error(), "group") {
				k = key + ".group"
			}
			v.fail(k, "%v (create it, or remove the key to keep the socket drover's)", err)
		}
	}
	if l.Protocol != "eof" && v.present(key+".package_eof", l.PackageEOF != "") {
		v.fail(key+".package_eof", "applies to protocol eof only (remove it, or set protocol: eof)")
	}

	switch {
	case l.PackageMaxLength == maxLen:
		// Inherited (or equal to) the top-level value, checked there.
	case l.PackageMaxLength < 0:
		v.fail(key+".package_max_length", "%d must not be negative (want 0 to inherit the top-level package_max_length, or at least 64)", int64(l.PackageMaxLength))
	case l.PackageMaxLength > 0 && l.PackageMaxLength < 64:
		v.fail(key+".package_max_length", "%d bytes is too small (want 0 to inherit the top-level package_max_length, or at least 64)", int64(l.PackageMaxLength))
	}
	limit := l.PackageMaxLength
	if limit <= 0 {
		limit = maxLen
	}

	switch l.Protocol {
	case "length":
		size := l.LengthSize()
		if size == 0 {
			v.fail(key+".package_length_type", "unknown value %q (want c or C for 1 byte, s, S, n or v for 2, N, V, l or L for 4; N is big-endian unsigned)", l.PackageLengthType)
		}
		switch {
		case l.PackageLengthOffset < 0:
			v.fail(key+".package_length_offset", "%d must not be negative (want the byte offset of the length field)", l.PackageLengthOffset)
		case limit > 0 && Size(l.PackageLengthOffset)+Size(size) > limit:
			v.fail(key+".package_length_offset", "%d plus the %d-byte length field does not fit in package_max_length %d (lower the offset or raise package_max_length)", l.PackageLengthOffset, size, int64(limit))
		}
		switch {
		case l.PackageBodyOffset < 0:
			v.fail(key+".package_body_offset", "%d must not be negative (want 0 when the length counts the whole packet, or the header size when it counts the body)", l.PackageBodyOffset)
		case limit > 0 && Size(l.PackageBodyOffset) > limit:
			v.fail(key+".package_body_offset", "%d is larger than package_max_length %d (lower it or raise package_max_length)", l.PackageBodyOffset, int64(limit))
		}
	case "eof":
		switch n := len(l.PackageEOF); {
		case n == 0:
			v.fail(key+".package_eof", `required for protocol eof (e.g. package_eof: "\r\n")`)
		case n > 8:
			v.fail(key+".package_eof", "%d bytes is too long (want 1 to 8 bytes)", n)
		}
	}
}

// address parses a listener address into the network and address to bind,
// or returns the problem.
func (v *validator) address(a string) (network, addr, problem string) {
	const want = "want tcp://host:port, unix:///path/to.sock or udp://host:port"
	scheme, rest, ok := strings.Cut(a, "://")
	if !ok {
		return "", "", fmt.Sprintf("%s has no scheme (%s)", show(a), want)
	}
	switch scheme {
	case "tcp", "udp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return "", "", fmt.Sprintf("%s: want host:port after %s:// (e.g. %s://127.0.0.1:9501; an empty host means all interfaces)", show(a), scheme, scheme)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return "", "", fmt.Sprintf("%s: port %s is not a number from 0 to 65535 (e.g. %s://127.0.0.1:9501)", show(a), show(port), scheme)
		}
		return scheme, net.JoinHostPort(host, strconv.Itoa(n)), ""
	case "unix":
		if rest == "" {
			return "", "", fmt.Sprintf("%s: no socket path (e.g. unix:///run/drover.sock, or unix://drover.sock relative to the config file's directory)", show(a))
		}
		p := v.abs(rest)
		if len(p) >= maxUnixPath {
			return "", "", fmt.Sprintf("socket path %s is %d bytes long (want fewer than %d; choose a shorter path)", show(p), len(p), maxUnixPath)
		}
		dir := filepath.Dir(p)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return "", "", fmt.Sprintf("directory %s does not exist (create it or choose another path; relative paths resolve against the config file's directory)", show(dir))
		}
		return "unix", p, ""
	}
	return "", "", fmt.Sprintf("unknown scheme %q (%s)", scheme, want)
}
