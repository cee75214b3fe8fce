package master

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/drover-dev/drover/internal/config"
)

// RunDir returns the per-user directory holding control sockets and default
// pid files: $XDG_RUNTIME_DIR/drover, else /tmp/drover-UID. It is created
// 0700 and refused if another user owns it or others can write to it.
func RunDir() (string, error) {
	dir := filepath.Join(os.TempDir(), "drover-"+strconv.Itoa(os.Geteuid()))
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		dir = filepath.Join(x, "drover")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("runtime directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("runtime directory %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("runtime directory %s is not a private directory of this user (want mode 0700, owner uid %d): remove it or set XDG_RUNTIME_DIR", dir, os.Geteuid())
	}
	return dir, nil
}

// instanceKey names an instance by its absolute config path.
func instanceKey(configFile string) string {
	sum := sha256.Sum256([]byte(configFile))
	return hex.EncodeToString(sum[:6])
}

// ControlPath returns the control socket of the instance started with the
// config file at configFile (an absolute path).
func ControlPath(configFile string) (string, error) {
	dir, err := RunDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, instanceKey(configFile)+".sock"), nil
}

// PIDPath returns the pid file of an instance: pid_file if set, else one in
// the runtime directory.
func PIDPath(cfg *config.Config) (string, error) {
	if cfg.PidFile != "" {
		return cfg.PidFile, nil
	}
	dir, err := RunDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, instanceKey(cfg.File)+".pid"), nil
}

// Instances returns the control sockets in the runtime directory: one per
// instance this user runs (or ran and left a stale socket behind).
func Instances() ([]string, error) {
	dir, err := RunDir()
	if err != nil {
		return nil, err
	}
	return filepath.Glob(filepath.Join(dir, "*.sock"))
}
