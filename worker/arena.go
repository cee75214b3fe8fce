package worker

import (
	"os"
	"strconv"
	"sync"

	"github.com/drover-dev/drover/ipc"
)

// The body arenas (ipc/arena.go, docs/protocol.md "Body arenas"): the
// master reads a large request body into its request arena, which this
// worker maps read-only, and names it in the request (body_at); the
// handler reads it there. An answer's body of answerMin bytes or more is
// written into this worker's answer arena, in a slot of ipc.MaxInlineBody
// bytes, and the frame names it (FlagRef); the master gives the slot back
// with a Release frame once it has written it. Neither body crosses the
// socket pair. Without the arenas (another master, a test channel) bodies
// travel in frames.

// answerMin is the smallest answer body sent through the answer arena:
// below it, the frame's copy costs less than a slot to account for.
const answerMin = 16 << 10

// arenas are a worker's mappings of the body arenas. Its methods are safe
// for concurrent use.
type arenas struct {
	req []byte // the request arena, read-only; nil if not passed
	ans []byte // the answer arena, read-write

	mu   sync.Mutex
	free []int32 // free slots of ans, a stack: the same few are reused
	out  []bool  // slots lent to the master
}

// openArenas maps the arenas the manager passed (fds named by
// ipc.EnvRequestArena and ipc.EnvAnswerArena) when want, and closes
// their descriptors either way, so that programs the handler starts do
// not inherit them. It returns nil without an answer arena.
func openArenas(want bool) *arenas {
	a := &arenas{}
	if f := arenaFile(ipc.EnvRequestArena, "drover-requests"); f != nil {
		if want {
			a.req, _ = ipc.MapArena(f, false)
		}
		f.Close()
	}
	if f := arenaFile(ipc.EnvAnswerArena, "drover-answers"); f != nil {
		if want {
			a.ans, _ = ipc.MapArena(f, true)
		}
		f.Close()
	}
	if a.ans == nil {
		ipc.Unmap(a.req)
		return nil
	}
	a.init()
	return a
}

// init makes every slot of the answer arena free.
func (a *arenas) init() {
	n := len(a.ans) / ipc.MaxInlineBody
	a.free = make([]int32, n)
	for i := range a.free {
		a.free[i] = int32(n - 1 - i) // slot 0 on top
	}
	a.out = make([]bool, n)
}

// arenaFile is the descriptor the environment variable env names, or nil.
func arenaFile(env, name string) *os.File {
	fd, err := strconv.Atoi(os.Getenv(env))
	if err != nil || fd < 3 {
		return nil
	}
	os.Unsetenv(env) // programs the handler starts do not have it
	return os.NewFile(uintptr(fd), name)
}

// take returns a free slot of the answer arena (len 0, cap
// ipc.MaxInlineBody) and its offset; false when none is free (the body
// then goes in the frame). The slot is the caller's until it is sent
// (the master releases it) or given back.
func (a *arenas) take() ([]byte, uint64, bool) {
	a.mu.Lock()
	if len(a.free) == 0 {
		a.mu.Unlock()
		return nil, 0, false
	}
	i := a.free[len(a.free)-1]
	a.free = a.free[:len(a.free)-1]
	a.out[i] = true
	a.mu.Unlock()
	off := int(i) * ipc.MaxInlineBody
	return a.ans[off : off : off+ipc.MaxInlineBody], uint64(off), true
}

// giveBack frees a slot taken and not sent.
func (a *arenas) giveBack(off uint64) {
	a.release(ipc.AppendRef(nil, ipc.Ref{Off: off}))
}

// put copies body into a free slot of the answer arena and returns where.
func (a *arenas) put(body []byte) (ipc.Ref, bool) {
	slot, off, ok := a.take()
	if !ok {
		return ipc.Ref{}, false
	}
	copy(slot[:len(body)], body)
	return ipc.Ref{Off: off, Len: uint64(len(body))}, true
}

// release takes back the slots a Release frame names; a range that names
// no slot lent is ignored.
func (a *arenas) release(payload []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = ipc.ParseRelease(payload, func(r ipc.Ref) {
		i := r.Off / ipc.MaxInlineBody
		if r.Off%ipc.MaxInlineBody != 0 || i >= uint64(len(a.out)) || !a.out[i] {
			return
		}
		a.out[i] = false
		a.free = append(a.free, int32(i))
	})
}

// body is the request body a Request's body_at names, or false when it is
// not within the request arena.
func (a *arenas) body(at []uint64) ([]byte, bool) {
	if a == nil || len(at) != 2 {
		return nil, false
	}
	r := ipc.Ref{Off: at[0], Len: at[1]}
	if !r.In(len(a.req)) {
		return nil, false
	}
	return a.req[r.Off : r.Off+r.Len : r.Off+r.Len], true
}
