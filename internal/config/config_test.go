package config

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	fx := newFixture(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH")
	}
	sh, _ = filepath.Abs(sh)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			yaml: minimal,
			check: func(t *testing.T, c *Config) {
				want := &Config{
					File:             filepath.Join(fx.conf, "drover.yaml"),
					WorkerNum:        runtime.NumCPU(),
					ReactorNum:       1,
					DispatchQueueMax: 1024,
					MaxWaitTime:      Duration(3 * time.Second),
					ReloadBatch:      1,
					TaskQueueMax:     1024,
					PackageMaxLength: 2 << 20,
					BufferOutputSize: 2 << 20,
					MaxConn:          10000,
					// Issue 16: bounds on what a worker and an idle client may cost.
					MaxConcurrency: 16384, WorkerBufferSize: 32 << 20, HeartbeatIdleTime: Duration(10 * time.Minute),
					WorkerSendTimeout: Duration(time.Minute),
					UpgradeTimeout:    Duration(time.Minute),
					DispatchTimeout:   Duration(5 * time.Second), HTTPMaxHeaderSize: 16 << 10,
					HTTPHeaderTimeout: Duration(10 * time.Second), HTTPIdleTimeout: Duration(time.Minute),
					HTTPBodyTimeout: Duration(time.Minute), HTTPBodyBufferSize: 1 << 20, HTTPSendTimeout: Duration(time.Minute),
					HTTPSendMinRate: 512, HTTPMaxBuffered: 256 << 20,
					LogLevel:  "info",
					LogFormat: "text",
					Worker: Handler{
						Cmd:          []string{"../bin/echo"},
						Launch:       "auto",
						Dir:          fx.conf,
						ClearEnv:     true,
						StartTimeout: Duration(10 * time.Second),
						Path:         filepath.Join(fx.dir, "bin/echo"),
					},
					Listeners: []Listener{{
						Address:          "tcp://127.0.0.1:9501",
						Protocol:         "http",
						PackageMaxLength: 2 << 20,
						Network:          "tcp",
						Addr:             "127.0.0.1:9501",
					}},
				}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got\n%+v\nwant\n%+v", c, want)
				}
			},
		},
		{
			name: "length echo example",
			yaml: `worker_num: 2
worker:
  cmd: [../bin/echo]
listeners:
  - address: tcp://127.0.0.1:9501
    protocol: length
    package_length_type: N
    package_length_offset: 0
    package_body_offset: 4
`,
			check: func(t *testing.T, c *Config) {
				l := c.Listeners[0]
				if c.WorkerNum != 2 || l.PackageLengthType != "N" || l.LengthSize() != 4 || l.PackageBodyOffset != 4 {
					t.Errorf("got worker_num %d, listener %+v", c.WorkerNum, l)
				}
			},
		},
		{
			name: "length type defaults to N",
			yaml: strings.Replace(minimal, "protocol: http", "protocol: length", 1),
			check: func(t *testing.T, c *Config) {
				if l := c.Listeners[0]; l.PackageLengthType != "N" || l.LengthSize() != 4 {
					t.Errorf("got %+v", l)
				}
			},
		},
		{
			name: "durations and sizes",
			yaml: minimal + `max_wait_time: 0.5
upgrade_timeout: 2m
heartbeat_idle_time: 60
package_max_length: 8M
buffer_output_size: 65536
task_worker_num: 1
task_worker:
  cmd: ../bin/echo
  max_memory: 512MiB
  request_timeout: 1500ms
  start_timeout: 1
`,
			check: func(t *testing.T, c *Config) {
				got := []any{c.MaxWaitTime.D(), c.UpgradeTimeout.D(), c.HeartbeatIdleTime.D(),
					c.PackageMaxLength, c.BufferOutputSize, c.Listeners[0].PackageMaxLength,
					c.TaskWorker.MaxMemory, c.TaskWorker.RequestTimeout.D(), c.TaskWorker.StartTimeout.D()}
				want := []any{500 * time.Millisecond, 2 * time.Minute, time.Minute,
					Size(8 << 20), Size(65536), Size(8 << 20),
					Size(512 << 20), 1500 * time.Millisecond, time.Second}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
			},
		},
		{
			name: "max_request_grace defaults to half of max_request",
			yaml: minimal + "max_request: 1001\n",
			check: func(t *testing.T, c *Config) {
				if c.MaxRequest != 1001 || c.MaxRequestGrace != 500 {
					t.Errorf("got max_request %d grace %d", c.MaxRequest, c.MaxRequestGrace)
				}
			},
		},
		{
			name: "explicit max_request_grace 0 is kept",
			yaml: minimal + "max_request: 1000\nmax_request_grace: 0\n",
			check: func(t *testing.T, c *Config) {
				if c.MaxRequestGrace != 0 {
					t.Errorf("got grace %d", c.MaxRequestGrace)
				}
			},
		},
		{
			name: "empty value means default",
			yaml: minimal + "worker_num:\nlog_level: ~\n",
			check: func(t *testing.T, c *Config) {
				if c.WorkerNum != runtime.NumCPU() || c.LogLevel != "info" {
					t.Errorf("got worker_num %d log_level %q", c.WorkerNum, c.LogLevel)
				}
			},
		},
		{
			name: "cmd as a string, and from PATH",
			yaml: `worker:
  cmd: ../bin/echo --port  9000
task_worker_num: 1
task_worker:
  cmd: [sh, -c, "exec task"]
  dir: ..
listeners:
  - {address: "tcp://:9501", protocol: raw}
`,
			check: func(t *testing.T, c *Config) {
				if want := []string{"../bin/echo", "--port", "9000"}; !reflect.DeepEqual(c.Worker.Cmd, want) {
					t.Errorf("cmd = %q, want %q", c.Worker.Cmd, want)
				}
				if c.TaskWorker.Path != sh || c.TaskWorker.Dir != fx.dir {
					t.Errorf("task worker path %q dir %q, want %q %q", c.TaskWorker.Path, c.TaskWorker.Dir, sh, fx.dir)
				}
				if c.Listeners[0].Addr != ":9501" {
					t.Errorf("addr = %q", c.Listeners[0].Addr)
				}
			},
		},
		{
			name: "paths resolve against the config directory",
			yaml: `pid_file: run/drover.pid
log_file: ` + fx.dir + `/drover.log
watch: [src, ../bin/echo]
worker:
  cmd: [./echo]
  dir: ../bin
listeners:
  - address: unix://run/drover.sock
    protocol: eof
    package_eof: "\r\n"
  - address: unix://` + fx.dir + `/abs.sock
    protocol: raw
`,
			check: func(t *testing.T, c *Config) {
				got := []string{c.PidFile, c.LogFile, c.Watch[0], c.Watch[1], c.Worker.Dir, c.Worker.Path,
					c.Listeners[0].Network, c.Listeners[0].Addr, c.Listeners[1].Addr, c.Listeners[0].PackageEOF}
				want := []string{fx.conf + "/run/drover.pid", fx.dir + "/drover.log", fx.conf + "/src", fx.dir + "/bin/echo",
					fx.dir + "/bin", fx.dir + "/bin/echo", "unix", fx.conf + "/run/drover.sock", fx.dir + "/abs.sock", "\r\n"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got  %q\nwant %q", got, want)
				}
			},
		},
		{
			name: "udp raw, env, user, group, merge keys",
			yaml: `user: ` + me.Username + `
group: "` + me.Gid + `"
daemonize: true
log_format: json
log_level: debug
dispatch_mode: 4
worker:
  cmd: [../bin/echo]
  launch: exec
  checksum: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08
  env: {PORT: 9000, DEBUG: true, EMPTY: , "A.B": x}
listeners:
  - &len
    address: tcp://[::1]:9501
    protocol: length
    package_length_type: n
    package_body_offset: 2
  - <<: *len
    address: tcp://[::1]:9502
  - address: udp://0.0.0.0:9503
    protocol: raw
`,
			check: func(t *testing.T, c *Config) {
				wantEnv := map[string]string{"PORT": "9000", "DEBUG": "true", "EMPTY": "", "A.B": "x"}
				if !reflect.DeepEqual(c.Worker.Env, wantEnv) {
					t.Errorf("env = %q, want %q", c.Worker.Env, wantEnv)
				}
				if !c.Daemonize || c.DispatchMode != 4 || c.LogFormat != "json" || c.Worker.Launch != "exec" {
					t.Errorf("got %+v", c)
				}
				l := c.Listeners[1]
				if l.Protocol != "length" || l.PackageLengthType != "n" || l.LengthSize() != 2 || l.PackageBodyOffset != 2 || l.Addr != "[::1]:9502" {
					t.Errorf("merged listener = %+v", l)
				}
				if l := c.Listeners[2]; l.Network != "udp" || l.Addr != "0.0.0.0:9503" {
					t.Errorf("udp listener = %+v", l)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fx.parse(tt.yaml)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, c)
			before := clone(t, c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate after Parse: %v", err)
			}
			if !reflect.DeepEqual(c, before) {
				t.Errorf("Validate changed a resolved config:\n%+v\n%+v", c, before)
			}
		})
	}
}

func clone(t *testing.T, c *Config) *Config {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestLoad(t *testing.T) {
	fx := newFixture(t)
	path := filepath.Join(fx.conf, "drover.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(fx.dir)

	c, err := Load("conf/drover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Worker.Path != filepath.Join(fx.dir, "bin/echo") {
		t.Errorf("File = %q, Worker.Path = %q", c.File, c.Worker.Path)
	}

	// Errors name the file as the user gave it.
	if err := os.WriteFile(path, []byte(minimal+"worker_num: two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load("conf/drover.yaml")
	if want := `conf/drover.yaml:6: worker_num: want an integer, got "two"`; err == nil || err.Error() != want {
		t.Errorf("got error %v, want %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 6 || ce.Key != "worker_num" {
		t.Errorf("errors.As: %+v", ce)
	}

	_, err = Load("conf/missing.yaml")
	if want := "conf/missing.yaml: no such file (give the config file with -c, e.g. drover start -c drover.yaml)"; err == nil || err.Error() != want {
		t.Errorf("got error %v, want %s", err, want)
	}
}

func TestValidateAfterOverrides(t *testing.T) {
	fx := newFixture(t)
	c, err := fx.parse(minimal + "task_worker_num: 1\ntask_worker: {cmd: ../bin/echo}\n")
	if err != nil {
		t.Fatal(err)
	}
	c.WorkerNum = 0
	c.Listeners[0].Protocol = "htp"
	c.TaskWorker.Cmd = nil
	c.MaxWaitTime = -1
	want := `worker_num: 0 is out of range (want 1 to 1024)
max_wait_time: -1ns must not be negative (want 0 or more, e.g. 3 for three seconds)
task_worker.cmd: required when task_worker_num > 0 (add task_worker: {cmd: [../bin/tasks]}, or set task_worker_num: 0)
listeners[0].protocol: unknown value "htp" (want http, length, eof or raw)`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}

	// Flags can add a listener; Validate resolves it.
	c, _ = fx.parse(minimal)
	c.Listeners = append(c.Listeners, Listener{Address: "tcp://:8080", Protocol: "http"})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if l := c.Listeners[1]; l.Network != "tcp" || l.Addr != ":8080" {
		t.Errorf("listener not resolved: %+v", l)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	fx := newFixture(t)
	c, err := fx.parse(`max_wait_time: 1.5
package_max_length: 1M
watch: [src]
worker_num: 3
worker:
  cmd: [../bin/echo, -v]
  env: {A: b}
  max_memory: 256M
listeners:
  - address: tcp://127.0.0.1:9501
    protocol: http
  - address: unix://run/s.sock
    protocol: length
task_worker_num: 1
task_worker:
  cmd: ../bin/echo
`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"file":"` + c.File + `"`, `"max_wait_time":1500000000`, `"package_max_length":1048576`,
		`"max_memory":268435456`, `"path":"` + fx.dir + `/bin/echo"`, `"network":"tcp"`, `"addr":"127.0.0.1:9501"`} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("JSON lacks %s:\n%s", frag, b)
		}
	}
	if got := clone(t, c); !reflect.DeepEqual(got, c) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", got, c)
	}
}

func TestUnits(t *testing.T) {
	sizes := map[string]Size{"0": 0, "100": 100, "1K": 1024, "1kb": 1024, "2KiB": 2048, "2M": 2 << 20,
		"3 MB": 3 << 20, "1MiB": 1 << 20, "1G": 1 << 30, "4GiB": 4 << 30, "7b": 7}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "1T", "1.5M", "-1", "1 2", "99999999999G"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	strs := map[Size]string{0: "0B", 100: "100B", 2 << 20: "2MiB", 1536 << 10: "1536KiB", 3 << 30: "3GiB"}
	for s, want := range strs {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
	if got := Duration(1500 * time.Millisecond).String(); got != "1.5s" {
		t.Errorf("Duration.String() = %q", got)
	}
}

func TestSuggest(t *testing.T) {
	keys := keysOf(reflect.TypeFor[Config]())
	tests := map[string]string{
		"wroker_num":           "worker_num",
		"Worker_Num":           "worker_num",
		"worker-num":           "worker_num",
		"listener":             "listeners",
		"max_requests":         "max_request",
		"heartbeat":            "heartbeat_idle_time",
		"dispatch_mod":         "dispatch_mode",
		"zzz":                  "",
		"completely_different": "",
	}
	for in, want := range tests {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDocExample keeps the first example of docs/configuration.md valid.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Skip("docs not found:", err)
	}
	_, rest, _ := strings.Cut(string(doc), "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	fx := newFixture(t)
	c, err := fx.parse(example)
	if err != nil {
		t.Fatalf("the documented example does not parse:\n%v", err)
	}
	l := c.Listeners[0]
	if c.WorkerNum != 2 || l.Protocol != "length" || l.PackageLengthType != "N" || l.PackageBodyOffset != 4 || l.Addr != "127.0.0.1:9501" {
		t.Errorf("got %+v", c)
	}
}

// task_timeout and task_worker.request_timeout both bound a task; the
// smaller wins and is named.
func TestTaskLimit(t *testing.T) {
	for _, tc := range []struct {
		task, request time.Duration
		want          time.Duration
		key           string
	}{
		{0, 0, 0, "task_timeout"},
		{time.Second, 0, time.Second, "task_timeout"},
		{0, time.Second, time.Second, "task_worker.request_timeout"},
		{time.Second, 2 * time.Second, time.Second, "task_timeout"},
		{2 * time.Second, time.Second, time.Second, "task_worker.request_timeout"},
	} {
		c := &Config{TaskTimeout: Duration(tc.task)}
		c.TaskWorker.RequestTimeout = Duration(tc.request)
		if d, key := c.TaskLimit(); d != tc.want || (d > 0 && key != tc.key) {
			t.Errorf("task_timeout %s, task_worker.request_timeout %s: %s from %s, want %s from %s",
				tc.task, tc.request, d, key, tc.want, tc.key)
		}
	}
}
