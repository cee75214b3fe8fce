package master

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/shm"
)

// Shared tables and atomics (tables:, atomics:; docs/tables.md). The
// master creates their memory at start, before the manager, and keeps it
// for as long as it runs: workers come and go, the data stays. The
// manager passes it to every child it spawns. An upgrade hands it to the
// new master through tableflip, as the listeners; the new master keeps it
// when its config declares the same tables and atomics, and starts with
// empty ones (saying so) when the declaration changed.

// shmFdName is the name tableflip hands a region over under: named after
// its layout's hash, so that a new master finds only a region laid out as
// its config declares, and the others it inherited are closed by
// tableflip once it is ready (their memory goes with the old master).
func shmFdName(spec shm.Spec) string {
	return "drover-shm-" + strconv.FormatUint(spec.SchemaHash(), 16)
}

// openShared creates or inherits the region; nothing when the config
// declares no tables and no atomics. Runs in Run, before the manager
// starts.
func (m *Master) openShared() error {
	spec := m.cfg.Shared()
	if len(spec.Tables)+len(spec.Atomics) == 0 {
		return nil
	}
	name := shmFdName(spec)
	if f, err := m.upg.Fds.File(name); err != nil || f != nil {
		r, merr := m.inheritShared(f, err, spec)
		if merr == nil {
			m.shm = r
			m.log.WithFields(logrus.Fields{"tables": len(spec.Tables), "atomics": len(spec.Atomics), "bytes": r.Size()}).
				Info("tables and atomics handed over by the old master")
			return nil
		}
		m.log.WithError(merr).Warn("upgrade: starting with empty tables and atomics")
	} else if m.upg.HasParent() {
		m.log.WithField("cause", "the old master declared no tables and atomics, or others (a change of tables, sizes, columns or atomics needs new memory)").
			Warn("upgrade: starting with empty tables and atomics")
	}
	need := spec.Bytes()
	if avail, ok := memAvailable(); ok && need > avail {
		return m.cfg.KeyError("tables", fmt.Sprintf("the tables and atomics need %s and the machine has %s available (MemAvailable): lower the tables' sizes or their string columns",
			humanBytes(need), humanBytes(avail)))
	}
	r, err := shm.Create(spec)
	if err != nil {
		return m.cfg.KeyError("tables", err.Error())
	}
	if err := m.upg.Fds.AddFile(name, r.File()); err != nil {
		r.Close()
		return fmt.Errorf("tables: register for upgrades: %w", err)
	}
	m.shm = r
	m.log.WithFields(logrus.Fields{"tables": len(spec.Tables), "atomics": len(spec.Atomics), "bytes": r.Size()}).
		Info("tables and atomics created")
	return nil
}

// inheritShared maps the region the old master handed over under the
// name of spec's layout, checking that it is laid out so.
func (m *Master) inheritShared(f *os.File, err error, spec shm.Spec) (*shm.Region, error) {
	if err != nil {
		return nil, fmt.Errorf("the old master's tables: %w", err)
	}
	r, err := shm.Map(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("the old master's tables: %w", err)
	}
	if !r.Matches(spec) {
		r.Close()
		return nil, fmt.Errorf("the old master's tables are not laid out as this config declares")
	}
	return r, nil
}

// sharedToManager adds the region to the manager's command: its
// descriptor at the next free fd, named by shm.EnvFD.
func (m *Master) sharedToManager(cmd *exec.Cmd) {
	if m.shm == nil {
		return
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, m.shm.File())
	cmd.Env = append(cmd.Env, shm.EnvFD+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
}

// recoverShared releases the locks a child that exited held in the
// tables, so that none waits for a later process that reuses its pid. A
// clean exit (code 0, no signal) held none, and a stop needs none (the
// processes still mapping the tables do it lazily). The scan reads every bucket,
// so it runs off the loop, one at a time: exits that come meanwhile queue
// (up to maxRecoverQueue; beyond, the lazy recovery of whoever waits for
// such a lock still frees it). Runs on the loop.
func (m *Master) recoverShared(ev ipc.WorkerEvent) {
	if m.shm == nil || ev.PID <= 0 || (ev.ExitCode == 0 && ev.Signal == "") || m.stopping.Load() {
		return
	}
	r := &m.shmRecover
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) < maxRecoverQueue {
		r.queue = append(r.queue, ev)
	}
	if r.running {
		return
	}
	r.running = true
	r.wg.Add(1)
	go m.recoverQueued()
}

// closeShared unmaps the region once a scan in progress ended. Runs at
// the end of Run.
func (m *Master) closeShared() {
	if m.shm == nil {
		return
	}
	m.shmRecover.wg.Wait()
	m.shm.Close()
}

// maxRecoverQueue bounds the exits waiting for their lock scan.
const maxRecoverQueue = 1024

// shmRecovery is the queue of exits whose locks are to be scanned; its
// goroutine (recoverQueued, one at most: running) empties it.
type shmRecovery struct {
	mu      sync.Mutex
	queue   []ipc.WorkerEvent
	running bool
	wg      sync.WaitGroup // the goroutine, for closeShared
}

func (m *Master) recoverQueued() {
	r := &m.shmRecover
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if len(r.queue) == 0 || m.stopping.Load() {
			r.running = false
			r.mu.Unlock()
			return
		}
		ev := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		if n := m.shm.Recover(ev.PID); n > 0 {
			m.log.WithFields(logrus.Fields{"role": ev.Role, "worker_id": ev.Slot, "pid": ev.PID, "locks": n}).
				Warn("table locks held by an exited process taken over and repaired")
		}
	}
}

// sharedStatus is what drover status shows of the tables and atomics.
func (m *Master) sharedStatus() ([]shm.TableStats, map[string]int64) {
	if m.shm == nil {
		return nil, nil
	}
	var ts []shm.TableStats
	for _, t := range m.shm.Tables() {
		ts = append(ts, t.Stats())
	}
	as := map[string]int64{}
	for _, a := range m.shm.Atomics() {
		as[a.Name()] = a.Get()
	}
	return ts, as
}

// memAvailable is /proc/meminfo's MemAvailable, in bytes.
func memAvailable() (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", (n+1023)>>10)
}
