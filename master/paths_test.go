package master

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ensureRunDir accepts this user's directory of mode 0700 or 0755
// (systemd's RuntimeDirectory), refuses one others may write, and calls
// whatever another user put at the path — a directory, a symbolic link, a
// file — errNotOurs, which runDir skips for its fallback.
func TestEnsureRunDir(t *testing.T) {
	base := t.TempDir()
	for _, mode := range []os.FileMode{0o700, 0o755} {
		d := filepath.Join(base, mode.String())
		if err := os.Mkdir(d, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, mode)
		if err := ensureRunDir(d, false); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	d := filepath.Join(base, "open")
	os.Mkdir(d, 0o777)
	os.Chmod(d, 0o777)
	if err := ensureRunDir(d, false); err == nil || !strings.Contains(err.Error(), "chmod go-w") {
		t.Errorf("a 0777 directory: err = %v, want a refusal saying chmod go-w", err)
	}
	if err := ensureRunDir(filepath.Join(base, "new"), false); err != nil {
		t.Errorf("a new directory: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the squatting cases need root to make entries of another user; this test runs as uid", os.Geteuid())
	}
	for _, kind := range []string{"dir", "symlink", "file"} {
		p := filepath.Join(base, "squat-"+kind)
		switch kind {
		case "dir":
			os.Mkdir(p, 0o755)
		case "symlink":
			os.Symlink(base, p)
		case "file":
			os.WriteFile(p, nil, 0o644)
		}
		if err := os.Lchown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := ensureRunDir(p, false); !errors.Is(err, errNotOurs) {
			t.Errorf("a %s of uid 65534: err = %v, want errNotOurs", kind, err)
		}
	}
}
