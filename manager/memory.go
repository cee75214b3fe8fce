package manager

import (
	"time"

	"github.com/shirou/gopsutil/v3/process"
	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
)

// memoryCheckEvery is how often the manager samples the resident set of
// the workers that have a max_memory.
const memoryCheckEvery = time.Second

// watchMemory samples, every memoryCheckEvery until the manager stops, the
// RSS of each ready worker and task worker whose role has a max_memory
// (worker.max_memory, task_worker.max_memory), and reports the ones over
// it to the master (CtlOverMemory), which replaces them the graceful way.
// The kernel tells of no RSS crossing a line (short of a cgroup per
// worker), so this samples: here in the manager, which owns the
// processes, and not on the master's loop. A worker stays reported while
// it stays over; the master ignores one it is replacing already.
func (mg *Manager) watchMemory() {
	limits := map[string]uint64{ipc.RoleWorker: uint64(mg.cfg.Worker.MaxMemory), ipc.RoleTaskWorker: uint64(mg.cfg.TaskWorker.MaxMemory)}
	if limits[ipc.RoleWorker] == 0 && limits[ipc.RoleTaskWorker] == 0 {
		return
	}
	t := time.NewTicker(memoryCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-mg.stop:
			return
		case <-t.C:
		}
		mg.mu.Lock()
		var ws []*child
		for _, c := range mg.children {
			if limits[c.role] > 0 && c.wasReady() {
				ws = append(ws, c)
			}
		}
		mg.mu.Unlock()
		for _, c := range ws {
			rss := rssOf(c.pid)
			if rss <= limits[c.role] {
				continue
			}
			c.log.WithFields(logrus.Fields{"rss": rss, "max_memory": limits[c.role]}).
				Debug("worker over its max_memory; asking the master to replace it")
			mg.report(ipc.CtlOverMemory, ipc.WorkerEvent{Role: c.role, Slot: c.slot, Gen: c.gen, PID: c.pid, RSS: rss})
		}
	}
}

// rssOf is the resident set size of pid without its resident shared
// memory (shmemOf: the shared tables and the body arenas are the
// master's, allocated once, whichever worker touches them), 0 if unknown
// (it exited).
func rssOf(pid int) uint64 {
	if p, err := process.NewProcess(int32(pid)); err == nil {
		if mi, err := p.MemoryInfo(); err == nil {
			return mi.RSS - min(shmemOf(pid), mi.RSS)
		}
	}
	return 0
}
