package master

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/drover-dev/drover/internal/config"
)

// RunDirEnv names an environment variable that sets the runtime directory
// explicitly (for tests, or a directory of the operator's choosing). The
// CLI must see the same value as the master to find it.
const RunDirEnv = "DROVER_RUNTIME_DIR"

// rootRunDir is root's runtime directory: systemd's RuntimeDirectory=drover
// creates it, and no other user can create it first.
const rootRunDir = "/run/drover"

// RunDir returns the directory holding control sockets and default pid
// files: $DROVER_RUNTIME_DIR if set; else /run/drover for root;
// $XDG_RUNTIME_DIR/drover for other users that have one; else
// /tmp/drover-UID, or, when another user took that name first,
// $XDG_CACHE_HOME/drover (~/.cache/drover). See runDir for the checks.
func RunDir() (string, error) {
	dir, _, err := runDir()
	return dir, err
}

// runDir is RunDir that also says why it did not use /tmp/drover-UID
// ("" when it did, or did not try): the master logs it.
//
// A directory is created 0700 and accepted when it is a directory (not a
// link) owned by this user that neither group nor others may write: 0700,
// or 0755 as systemd creates a RuntimeDirectory. A shared temp directory
// lets any user create /tmp/drover-UID first; such a squatted name is
// skipped for the fallback, every other unsafe directory is an error
// (it is this user's to fix).
func runDir() (dir, skipped string, err error) {
	if d := os.Getenv(RunDirEnv); d != "" {
		return d, "", ensureRunDir(d, true)
	}
	uid := os.Geteuid()
	if uid == 0 {
		// Where /run exists (it does wherever systemd runs); elsewhere,
		// the temp directory with its fallback.
		if fi, err := os.Stat(filepath.Dir(rootRunDir)); err == nil && fi.IsDir() {
			return rootRunDir, "", ensureRunDir(rootRunDir, false)
		}
	} else if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		d := filepath.Join(x, "drover")
		return d, "", ensureRunDir(d, false)
	}
	tmp := filepath.Join(os.TempDir(), "drover-"+strconv.Itoa(uid))
	err = ensureRunDir(tmp, false)
	if err == nil || !errors.Is(err, errNotOurs) {
		return tmp, "", err
	}
	cache, cerr := os.UserCacheDir()
	if cerr != nil {
		return "", "", fmt.Errorf("%w; and no fallback: %v (set XDG_RUNTIME_DIR or %s)", err, cerr, RunDirEnv)
	}
	d := filepath.Join(cache, "drover")
	if cerr := ensureRunDir(d, true); cerr != nil {
		return "", "", fmt.Errorf("%w; and the fallback: %w", err, cerr)
	}
	return d, err.Error(), nil
}

// errNotOurs marks a runtime directory path that another user's entry
// (directory, link or file) holds.
var errNotOurs = errors.New("owned by another user")

// ensureRunDir creates dir (0700; with parents when parents is set) if
// missing, and checks it is safe to keep sockets in: a directory, not a
// symbolic link, owned by this user, not writable by group or others.
// Whatever another user put at the path is errNotOurs.
func ensureRunDir(dir string, parents bool) error {
	mkdir := os.Mkdir
	if parents {
		mkdir = os.MkdirAll
	}
	mkErr := mkdir(dir, 0o700)
	fi, err := os.Lstat(dir)
	if err != nil {
		if mkErr != nil {
			err = mkErr
		}
		return fmt.Errorf("runtime directory %s: %w (set %s to a directory of this user)", dir, err, RunDirEnv)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case ok && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("runtime directory %s is %w (uid %d), not uid %d's: remove it, or set %s",
			dir, errNotOurs, st.Uid, os.Geteuid(), RunDirEnv)
	case !ok || !fi.IsDir():
		return fmt.Errorf("runtime directory %s is not a directory (%s): remove it, or set %s", dir, fi.Mode().Type(), RunDirEnv)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("runtime directory %s may be written by group or others (mode %04o): `chmod go-w %s` (0700 or 0755), or set %s",
			dir, fi.Mode().Perm(), dir, RunDirEnv)
	}
	return nil
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
