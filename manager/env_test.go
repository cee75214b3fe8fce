package manager

import (
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
)

// With clear_env (the default), a handler gets the locale, PATH, its
// user's identity, its env and drover's variables, and none of the
// master's other variables; "$NAME" in env takes the master's NAME.
func TestWorkerEnvCleared(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
	t.Setenv("SUDO_USER", "admin")
	t.Setenv("DB_PASSWORD", "hunter2")
	t.Setenv("LC_TIME", "C.UTF-8")
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("HOME", "/nonexistent-master-home")
	h := &config.Handler{ClearEnv: true, Env: map[string]string{
		"APP_ENV": "prod", "DB": "$DB_PASSWORD", "PRICE": "$$5", "UNSET": "$NO_SUCH_VAR_X"}}
	cred := &syscall.Credential{Uid: 65534, Gid: 65534}
	env := workerEnv(ipc.RoleWorker, 1, 2, launchExec, h, cred)
	want := []string{"APP_ENV=prod", "DB=hunter2", "PRICE=$5", "UNSET=", "LC_TIME=C.UTF-8", "PATH=/usr/bin:/bin",
		"DROVER_ROLE=worker", "DROVER_WORKER_ID=1"}
	if u, err := user.LookupId(strconv.Itoa(65534)); err == nil {
		want = append(want, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
	}
	for _, kv := range want {
		if !slices.Contains(env, kv) {
			t.Errorf("cleared env lacks %s: %q", kv, env)
		}
	}
	for _, kv := range env {
		for _, leak := range []string{"SSH_AUTH_SOCK=", "SUDO_USER=", "DB_PASSWORD=", "HOME=/nonexistent-master-home"} {
			if strings.HasPrefix(kv, leak) {
				t.Errorf("cleared env leaks %s", kv)
			}
		}
	}

	// Without a PATH in the master, the handler gets systemd's default.
	os.Unsetenv("PATH")
	env = workerEnv(ipc.RoleWorker, 1, 2, launchExec, h, nil)
	if !slices.Contains(env, "PATH="+defaultPath) {
		t.Errorf("cleared env without the master's PATH lacks the default: %q", env)
	}

	// clear_env: false passes the master's environment on.
	h.ClearEnv = false
	env = workerEnv(ipc.RoleWorker, 1, 2, launchExec, h, nil)
	if !slices.Contains(env, "DB_PASSWORD=hunter2") || !slices.Contains(env, "SSH_AUTH_SOCK=/tmp/ssh-agent.sock") {
		t.Errorf("with clear_env false the master's variables are missing: %q", env)
	}
}

// systemd's variables are the master's, whatever clear_env says: a
// handler with NOTIFY_SOCKET could tell systemd the service is ready or
// stopping (with NotifyAccess=all it would be believed), and LISTEN_* and
// WATCHDOG_* describe the master's descriptors and duties.
func TestWorkerEnvHasNoSystemdVariables(t *testing.T) {
	for _, kv := range serviceEnv {
		t.Setenv(kv, "x")
	}
	t.Setenv("KEEP_ME", "1")
	env := workerEnv(ipc.RoleWorker, 0, 1, launchExec, &config.Handler{ClearEnv: false}, nil)
	if !slices.Contains(env, "KEEP_ME=1") {
		t.Fatalf("clear_env false lost the master's variables: %q", env)
	}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(serviceEnv, name) {
			t.Errorf("the handler's environment has %s", kv)
		}
	}
}
