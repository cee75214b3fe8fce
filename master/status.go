package master

import (
	"os"
	"sort"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/drover-dev/drover/ipc"
)

// drover status, answered without blocking the master's loop. The loop
// builds the table from what it owns (startStatus) and asks the manager for
// the Go runtime figures of its plugin workers; their reply comes back as
// an event (evStatsReply), or statsWaitMax passes (evStatsTimeout). The
// per-process samples (RSS and CPU through gopsutil, a few /proc reads per
// process) are then taken by a goroutine of the answer's own, which
// replies to the control connection: the loop goes on meanwhile.

// statsWaitMax bounds the wait for the manager's runtime figures; status
// answers without them after it.
const statsWaitMax = time.Second

// statusJob is one drover status being answered. Built and owned by the
// master's loop until sample takes it (then owned by sample's goroutine).
type statusJob struct {
	reply chan<- Response
	procs []Process
	gens  []uint64 // gens[i]: the generation of procs[i] when it is a worker, else 0
	timer *time.Timer
}

// evStatsReply carries the manager's answer to a CtlStats request.
type evStatsReply struct {
	id    uint64
	stats map[uint64]ipc.RuntimeStats
}

// evStatsTimeout: the manager did not answer CtlStats id within
// statsWaitMax.
type evStatsTimeout struct{ id uint64 }

// startStatus builds the status table from the loop's tables, asks the
// manager for runtime figures and answers reply once they are in (or
// statsWaitMax passed) and the processes were sampled. Runs on the loop.
func (m *Master) startStatus(reply chan<- Response) {
	job := m.statusTable()
	job.reply = reply
	mp := m.curMgr()
	if mp == nil {
		go job.sample(nil)
		return
	}
	m.statsSeq++
	id := m.statsSeq
	if err := mp.ctl.Send(ipc.CtlStats, id, nil); err != nil {
		go job.sample(nil)
		return
	}
	if m.statsWait == nil {
		m.statsWait = make(map[uint64]*statusJob)
	}
	m.statsWait[id] = job
	job.timer = time.AfterFunc(statsWaitMax, func() { m.post(evStatsTimeout{id}) })
}

// statsIn completes the status job waiting for CtlStats id with the
// manager's figures (nil: none came). Runs on the loop.
func (m *Master) statsIn(id uint64, stats map[uint64]ipc.RuntimeStats) {
	job := m.statsWait[id]
	if job == nil {
		return // answered already (timed out)
	}
	delete(m.statsWait, id)
	job.timer.Stop()
	go job.sample(stats)
}

// sample adds the runtime figures and the per-process samples to the table
// and sends the answer. Runs on its own goroutine: gopsutil reads /proc
// once or more per process, too slow for the loop with many workers.
func (job *statusJob) sample(rt map[uint64]ipc.RuntimeStats) {
	now := time.Now()
	for i := range job.procs {
		p := &job.procs[i]
		if st, ok := rt[job.gens[i]]; ok && job.gens[i] != 0 {
			p.Runtime = &st
		}
		if !p.Started.IsZero() {
			p.UptimeSec = now.Sub(p.Started).Seconds()
		}
		if p.PID > 0 {
			if proc, err := process.NewProcess(int32(p.PID)); err == nil {
				if mi, err := proc.MemoryInfo(); err == nil {
					p.RSS = mi.RSS
				}
				if cpu, err := proc.CPUPercent(); err == nil {
					p.CPU = cpu
				}
			}
		}
	}
	job.reply <- Response{OK: true, Processes: job.procs}
}

// statusTable builds the drover status table from the loop's tables,
// without the slow samples (sample adds them). Runs on the loop.
func (m *Master) statusTable() *statusJob {
	pc := m.plane.Counters()
	state := "running"
	if !m.ready.Load() {
		state = "starting" // its workers have not all said hello yet
	}
	out := []Process{{Role: ipc.RoleMaster, PID: os.Getpid(), State: state, Started: m.started, Generation: generation(), Queued: pc.TasksQueued,
		Config: m.cfg.File, Listeners: m.bound, Connections: pc.Connections, Accepted: pc.Accepted,
		IPC: &IPCStats{FramesToWorkers: pc.FramesToWorkers, Writes: pc.Writes,
			FramesFromWorkers: pc.FramesFromWorkers, Reads: pc.Reads},
		HTTPBuffered: pc.HTTPBuffered, Pools: m.poolStatus()}}
	out[0].Tables, out[0].Atomics = m.sharedStatus()
	if mp := m.curMgr(); mp != nil {
		state := "running"
		select {
		case <-mp.exited:
			state = "restarting"
		default:
		}
		out = append(out, Process{Role: ipc.RoleManager, PID: mp.pid, State: state, Started: mp.started,
			Restarts: int(m.mgrSeq) - 1})
	}
	type row struct {
		p   Process
		gen uint64
	}
	seen := map[slotKey]bool{}
	var ws []row
	for _, wi := range m.plane.Snapshot() {
		k := slotKey{wi.W.Role(), wi.W.Slot()}
		seen[k] = true
		p := Process{Role: wi.W.Role(), ID: wi.W.Slot(), PID: wi.W.PID(), State: wi.State, Started: wi.W.Started(),
			Requests: wi.Served, InFlight: wi.InFlight, Queued: wi.Queued, Concurrency: wi.Concurrency, Launch: wi.W.Launch(), SDK: wi.SDK}
		if si := m.slots[k]; si != nil {
			p.Restarts, p.LastExit = si.restarts, si.lastExit
		}
		ws = append(ws, row{p, wi.W.Gen()})
	}
	for k, si := range m.slots {
		if !seen[k] {
			ws = append(ws, row{p: Process{Role: k.role, ID: k.slot, State: "backoff", Restarts: si.restarts, LastExit: si.lastExit}})
		}
	}
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].p.Role != ws[j].p.Role {
			return ws[i].p.Role < ws[j].p.Role
		}
		return ws[i].p.ID < ws[j].p.ID
	})
	job := &statusJob{gens: make([]uint64, len(out), len(out)+len(ws))}
	for _, r := range ws {
		out = append(out, r.p)
		job.gens = append(job.gens, r.gen)
	}
	job.procs = out
	return job
}
