package drover_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirections holds the layout of DESIGN.md: imports point one way.
func TestImportDirections(t *testing.T) {
	const mod = "github.com/drover-dev/drover/"
	// What each package may import of ours (prefixes); anything else fails.
	allowed := map[string][]string{
		"ipc":                 {},
		"internal/plugin":     {"internal/lines", "internal/pluginhook"},
		"internal/pluginhook": {},
		"internal/lines":      {},
		"internal/config":     {"shm"},
		"internal/logfile":    {},
		"internal/accesslog":  {"internal/logfile"},
		"internal/logtest":    {},
		"internal/watch":      {},
		"internal/sdnotify":   {},
		"reactor":             {"ipc"},
		// Shared tables and atomics: the layout and its protocol, used
		// alike by the master, the manager (which passes the memfd on)
		// and the SDKs; it imports nothing of ours.
		"shm":           {},
		"worker":        {"ipc", "internal/pluginhook", "internal/lines", "shm"},
		"worker/plugin": {"internal/plugin", "internal/pluginhook", "internal/lines"},
		"taskworker":    {"ipc", "internal/pluginhook", "internal/lines", "shm"},
		"manager":       {"ipc", "internal/config", "internal/plugin", "internal/pluginhook", "internal/lines", "shm"},
		// The control plane may use its data plane; the data plane never
		// names the control plane (nor reactor either of them).
		"master":       {"ipc", "reactor", "internal/config", "internal/lines", "internal/sdnotify", "master/plane", "internal/accesslog", "internal/logfile", "shm"},
		"master/plane": {"ipc", "reactor", "internal/config", "internal/accesslog", "internal/logfile", "shm"},
	}
	// Every server and SDK package has its line above: a new package must
	// say what it may import.
	all, err := exec.Command("go", "list", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, all)
	}
	for _, pkg := range strings.Fields(string(all)) {
		pkg = strings.TrimPrefix(pkg, mod)
		top, _, _ := strings.Cut(pkg, "/")
		switch top {
		case "github.com", "cmd", "e2e", "examples", "scripts":
			continue // the module root (this test), the CLI (may import all), tests, examples, tools
		}
		if _, ok := allowed[pkg]; !ok {
			t.Errorf("package %s has no entry in TestImportDirections: add what it may import (DESIGN.md's package table)", pkg)
		}
	}
	for pkg, ok := range allowed {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if !strings.HasPrefix(dep, mod) {
				continue
			}
			dep = strings.TrimPrefix(dep, mod)
			if dep == pkg {
				continue
			}
			fine := false
			for _, a := range ok {
				if dep == a || strings.HasPrefix(dep, a+"/") && a != "ipc" {
					fine = true
				}
			}
			if !fine {
				t.Errorf("%s imports %s; allowed: %v", pkg, dep, ok)
			}
		}
	}
}

// TestSDKsLeaveGoPluginOut: a Go handler links go-plugin and gRPC only when
// it opts into `launch: plugin` (import _ ".../worker/plugin"); the default
// SDK packages, and the hello example built on them, do not.
func TestSDKsLeaveGoPluginOut(t *testing.T) {
	for _, pkg := range []string{"./worker", "./taskworker", "./examples/hello"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		var bad []string
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/hashicorp/go-plugin") || strings.HasPrefix(dep, "google.golang.org/grpc") {
				bad = append(bad, dep)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s depends on %d go-plugin/gRPC packages (%s, ...): only worker/plugin may bring them into a handler", pkg, len(bad), bad[0])
		}
	}
}
