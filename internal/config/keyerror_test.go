package config

import (
	"os"
	"path/filepath"
	"testing"
)

// KeyError finds the line of a key, or of its nearest enclosing key, in
// the file a Config was loaded from.
func TestKeyErrorHasFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "drover.yaml")
	yaml := "worker_num: 1\nworker:\n  cmd: [" + bin + "]\nlisteners:\n  - address: tcp://127.0.0.1:1\n    protocol: http\n" +
		"  - protocol: http\n    address: tcp://127.0.0.1:2\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"listeners[1].address": path + ":8: listeners[1].address: in use",
		"listeners[0].address": path + ":5: listeners[0].address: in use",
		"listeners[1].mode":    path + ":7: listeners[1].mode: in use",
	} {
		if got := c.KeyError(key, "in use").Error(); got != want {
			t.Errorf("KeyError(%q) = %q, want %q", key, got, want)
		}
	}
	if got := (&Config{}).KeyError("worker_num", "bad").Error(); got != "worker_num: bad" {
		t.Errorf("without a file: %q", got)
	}
}
