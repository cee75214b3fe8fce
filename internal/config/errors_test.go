package config

import (
	"strings"
	"testing"
)

// TestParseErrors holds one case per class of problem, with the exact
// messages users see. $DIR stands for the fixture directory and /LONG for
// a directory name long enough to overflow sun_path.
func TestParseErrors(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			name: "empty file",
			yaml: "",
			want: `drover.yaml:1: empty file (want at least a worker and a listener, e.g. worker: {cmd: [./bin/app]} and listeners: [{address: "tcp://127.0.0.1:9501", protocol: http}]; see docs/configuration.md)`,
		},
		{
			name: "comment only",
			yaml: `# nothing here
`,
			want: `drover.yaml:1: empty file (want at least a worker and a listener, e.g. worker: {cmd: [./bin/app]} and listeners: [{address: "tcp://127.0.0.1:9501", protocol: http}]; see docs/configuration.md)`,
		},
		{
			name: "not a mapping",
			yaml: `- a
- b
`,
			want: `drover.yaml:1: the file must be a mapping of keys to values, got a list (start with e.g. worker_num: 2; see docs/configuration.md)`,
		},
		{
			name: "scalar document",
			yaml: `hello
`,
			want: `drover.yaml:1: the file must be a mapping of keys to values, got "hello" (start with e.g. worker_num: 2; see docs/configuration.md)`,
		},
		{
			name: "syntax error",
			yaml: `worker_num: 2
listeners: [
  - a
`,
			want: `drover.yaml:2: YAML syntax error: did not find expected node content (check the indentation and quoting on this line and the one before)`,
		},
		{
			name: "tab indentation",
			yaml: `worker:
	cmd: x
`,
			want: `drover.yaml:2: YAML syntax error: found character that cannot start any token (check the indentation and quoting on this line and the one before)`,
		},
		{
			name: "backslash in double quotes",
			yaml: `worker:
  cmd: [php, public/index.php]
  env:
    APP_RUNTIME: "Drover\Symfony\Runtime"
`,
			want: `drover.yaml:4: YAML syntax error: found unknown escape character (in double quotes a backslash starts an escape: write a PHP class name in single quotes, 'Drover\Symfony\Runtime', or double each backslash)`,
		},
		{
			name: "two documents",
			yaml: minimal + `---
worker_num: 2
`,
			want: `drover.yaml:6: a second YAML document starts here (keep one document per file)`,
		},
		{
			name: "unknown key with suggestion",
			yaml: minimal + `wroker_num: 2
`,
			want: `drover.yaml:6: unknown key "wroker_num" (did you mean "worker_num"?)`,
		},
		{
			name: "unknown key without suggestion",
			yaml: minimal + `foo: 1
`,
			want: `drover.yaml:6: unknown key "foo" (see docs/configuration.md for the valid keys)`,
		},
		{
			name: "key under the wrong section",
			yaml: minimal + `protocol: http
`,
			want: `drover.yaml:6: unknown key "protocol" (protocol belongs to an entry of listeners:)`,
		},
		{
			name: "top-level key inside worker",
			yaml: `listeners:
  - address: tcp://127.0.0.1:9501
    protocol: http
worker:
  cmd: [../bin/echo]
  worker_num: 2
  lanch: exec
  zzz: 1
`,
			want: `drover.yaml:6: worker: unknown key "worker_num" (worker_num is a top-level key; move it out of this section)
drover.yaml:7: worker: unknown key "lanch" (did you mean "launch"?)
drover.yaml:8: worker: unknown key "zzz" (want cmd, launch, dir, env, clear_env, checksum, max_memory, request_timeout, slow_request_log, start_timeout, ttl or idle_ttl)`,
		},
		{
			name: "unknown listener key",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - address: tcp://127.0.0.1:9501
    protocl: http
`,
			want: `drover.yaml:4: listeners[0]: unknown key "protocl" (did you mean "protocol"?)`,
		},
		{
			name: "duplicate key",
			yaml: minimal + `worker_num: 2
worker_num: 3
`,
			want: `drover.yaml:7: duplicate key "worker_num" (first set on line 6; keep one)`,
		},
		{
			name: "wrong types",
			yaml: minimal + `worker_num: two
daemonize: maybe
reactor_num: 1.5
max_conn: "100"
log_level: [a]
watch: {a: b}
`,
			want: `drover.yaml:6: worker_num: want an integer, got "two"
drover.yaml:7: daemonize: want true or false, got "maybe"
drover.yaml:8: reactor_num: want an integer, got "1.5"
drover.yaml:9: max_conn: want an integer, got "100"
drover.yaml:10: log_level: want a string, got a list
drover.yaml:11: watch: want a list (lines starting with "- "), got a mapping`,
		},
		{
			name: "wrong section types",
			yaml: `worker: ../bin/echo
listeners: tcp://127.0.0.1:9501
`,
			want: `drover.yaml:1: worker: want a mapping (indented key: value lines), got "../bin/echo"
drover.yaml:2: listeners: want a list (lines starting with "- "), got "tcp://127.0.0.1:9501"`,
		},
		{
			name: "wrong types in lists and maps",
			yaml: `worker:
  cmd: [../bin/echo, [x]]
  env: {A: {b: c}}
listeners:
  - tcp://127.0.0.1:9501
  -
`,
			want: `drover.yaml:2: worker.cmd[1]: want a string, got a list
drover.yaml:3: worker.env.A: want a string, got a mapping (quote it if it is meant literally)
drover.yaml:5: listeners[0]: want a mapping (indented key: value lines), got "tcp://127.0.0.1:9501"
drover.yaml:6: listeners[1]: want a mapping (indented key: value lines), got nothing`,
		},
		{
			name: "bad durations",
			yaml: minimal + `max_wait_time: -1
upgrade_timeout: "-5s"
heartbeat_idle_time: soon
`,
			want: `drover.yaml:6: max_wait_time: -1 must not be negative (want 0 or more seconds)
drover.yaml:7: upgrade_timeout: -5s must not be negative (want 0 or more seconds)
drover.yaml:8: heartbeat_idle_time: want seconds (3, 0.5) or a duration with a unit ("500ms", "2m"), got "soon"`,
		},
		{
			name: "bad sizes",
			yaml: minimal + `package_max_length: 2X
buffer_output_size: -1
`,
			want: `drover.yaml:6: package_max_length: want bytes (65536) or a size with a unit ("64K", "2M", "1G"), got "2X"
drover.yaml:7: buffer_output_size: -1 must not be negative (want 0 or more bytes)`,
		},
		{
			name: "out of range",
			yaml: minimal + `worker_num: 0
task_worker_num: 2000
reactor_num: 65
max_request: -1
dispatch_mode: 9
dispatch_queue_max: 0
package_max_length: 10
max_conn: 0
upgrade_timeout: 0
`,
			want: `drover.yaml:6: worker_num: 0 is out of range (want 1 to 1024)
drover.yaml:7: task_worker_num: 2000 is out of range (want 0 to 1024)
drover.yaml:7: task_worker.cmd: required when task_worker_num > 0 (add task_worker: {cmd: [../bin/tasks]}, or set task_worker_num: 0)
drover.yaml:8: reactor_num: 65 is out of range (want 1 to 64)
drover.yaml:9: max_request: -1 is out of range (want at least 0)
drover.yaml:10: dispatch_mode: 9 is not a dispatch mode (want 0 for the protocol's default, 1 round-robin, 2 fixed by connection, 3 idle worker first, 4 by client IP or 5 by bound uid)
drover.yaml:11: dispatch_queue_max: 0 is out of range (want at least 1)
drover.yaml:12: package_max_length: 10 bytes is too small (want at least 64 bytes; sizes take K, M and G suffixes, e.g. 2M)
drover.yaml:13: max_conn: 0 is out of range (want at least 1)
drover.yaml:14: upgrade_timeout: must be more than 0 (e.g. 10 for ten seconds, or "500ms")`,
		},
		{
			name: "unknown enum values",
			yaml: `log_level: loud
log_format: xml
worker:
  cmd: [../bin/echo]
  launch: fork
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: htp}
`,
			want: `drover.yaml:1: log_level: unknown value "loud" (want debug, info, warn or error)
drover.yaml:2: log_format: unknown value "xml" (want text or json)
drover.yaml:5: worker.launch: unknown value "fork" (want auto, plugin or exec)
drover.yaml:7: listeners[0].protocol: unknown value "htp" (want http, length, eof or raw)`,
		},
		{
			name: "worker missing",
			yaml: `listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
`,
			want: `drover.yaml:1: worker: required (add a handler, e.g. worker: {cmd: [../bin/app]})`,
		},
		{
			name: "worker cmd missing",
			yaml: `worker:
  launch: exec
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
`,
			want: `drover.yaml:1: worker.cmd: required (the handler's argv, e.g. cmd: [../bin/app, --flag])`,
		},
		{
			name: "handler executable missing",
			yaml: `worker:
  cmd: [../bin/missing]
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
`,
			want: `drover.yaml:2: worker.cmd: ../bin/missing: no such file (build it first, e.g. make build; paths are relative to the handler's dir)`,
		},
		{
			name: "handler not executable, a directory, not in PATH",
			yaml: `task_worker_num: 1
worker:
  cmd: ../bin/noexec
task_worker:
  cmd: ../bin
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
`,
			want: `drover.yaml:3: worker.cmd: ../bin/noexec: is not executable (chmod +x it)
drover.yaml:5: task_worker.cmd: ../bin: is a directory (want the handler executable)`,
		},
		{
			name: "handler not in PATH",
			yaml: `worker:
  cmd: [no-such-handler-xyz, -v]
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
`,
			want: `drover.yaml:2: worker.cmd: no-such-handler-xyz: not found in $PATH (install it, or give a path such as ./bin/no-such-handler-xyz, relative to the handler's dir)`,
		},
		{
			name: "handler dir missing",
			yaml: `worker:
  cmd: [./echo]
  dir: ../nope
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
`,
			want: `drover.yaml:3: worker.dir: ../nope: no such file or directory (create it or fix the path; relative paths resolve against the config file's directory)`,
		},
		{
			name: "task worker required",
			yaml: minimal + `task_worker_num: 2
`,
			want: `drover.yaml:6: task_worker.cmd: required when task_worker_num > 0 (add task_worker: {cmd: [../bin/tasks]}, or set task_worker_num: 0)`,
		},
		{
			name: "handler options",
			yaml: `worker:
  cmd: ["", x]
  checksum: abc
  max_memory: 512
  start_timeout: 0
  env: {"A=B": x}
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
`,
			want: `drover.yaml:2: worker.cmd: the first element is empty (want the handler executable, e.g. ../bin/app)
drover.yaml:3: worker.checksum: want the 64 hex digits of the executable's sha256 (as printed by sha256sum), got "abc"
drover.yaml:4: worker.max_memory: 512 bytes is less than 1MiB (sizes without a unit are bytes; did you mean 512M?)
drover.yaml:5: worker.start_timeout: must be more than 0 (e.g. 10 for ten seconds, or "500ms")
drover.yaml:6: worker.env["A=B"]: variable names cannot contain "=" or NUL (write NAME: value)`,
		},
		{
			name: "paths that do not exist",
			yaml: minimal + `watch: [src, nope]
pid_file: nodir/drover.pid
log_file: run
`,
			want: `drover.yaml:6: watch[1]: nope: no such file or directory (create it or remove it from watch; relative paths resolve against the config file's directory)
drover.yaml:7: pid_file: directory $DIR/conf/nodir does not exist (create it or choose another path; relative paths resolve against the config file's directory)
drover.yaml:8: log_file: run is a directory (want a file path, e.g. run/drover.log)`,
		},
		{
			name: "unknown user and group",
			yaml: minimal + `user: no-such-user-xyz
group: no-such-group-xyz
`,
			want: `drover.yaml:6: user: unknown user no-such-user-xyz (create it, or remove user: to run workers as the current user)
drover.yaml:7: group: unknown group no-such-group-xyz (create it, or remove group: to keep the user's group)`,
		},
		{
			name: "listeners missing",
			yaml: `worker: {cmd: [../bin/echo]}
`,
			want: `drover.yaml:1: listeners: required (add at least one, e.g. listeners: [{address: "tcp://127.0.0.1:9501", protocol: http}])`,
		},
		{
			name: "listeners empty",
			yaml: `worker: {cmd: [../bin/echo]}
listeners: []
`,
			want: `drover.yaml:2: listeners: required (add at least one, e.g. listeners: [{address: "tcp://127.0.0.1:9501", protocol: http}])`,
		},
		{
			name: "bad addresses",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - protocol: http
  - {address: "127.0.0.1:9501", protocol: http}
  - {address: "http://127.0.0.1:9501", protocol: http}
  - {address: "tcp://127.0.0.1", protocol: http}
  - {address: "tcp://127.0.0.1:99999", protocol: http}
  - {address: "unix://", protocol: http}
  - {address: "unix://nodir/s.sock", protocol: http}
  - {address: "unix:///LONG/s.sock", protocol: http}
`,
			want: `drover.yaml:3: listeners[0].address: required (e.g. tcp://127.0.0.1:9501, unix:///run/drover.sock or udp://0.0.0.0:9502)
drover.yaml:4: listeners[1].address: 127.0.0.1:9501 has no scheme (want tcp://host:port, unix:///path/to.sock or udp://host:port)
drover.yaml:5: listeners[2].address: unknown scheme "http" (want tcp://host:port, unix:///path/to.sock or udp://host:port)
drover.yaml:6: listeners[3].address: tcp://127.0.0.1: want host:port after tcp:// (e.g. tcp://127.0.0.1:9501; an empty host means all interfaces)
drover.yaml:7: listeners[4].address: tcp://127.0.0.1:99999: port 99999 is not a number from 0 to 65535 (e.g. tcp://127.0.0.1:9501)
drover.yaml:8: listeners[5].address: unix://: no socket path (e.g. unix:///run/drover.sock, or unix://drover.sock relative to the config file's directory)
drover.yaml:9: listeners[6].address: directory $DIR/conf/nodir does not exist (create it or choose another path; relative paths resolve against the config file's directory)
drover.yaml:10: listeners[7].address: socket path /xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/s.sock is 108 bytes long (want fewer than 108; choose a shorter path)`,
		},
		{
			name: "duplicate address",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - {address: "tcp://127.0.0.1:9501", protocol: http}
  - {address: "tcp://127.0.0.1:9502", protocol: http}
  - {address: "tcp://127.0.0.1:09501", protocol: raw}
`,
			want: `drover.yaml:5: listeners[2].address: tcp://127.0.0.1:09501 is already used by listeners[0] (give each listener its own address)`,
		},
		{
			name: "protocol problems",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - address: tcp://127.0.0.1:9501
  - address: udp://127.0.0.1:9502
    protocol: http
`,
			want: `drover.yaml:3: listeners[0].protocol: required (want http, length, eof or raw)
drover.yaml:5: listeners[1].protocol: http does not apply to datagrams (want raw for a udp:// listener)`,
		},
		{
			name: "length options",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - address: tcp://127.0.0.1:9501
    protocol: length
    package_length_type: Q
    package_length_offset: -1
    package_body_offset: -4
  - address: tcp://127.0.0.1:9502
    protocol: length
    package_max_length: 64
    package_length_offset: 62
    package_body_offset: 65
  - address: tcp://127.0.0.1:9503
    protocol: length
    package_max_length: 10
`,
			want: `drover.yaml:5: listeners[0].package_length_type: unknown value "Q" (want c or C for 1 byte, s, S, n or v for 2, N, V, l or L for 4; N is big-endian unsigned)
drover.yaml:6: listeners[0].package_length_offset: -1 must not be negative (want the byte offset of the length field)
drover.yaml:7: listeners[0].package_body_offset: -4 must not be negative (want 0 when the length counts the whole packet, or the header size when it counts the body)
drover.yaml:11: listeners[1].package_length_offset: 62 plus the 4-byte length field does not fit in package_max_length 64 (lower the offset or raise package_max_length)
drover.yaml:12: listeners[1].package_body_offset: 65 is larger than package_max_length 64 (lower it or raise package_max_length)
drover.yaml:15: listeners[2].package_max_length: 10 bytes is too small (want 0 to inherit the top-level package_max_length, or at least 64)`,
		},
		{
			name: "eof options",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - address: tcp://127.0.0.1:9501
    protocol: eof
  - address: tcp://127.0.0.1:9502
    protocol: eof
    package_eof: "123456789"
`,
			want: `drover.yaml:3: listeners[0].package_eof: required for protocol eof (e.g. package_eof: "\r\n")
drover.yaml:7: listeners[1].package_eof: 9 bytes is too long (want 1 to 8 bytes)`,
		},
		{
			name: "options that do not apply",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - address: tcp://127.0.0.1:9501
    protocol: http
    package_eof: "\r\n"
    package_length_type: N
  - address: tcp://127.0.0.1:9502
    protocol: eof
    package_eof: "\n"
    package_length_offset: 0
    package_body_offset: 4
`,
			want: `drover.yaml:5: listeners[0].package_eof: applies to protocol eof only (remove it, or set protocol: eof)
drover.yaml:6: listeners[0].package_length_type: applies to protocol length only (remove it, or set protocol: length)
drover.yaml:10: listeners[1].package_length_offset: applies to protocol length only (remove it, or set protocol: length)
drover.yaml:11: listeners[1].package_body_offset: applies to protocol length only (remove it, or set protocol: length)`,
		},
		{
			name: "bad merge",
			yaml: `worker: {cmd: [../bin/echo]}
listeners:
  - <<: 5
    address: tcp://127.0.0.1:9501
    protocol: http
`,
			want: `drover.yaml:3: listeners[0]: << wants a mapping or a list of mappings, got "5" (e.g. <<: *defaults)`,
		},
		{
			name: "non-scalar key",
			yaml: minimal + `? [a]
: b
`,
			want: `drover.yaml:6: keys must be plain names, got a list (write key: value)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.ReplaceAll(tt.yaml, "/LONG", "/"+strings.Repeat("x", 100))
			c, err := fx.parse(y)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if got, want := err.Error(), fx.expand(tt.want); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
