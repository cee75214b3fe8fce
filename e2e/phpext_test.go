package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// phpExtDir is the folder with drover's PHP extension and the ini that
// loads it (scripts/php-ext.sh), "" when it could not be built here
// (no phpize): PHP workers then run the pure-PHP SDK.
var phpExtDir string

// buildPHPExt builds drover's PHP extension as make php-ext does: on CI
// (CI set) it must build; elsewhere a machine without PHP's headers runs
// the PHP tests on the pure-PHP SDK.
func buildPHPExt() error {
	if _, err := exec.LookPath("php"); err != nil {
		return nil // the PHP tests say what is missing
	}
	cmd := exec.Command("../scripts/php-ext.sh")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if os.Getenv("CI") != "" {
		cmd.Env = append(os.Environ(), "REQUIRE=1")
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/php-ext.sh: %v", err)
	}
	dir, err := filepath.Abs("../bin/php-ext")
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "drover.so")); err == nil {
		phpExtDir = dir
	}
	return nil
}

var (
	phpCmdLine = regexp.MustCompile(`^(\s*)(- )?cmd: \[php\b`)
	inlineEnv  = regexp.MustCompile(`^\s*env: \{`)
)

// withPHPExt gives every PHP worker of cfg (a `cmd: [php, …]` entry)
// PHP_INI_SCAN_DIR=:phpExtDir in its env, as the examples do, so that the
// PHP tests run on the SDK with drover's extension whenever it is built; a
// test that wants the pure-PHP SDK sets DROVER_PHP_NATIVE: "0" in the same
// env. An env the entry has already (an inline map) gets the key added.
func withPHPExt(cfg string) string {
	if phpExtDir == "" || !strings.Contains(cfg, "cmd: [php") {
		return cfg
	}
	entry := "PHP_INI_SCAN_DIR: ':" + phpExtDir + "'"
	lines := strings.Split(cfg, "\n")
	depth := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	var adds []int        // after which lines
	var addLines []string // what goes there
	for i, l := range lines {
		m := phpCmdLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indent := m[1]
		first := i // the entry's first line
		if m[2] != "" {
			indent += "  "
		} else {
			for first > 0 {
				p := lines[first-1]
				if strings.TrimSpace(p) != "" && (depth(p) < len(indent) || depth(p) == len(indent)-2 && strings.HasPrefix(p[depth(p):], "- ")) {
					if depth(p) == len(indent)-2 && strings.HasPrefix(p[depth(p):], "- ") {
						first-- // a list item whose first key is not cmd
					}
					break
				}
				first--
			}
		}
		found := false
		for j := first; j < len(lines); j++ {
			p := lines[j]
			if j > i && strings.TrimSpace(p) != "" && (depth(p) < len(indent) || depth(p) == len(indent)-2 || depth(p) == len(indent) && strings.HasPrefix(p[depth(p):], "- ")) {
				break // the entry ends
			}
			if depth(p) == len(indent) && strings.TrimSpace(p) == "env:" {
				if !strings.Contains(cfg, "PHP_INI_SCAN_DIR") {
					adds = append(adds, j)
					addLines = append(addLines, indent+"  "+entry)
				}
				found = true
				break
			}
			if depth(p) == len(indent) && inlineEnv.MatchString(p) {
				if !strings.Contains(p, "PHP_INI_SCAN_DIR") {
					lines[j] = strings.Replace(p, "env: {", "env: {"+entry+", ", 1)
				}
				found = true
				break
			}
		}
		if !found {
			adds = append(adds, i)
			addLines = append(addLines, indent+"env: {"+entry+"}")
		}
	}
	var out []string
	for i, l := range lines {
		out = append(out, l)
		for k, a := range adds {
			if a == i {
				out = append(out, addLines[k])
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestWithPHPExtAddsTheEnvToEveryPHPWorker(t *testing.T) {
	defer func(d string) { phpExtDir = d }(phpExtDir)
	phpExtDir = "/x"
	const e = "PHP_INI_SCAN_DIR: ':/x'"
	for _, c := range []struct{ in, want string }{
		{"worker_num: 2\nworker:\n  cmd: [php, a.php]\n  launch: exec\nlisteners:\n  - address: x\n",
			"worker_num: 2\nworker:\n  cmd: [php, a.php]\n  env: {" + e + "}\n  launch: exec\nlisteners:\n  - address: x\n"},
		{"worker:\n  cmd: [php, a.php]\n  launch: exec\n  env: {APP: 'x'}\n",
			"worker:\n  cmd: [php, a.php]\n  launch: exec\n  env: {" + e + ", APP: 'x'}\n"},
		{"worker:\n  env: {APP: 'x'}\n  cmd: [php, a.php]\ntask_worker:\n  cmd: [php, b.php]\n",
			"worker:\n  env: {" + e + ", APP: 'x'}\n  cmd: [php, a.php]\ntask_worker:\n  cmd: [php, b.php]\n  env: {" + e + "}\n"},
		{"processes:\n  - name: p\n    env: {A: b}\n    cmd: [php, p.php]\n  - cmd: [php, q.php]\n    dir: /\n",
			"processes:\n  - name: p\n    env: {" + e + ", A: b}\n    cmd: [php, p.php]\n  - cmd: [php, q.php]\n    env: {" + e + "}\n    dir: /\n"},
		{"worker:\n  cmd: [{{bin}}/hello]\n", "worker:\n  cmd: [{{bin}}/hello]\n"},
		{"worker:\n  cmd: [php, a.php]\n  env:\n    A: b\n", "worker:\n  cmd: [php, a.php]\n  env:\n    " + e + "\n    A: b\n"},
	} {
		if got := withPHPExt(c.in); got != c.want {
			t.Errorf("withPHPExt(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}
