package plane

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// benchDispatcher is a dispatcher of 4 ready workers of concurrency 64 with
// some requests in flight.
func benchDispatcher(mode int) *dispatcher {
	d := newDispatcher(mode, 4, 0, 1024)
	d.httpMode = mode
	m := &Plane{}
	for i := range d.workers {
		w := &Worker{p: m, role: ipc.RoleWorker, slot: i, gen: uint64(i + 1), state: stateReady,
			concurrency: 64, inflight: 10 * i, owed: make(map[uint64]int32)}
		d.workers[i] = w
		d.all[w.gen] = w
	}
	return d
}

// BenchmarkDispatchChoice measures the choice of a worker for one event
// (stream) or request (HTTP) of a connection that had one before, with
// the dispatcher's lock, as the loops make it: the hot path of dispatch.
func BenchmarkDispatchChoice(b *testing.B) {
	now := time.Now()
	for _, kind := range []string{"stream", "http"} {
		for _, mode := range []int{modeRoundRobin, modeFixed, modeIdle, modeIP, modeUID} {
			b.Run(fmt.Sprintf("%s-mode%d", kind, mode), func(b *testing.B) {
				d := benchDispatcher(mode)
				st := benchConn(mode, []byte{10, 0, 0, 2})
				for b.Loop() {
					d.mu.Lock()
					var w *Worker
					if kind == "http" {
						w = d.pickHTTP(st, now)
					} else {
						w = benchTarget(d, st)
					}
					if w == nil {
						b.Fatal("no worker picked")
					}
					st.w = w // as dispatch does in the binding modes, dispatchHTTP always
					d.mu.Unlock()
				}
			})
		}
	}
}

// The adapters of the benchmark to the code measured. (Against the code
// before choose, the same benchmark ran with adapters calling verbatim
// copies of its target and of the choice in its dispatchHTTP.)

// benchConn is a connection from client IP ip, id 0x1234 (loop 0), set up
// as OnOpen does.
func benchConn(mode int, ip []byte) *connState {
	st := &connState{home: 0x12}
	if mode == modeIP {
		h := fnv.New32a()
		h.Write(ip)
		st.home = uint64(h.Sum32())
	}
	return st
}

func benchTarget(d *dispatcher, st *connState) *Worker { return d.target(st) }
