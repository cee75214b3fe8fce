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
		"ipc":             {},
		"internal/plugin": {"internal/lines"},
		"internal/lines":  {},
		"internal/config": {},
		"reactor":         {"ipc"},
		"worker":          {"ipc", "internal/plugin", "internal/lines"},
		"taskworker":      {"ipc", "internal/plugin", "internal/lines"},
		"manager":         {"ipc", "internal/config", "internal/plugin", "internal/lines"},
		"master":          {"ipc", "reactor", "internal/config", "internal/lines"},
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
