package manager

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// groupGrace is how long the processes a worker left in its process group
// get between SIGTERM and SIGKILL, and then how long SIGKILL gets before
// the manager gives up on them (a process stuck in the kernel).
const groupGrace = time.Second

// endGroup ends what the worker left behind in its process group (every
// worker is a group leader: Setpgid), once the worker itself was reaped:
// a background child (`cmd &` in a script, a helper a handler forked)
// must not outlive the worker it belongs to. SIGTERM first, as systemd
// does for a unit's control group, so that a helper can clean up; SIGKILL
// after groupGrace. It returns once the group is empty or SIGKILL had its
// grace too. A process that left the group (setsid, setpgid) is not found:
// that is a daemon's choice.
func (c *child) endGroup(log *logrus.Entry) {
	procs := openGroup(c.pid)
	if len(procs) == 0 {
		return
	}
	log.WithFields(logrus.Fields{"left": pidsOf(procs), "signal": "SIGTERM", "grace": groupGrace.String()}).
		Warn("worker left processes in its process group; ending them")
	if procs = awaitGroup(procs, c.pid, unix.SIGTERM, groupGrace); len(procs) == 0 {
		return
	}
	log.WithFields(logrus.Fields{"left": pidsOf(procs), "signal": "SIGKILL"}).
		Warn("processes of the worker's group outlived SIGTERM; killing them")
	if procs = awaitGroup(procs, c.pid, unix.SIGKILL, groupGrace); len(procs) > 0 {
		log.WithField("left", pidsOf(procs)).Error("processes of the worker's group outlived SIGKILL (stuck in the kernel); left behind")
		closeProcs(procs)
	}
}

// groupProc is a process of a worker's group, held by a pidfd: signals go
// to that process, never to one that reused its pid.
type groupProc struct{ pid, fd int }

func pidsOf(procs []groupProc) []int {
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.pid
	}
	return pids
}

func closeProcs(procs []groupProc) {
	for _, p := range procs {
		unix.Close(p.fd)
	}
}

// openGroup returns the live processes (zombies aside) of process group
// pgid, each with a pidfd.
func openGroup(pgid int) []groupProc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var out []groupProc
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || !inGroup(pid, pgid) {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone meanwhile
		}
		// The pidfd holds that process: checked again, the pid cannot
		// name another one any more.
		if !inGroup(pid, pgid) {
			unix.Close(fd)
			continue
		}
		out = append(out, groupProc{pid, fd})
	}
	return out
}

// inGroup reports whether pid is alive (not a zombie) in process group pgid.
func inGroup(pid, pgid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ppid pgrp …: comm may hold anything but ends at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
		return false
	}
	g, err := strconv.Atoi(string(f[2]))
	return err == nil && g == pgid
}

// awaitGroup sends sig to procs and waits up to d for them to exit; a
// process that joined the group meanwhile (a fork) gets sig too. It
// returns the processes still alive at the end (their pidfds open),
// or nil once the group is empty.
func awaitGroup(procs []groupProc, pgid int, sig syscall.Signal, d time.Duration) []groupProc {
	deadline := time.Now().Add(d)
	signal := func(procs []groupProc) {
		for _, p := range procs {
			unix.PidfdSendSignal(p.fd, sig, nil, 0)
		}
	}
	signal(procs)
	for {
		fds := make([]unix.PollFd, len(procs))
		for i, p := range procs {
			fds[i] = unix.PollFd{Fd: int32(p.fd), Events: unix.POLLIN}
		}
		ms := int(time.Until(deadline).Milliseconds())
		if ms > 0 {
			if _, err := unix.Poll(fds, ms); err == unix.EINTR {
				continue
			}
		}
		var alive []groupProc
		for i, p := range procs {
			if fds[i].Revents == 0 {
				alive = append(alive, p)
			} else {
				unix.Close(p.fd)
			}
		}
		procs = alive
		if len(procs) == 0 {
			// Exited, but a fork may have joined the group since the scan.
			if procs = openGroup(pgid); len(procs) == 0 {
				return nil
			}
			signal(procs)
		}
		if ms <= 0 {
			return procs
		}
	}
}
