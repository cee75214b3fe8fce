package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/config"
)

func TestPidFileStaleIsRemovedAndLogged(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	live := exec.Command("sleep", "600")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })

	for _, tc := range []struct{ name, content, cause string }{
		{"dead", strconv.Itoa(dead.Process.Pid), "no process has pid"},
		{"not drover", strconv.Itoa(live.Process.Pid), "not a drover master"},
		{"self", strconv.Itoa(os.Getpid()), "this process"},
		{"garbage", "x\n", "not a pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := &config.Config{File: filepath.Join(dir, "drover.yaml"), PidFile: filepath.Join(dir, "drover.pid")}
			os.WriteFile(cfg.PidFile, []byte(tc.content), 0o644)
			var buf bytes.Buffer
			if err := checkPIDFile(cfg, logrus.NewEntry(newLogger(&buf, "json", "info"))); err != nil {
				t.Fatalf("checkPIDFile: %v", err)
			}
			if _, err := os.Stat(cfg.PidFile); err == nil {
				t.Error("stale pid file left in place")
			}
			if !strings.Contains(buf.String(), "stale pid file removed") || !strings.Contains(buf.String(), tc.cause) {
				t.Errorf("log: %s(want the cause %q)", buf.String(), tc.cause)
			}
		})
	}
}

func TestPidFileMissingIsFine(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{File: filepath.Join(dir, "drover.yaml"), PidFile: filepath.Join(dir, "drover.pid")}
	var buf bytes.Buffer
	if err := checkPIDFile(cfg, logrus.NewEntry(newLogger(&buf, "json", "info"))); err != nil || buf.Len() != 0 {
		t.Fatalf("checkPIDFile without a pid file: %v, log %q", err, buf.String())
	}
}
