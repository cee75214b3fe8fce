package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAccessLogAndSlowLog(t *testing.T) {
	fx := newFixture(t)
	c, err := fx.parse(minimal)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessLog.On() || c.AccessLog != (AccessLog{}) || c.Worker.SlowRequestLog != 0 {
		t.Errorf("off by default: %+v, slow_request_log %s", c.AccessLog, c.Worker.SlowRequestLog)
	}

	c, err = fx.parse(strings.Replace(minimal, "  cmd: [../bin/echo]\n", "  cmd: [../bin/echo]\n  slow_request_log: 2s\n", 1) +
		"access_log: {path: run/access.log}\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(fx.conf, "run/access.log"); c.AccessLog.Path != want || c.AccessLog.Format != "combined" {
		t.Errorf("access_log %+v, want path %s, format combined (the default)", c.AccessLog, want)
	}
	if c.Worker.SlowRequestLog.D() != 2*time.Second {
		t.Errorf("slow_request_log %s", c.Worker.SlowRequestLog)
	}
	// What the master hands the manager, and flags re-check, stays valid.
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}

	c, err = fx.parse(minimal + "access_log:\n  path: \"-\"\n  format: json\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessLog != (AccessLog{Path: AccessLogStdout, Format: "json"}) {
		t.Errorf("access_log %+v", c.AccessLog)
	}
}

func TestAccessLogErrors(t *testing.T) {
	fx := newFixture(t)
	worker := func(extra string) string {
		return strings.Replace(minimal, "  cmd: [../bin/echo]\n", "  cmd: [../bin/echo]\n"+extra, 1)
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"format without path", minimal + "access_log: {format: json}\n",
			`drover.yaml:6: access_log.path: required (a file, e.g. path: /var/log/drover/access.log, or "-" for stdout; remove access_log: to turn it off)`},
		{"empty access_log", minimal + "access_log: {}\n",
			`drover.yaml:6: access_log.path: required (a file, e.g. path: /var/log/drover/access.log, or "-" for stdout; remove access_log: to turn it off)`},
		{"unknown format", minimal + "access_log: {path: a.log, format: common}\n",
			`drover.yaml:6: access_log.format: unknown value "common" (want combined or json)`},
		{"unknown key", minimal + "access_log: {path: a.log, fmt: json}\n",
			`drover.yaml:6: access_log: unknown key "fmt"`},
		{"no directory", minimal + "access_log: {path: nowhere/a.log}\n",
			`drover.yaml:6: access_log.path: directory ` + fx.conf + `/nowhere does not exist`},
		{"a directory", minimal + "access_log: {path: run}\n",
			`drover.yaml:6: access_log.path: run is a directory (want a file path, e.g. run/access.log)`},
		{"log_file too", minimal + "log_file: run/d.log\naccess_log: {path: run/d.log}\n",
			`drover.yaml:7: access_log.path: ` + fx.conf + `/run/d.log is log_file too`},
		{"negative slow log", worker("  slow_request_log: -1s\n"),
			`drover.yaml:3: worker.slow_request_log: -1s must not be negative`},
		{"slow log not under request_timeout", worker("  slow_request_log: 5s\n  request_timeout: 5s\n"),
			`drover.yaml:3: worker.slow_request_log: 5s is not shorter than worker.request_timeout (5s): the request would be answered 504 before it is logged slow (lower slow_request_log, or raise request_timeout)`},
		{"task worker slow log", minimal + "task_worker_num: 1\ntask_worker: {cmd: [../bin/echo], slow_request_log: 1s}\n",
			`drover.yaml:7: task_worker.slow_request_log: only worker: has a slow-request log (a task's time is bounded by task_timeout; remove the key)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := fx.parse(c.yaml)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestLogFormatOf(t *testing.T) {
	fx := newFixture(t)
	t.Setenv("DROVER_TEST_FMT", "json")
	for yaml, want := range map[string]string{
		"worker_num: 0\nlog_format: json\nunknown: 1\n": "json",
		"log_format: ${DROVER_TEST_FMT}\n":              "json",
		"log_format: text\n":                            "text",
		"worker_num: 2\n":                               "",
		"log_format: [json\n":                           "",
	} {
		path := filepath.Join(fx.conf, "f.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := LogFormatOf(path); got != want {
			t.Errorf("%q: %q, want %q", yaml, got, want)
		}
	}
	if got := LogFormatOf(filepath.Join(fx.conf, "none.yaml")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}
