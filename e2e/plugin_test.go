package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPluginLaunchNeedsPluginSupport: `launch: plugin` of a Go handler built
// without worker/plugin (examples/hello) is refused when drover starts, with
// a message that names the key, the handler and the fix; under the default
// `launch: auto` the same handler starts with exec.
func TestPluginLaunchNeedsPluginSupport(t *testing.T) {
	t.Run("plugin", func(t *testing.T) {
		s := newServer(t, `
worker_num: 1
worker:
  cmd: [{{bin}}/hello]
  launch: plugin
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
log_format: text # the refusal as a terminal shows it (json escapes its quotes)
`)
		out, ran, err := startBounded(s)
		if ran {
			t.Fatalf("launch: plugin of a handler without plugin support started and ran for 30s:\n%s", out)
		}
		if err == nil {
			t.Fatalf("launch: plugin of a handler without plugin support started:\n%s", out)
		}
		for _, want := range []string{"worker.launch", "/hello", `import _ "github.com/drover-dev/drover/worker/plugin"`, "launch: exec"} {
			if !strings.Contains(out, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, out)
			}
		}
	})
	t.Run("auto", func(t *testing.T) {
		s := startServer(t, `
worker_num: 1
worker:
  cmd: [{{bin}}/hello]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
		for _, r := range s.status() {
			if r.Role == "worker" && r.Launch != "exec" {
				t.Errorf("worker %d: launch %q; want exec for a handler without worker/plugin", r.ID, r.Launch)
			}
		}
	})
}

// TestPluginLaunchWithoutWorkerPlugin: a handler that links go-plugin for a
// use of its own but does not import worker/plugin is launched as a plugin
// by auto (the build info lists modules, not packages); its start then
// fails with the SDK's message naming the import and launch: exec.
func TestPluginLaunchWithoutWorkerPlugin(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "linksgoplugin")
	if out, err := exec.Command("go", "build", "-o", exe, "./testdata/linksgoplugin").CombinedOutput(); err != nil {
		t.Fatalf("build testdata/linksgoplugin: %v\n%s", err, out)
	}
	s := newServer(t, `
worker_num: 1
worker:
  cmd: [`+exe+`]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	out, ran, err := startBounded(s)
	if ran || err == nil {
		t.Fatalf("a handler without worker/plugin served a plugin launch (ran %v, err %v):\n%s", ran, err, out)
	}
	for _, want := range []string{"launch: plugin", `import _ \"github.com/drover-dev/drover/worker/plugin\"`, "launch: exec", "exited with code 78"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failure does not say %q:\n%s", want, out)
		}
	}
}

// startBounded runs drover start on s's config in the foreground for at
// most 30 s: ran reports that it was still running then (and was killed).
func startBounded(s *server) (out string, ran bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, droverBin, "start", "-c", s.config)
	cmd.Env = s.env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	return buf.String(), ctx.Err() != nil, err
}
