package manager

import (
	"os"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// defaultPath is PATH for a handler when the manager has none (systemd's
// default for services).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// keptEnv reports whether a variable of the manager passes into a cleared
// environment: what systemd gives a service (PATH, the locale), the time
// zone, and the race detector's options (not a secret; drover's tests and
// race-built handlers use them). Everything else — HOME, SUDO_*,
// SSH_AUTH_SOCK, NOTIFY_SOCKET, credentials in variables — stays with the
// master.
func keptEnv(kv string) bool {
	name, _, _ := strings.Cut(kv, "=")
	switch name {
	case "PATH", "LANG", "LANGUAGE", "TZ", "GORACE":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}

// serviceEnv are the variables systemd gives the master (sd_notify(3),
// sd_listen_fds(3), sd_watchdog_enabled(3)). They are the master's alone,
// whatever clear_env says: a handler with NOTIFY_SOCKET could tell systemd
// that the service is ready or stopping, and the others describe the
// master's descriptors and duties.
var serviceEnv = []string{"NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"}

func isServiceEnv(kv string) bool {
	name, _, _ := strings.Cut(kv, "=")
	return slices.Contains(serviceEnv, name)
}

// clearedEnv completes a cleared environment: PATH when the manager has
// none, and the identity of the user the handler runs as.
func clearedEnv(env []string, cred *syscall.Credential) []string {
	hasPath := false
	for _, kv := range env {
		hasPath = hasPath || strings.HasPrefix(kv, "PATH=")
	}
	if !hasPath {
		env = append(env, "PATH="+defaultPath)
	}
	return append(env, identityEnv(cred)...)
}

// identityEnv is HOME, USER and LOGNAME of the user a handler runs as
// (cred's uid, or the manager's), as a login or systemd's User= sets them.
func identityEnv(cred *syscall.Credential) []string {
	uid := os.Geteuid()
	if cred != nil {
		uid = int(cred.Uid)
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return nil // a uid without a passwd entry: no name, no home
	}
	return []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username}
}

// expandEnv resolves a worker.env value: "$NAME" is the manager's NAME
// (empty if unset), as php-fpm's env[NAME] = $NAME; a leading "$$" stands
// for "$"; anything else is literal.
func expandEnv(v string) string {
	switch {
	case strings.HasPrefix(v, "$$"):
		return v[1:]
	case len(v) > 1 && v[0] == '$' && envName.MatchString(v[1:]):
		return os.Getenv(v[1:])
	}
	return v
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
