package e2e

import (
	"bytes"
	"context"
	"os/exec"
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
`)
		// Bounded: a drover that accepted the handler would run on.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, droverBin, "start", "-c", s.config)
		cmd.Env = s.env
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		out := buf.String()
		if ctx.Err() != nil {
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
