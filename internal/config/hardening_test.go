package config

import (
	"strings"
	"testing"
)

// clear_env is on by default for workers, task workers and processes, and
// can be turned off per handler.
func TestClearEnvDefault(t *testing.T) {
	c, err := Parse("drover.yaml", []byte(`
worker: {cmd: [sh]}
task_worker_num: 1
task_worker: {cmd: [sh], clear_env: false}
processes: [{name: p, cmd: [sh]}]
listeners: [{address: "tcp://127.0.0.1:0", protocol: http}]
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Worker.ClearEnv || c.TaskWorker.ClearEnv || !c.Processes[0].Handler.ClearEnv {
		t.Fatalf("clear_env: worker %v, task_worker %v (set false), process %v; want true, false, true",
			c.Worker.ClearEnv, c.TaskWorker.ClearEnv, c.Processes[0].Handler.ClearEnv)
	}
}

// A unix listener's mode, owner and group are checked; they do not apply
// to tcp listeners.
func TestListenerSocketKeys(t *testing.T) {
	parse := func(l string) (*Config, error) {
		return Parse("drover.yaml", []byte("worker: {cmd: [sh]}\nlisteners: ["+l+"]\n"), t.TempDir())
	}
	c, err := parse(`{address: "unix://s.sock", protocol: http}`)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := c.Listeners[0].SocketMode(); !ok || m != 0o660 {
		t.Fatalf("default mode %o (%v), want 0660", m, ok)
	}
	c, err = parse(`{address: "unix://s.sock", protocol: http, mode: 0666, owner: root, group: "0"}`)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Listeners[0].SocketMode(); m != 0o666 {
		t.Fatalf("mode 0666 read as %o", m)
	}
	if uid, gid, err := c.Listeners[0].SocketOwner(); err != nil || uid != 0 || gid != 0 {
		t.Fatalf("owner root, group 0: %d %d %v", uid, gid, err)
	}
	for _, tc := range []struct{ l, want string }{
		{`{address: "unix://s.sock", protocol: http, mode: 0999}`, `listeners[0].mode: 0999 is not an octal file mode`},
		{`{address: "unix://s.sock", protocol: http, mode: 01777}`, `listeners[0].mode: 01777 is not an octal file mode`},
		{`{address: "unix://s.sock", protocol: http, owner: no-such-user-x}`, `listeners[0].owner: unknown user "no-such-user-x"`},
		{`{address: "unix://s.sock", protocol: http, group: no-such-group-x}`, `listeners[0].group: unknown group "no-such-group-x"`},
		{`{address: "tcp://127.0.0.1:0", protocol: http, mode: 0660}`, `listeners[0].mode: applies to unix:// listeners only`},
	} {
		_, err := parse(tc.l)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.l, err, tc.want)
		}
	}
}
