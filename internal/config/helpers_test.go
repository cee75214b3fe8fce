package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a directory laid out like a project checkout:
//
//	DIR/bin/echo      an executable (mode 0755) standing in for a handler
//	DIR/bin/noexec    a file that is not executable
//	DIR/conf/         where drover.yaml lives; relative paths resolve here
//	DIR/conf/src/     a directory to watch
//	DIR/conf/run/     a directory for the pid file
//
// It lives under a short os.MkdirTemp directory so unix socket paths stay
// well under 108 bytes.
type fixture struct {
	dir  string // DIR
	conf string // DIR/conf
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "dr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	fx := fixture{dir: dir, conf: filepath.Join(dir, "conf")}
	for _, d := range []string{"bin", "conf/src", "conf/run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]os.FileMode{"bin/echo": 0o755, "bin/noexec": 0o644}
	for name, mode := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// expand replaces $DIR in s with the fixture directory.
func (fx fixture) expand(s string) string { return strings.ReplaceAll(s, "$DIR", fx.dir) }

// parse parses yaml as drover.yaml in fx.conf.
func (fx fixture) parse(yaml string) (*Config, error) {
	return Parse("drover.yaml", []byte(yaml), fx.conf)
}

// minimal is a valid config; tests append to it or replace parts.
const minimal = `worker:
  cmd: [../bin/echo]
listeners:
  - address: tcp://127.0.0.1:9501
    protocol: http
`
