package manager

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/shm"
)

// The shared tables' memory (tables:, atomics:; docs/tables.md): the
// master passes its memfd to the manager (shm.EnvFD names the fd), which
// passes it to every worker, task worker and user process it spawns, on
// the next free fd after the others, named by shm.EnvFD again.

// inheritShared returns the memfd the master passed, nil when the config
// declares no tables. The descriptor is marked close-on-exec: it reaches
// a child only through that child's ExtraFiles.
func inheritShared() (*os.File, error) {
	s := os.Getenv(shm.EnvFD)
	if s == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("manager: %s=%q is not a descriptor", shm.EnvFD, s)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "drover-tables"), nil
}

// passShared gives cmd the shared memory, if any.
func (mg *Manager) passShared(cmd *exec.Cmd) {
	if mg.shm == nil {
		return
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, mg.shm)
	cmd.Env = append(cmd.Env, shm.EnvFD+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
}

// shmemOf is the resident shared memory of pid (RssShmem of
// /proc/pid/status: shared tables, SysV and POSIX shared memory), in
// bytes; 0 if unknown.
func shmemOf(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssShmem:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
