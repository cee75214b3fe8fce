package config

// AccessLog is access_log: where the master writes one line per HTTP
// request and per stream connection closed, and in which format
// (docs/operations.md, Logs). A zero AccessLog is off.
type AccessLog struct {
	// Path is the file the lines are appended to (opened as log_file is,
	// and reopened by reopen-logs), or AccessLogStdout for the master's
	// stdout. Required under access_log:.
	Path string `yaml:"path" json:"path"`
	// Format is combined (default: Apache's and nginx's combined format,
	// plus the duration, worker slot and pid) or json (one object a line).
	Format string `yaml:"format" json:"format"`
}

// AccessLogStdout is the access_log path that means the master's stdout.
const AccessLogStdout = "-"

// DefaultAccessLogFormat is access_log.format when the file has none.
const DefaultAccessLogFormat = "combined"

// On reports whether the access log is written.
func (a AccessLog) On() bool { return a.Path != "" }

func (v *validator) accessLogDefaults(c *Config) {
	if c.AccessLog.Path != "" && !v.set["access_log.format"] {
		c.AccessLog.Format = DefaultAccessLogFormat
	}
}

// accessLog checks access_log and the slow-request log
// (worker.slow_request_log), and resolves the access log's path.
func (v *validator) accessLog(c *Config) {
	a := &c.AccessLog
	switch {
	case a.Path == "" && v.present("access_log", a.Format != ""):
		v.fail("access_log.path", `required (a file, e.g. path: /var/log/drover/access.log, or "-" for stdout; remove access_log: to turn it off)`)
	case a.Path == AccessLogStdout:
	case a.Path != "":
		a.Path = v.fileInDir("access_log.path", a.Path, "access.log")
		if a.Path == c.LogFile && a.Path != "" {
			v.fail("access_log.path", "%s is log_file too (give the access log a file of its own, e.g. access.log beside it)", show(a.Path))
		}
	}
	if a.Path != "" || a.Format != "" {
		v.oneOf("access_log.format", a.Format, "combined", "json")
	}

	if c.TaskWorker.SlowRequestLog != 0 {
		v.fail("task_worker.slow_request_log", "only worker: has a slow-request log (a task's time is bounded by task_timeout; remove the key)")
	}
	slow, timeout := c.Worker.SlowRequestLog, c.Worker.RequestTimeout
	if slow > 0 && timeout > 0 && slow >= timeout {
		v.fail("worker.slow_request_log", "%s is not shorter than worker.request_timeout (%s): the request would be answered 504 before it is logged slow "+
			"(lower slow_request_log, or raise request_timeout)", slow, timeout)
	}
}
