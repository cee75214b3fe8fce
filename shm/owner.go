package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A lock word is 0 when free, else its holder: the low 32 bits its pid,
// the high 32 the low 32 bits of its start time (field 22 of
// /proc/pid/stat, in clock ticks since boot). The start time tells a
// holder from a later process that reuses its pid, and a goroutine of
// this process holding the lock (the word is ours: wait) from an earlier
// process of our pid (not ours: it died holding it).

// ownerWord is this process's lock word.
func ownerWord() uint64 {
	selfOnce.Do(func() {
		pid := os.Getpid()
		start, _, _ := startTime(pid)
		self = uint64(start)<<32 | uint64(uint32(pid))
	})
	return self
}

var (
	selfOnce sync.Once
	self     uint64
)

// startTime reads the start time of pid from /proc (field 22 of stat),
// truncated to 32 bits; ok false when it cannot be read. zombie reports a
// process that exited and was not reaped yet.
func startTime(pid int) (start uint32, zombie bool, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, false
	}
	// pid (comm) state … : comm may hold anything but ends at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, false, false
	}
	n, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, false, false
	}
	return uint32(n), f[0][0] == 'Z' || f[0][0] == 'X', true
}

// holderGone reports whether the holder named by lock word w has exited:
// its pid names no process (kill(pid, 0) says ESRCH), a zombie, or a
// process started at another time (the pid was reused). A word of this
// process (another goroutine holds the lock) is never gone. A process we
// cannot inspect (/proc hidden, another user) that kill finds is alive.
func holderGone(w uint64) bool {
	me := ownerWord()
	if w == me {
		return false
	}
	pid, start := int(uint32(w)), uint32(w>>32)
	if pid == int(uint32(me)) {
		return true // our pid, another start: an earlier process of our pid
	}
	if pid <= 0 {
		return true // garbage: nobody
	}
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return true
	}
	st, zombie, ok := startTime(pid)
	if !ok {
		return false
	}
	return zombie || st != start
}

// Bounds of the waits for a lock (writers, writeWait) or a stable
// sequence (readers, readWait) held by a live process: past them the
// operation gives up with ErrLocked (a write) or answers not found and
// counts a read timeout (a read). A live holder keeps a lock for a few
// hundred nanoseconds; one that keeps it for a second is stopped
// (SIGSTOP, a debugger) or starved. Variables only so that the fuzz test
// can shorten them.
var (
	writeWait = 5 * time.Second
	readWait  = time.Second
)

// ErrLocked reports a lock held past its wait bound (5 s) by a live
// process.
var ErrLocked = errors.New("shm: lock held by a live process past the wait bound")

// waiter paces a wait for another process: spins first (the holder runs
// on another CPU and is done in a moment), then yields the CPU (the
// holder may wait for ours), then sleeps, doubling up to a millisecond.
// Every so often it asks whether the holder is gone.
type waiter struct {
	n        int
	sleep    time.Duration
	deadline time.Time
}

const (
	spinRounds  = 64
	yieldRounds = 64
	checkEvery  = 16 // rounds between two holderGone checks once past spinning
)

// pause waits one round; check reports that it is time to ask whether
// the holder is gone (never during the first spins: holderGone reads
// /proc).
func (w *waiter) pause() (check bool) {
	w.n++
	switch {
	case w.n <= spinRounds:
		return false
	case w.n <= spinRounds+yieldRounds:
		runtime.Gosched()
		unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	default:
		if w.sleep == 0 {
			w.sleep = 10 * time.Microsecond
		}
		time.Sleep(w.sleep)
		w.sleep = min(2*w.sleep, time.Millisecond)
	}
	return w.n == spinRounds+1 || (w.n-spinRounds)%checkEvery == 0
}

// expired reports that the wait passed bound (measured from the first
// time it is asked).
func (w *waiter) expired(bound time.Duration) bool {
	if w.n <= spinRounds {
		return false
	}
	now := time.Now()
	if w.deadline.IsZero() {
		w.deadline = now.Add(bound)
		return false
	}
	return now.After(w.deadline)
}

// acquire takes the lock word at p for this process. stale reports that
// it was taken over from a holder that had exited: the caller must repair
// what that holder left half done. It fails with ErrLocked when a live
// holder keeps it past bound.
func acquire(p *uint64, bound time.Duration) (stale bool, err error) {
	me := ownerWord()
	if atomic.CompareAndSwapUint64(p, 0, me) {
		return false, nil
	}
	var w waiter
	for {
		v := atomic.LoadUint64(p)
		if v == 0 {
			if atomic.CompareAndSwapUint64(p, 0, me) {
				return false, nil
			}
			continue
		}
		if w.pause() && holderGone(v) && atomic.CompareAndSwapUint64(p, v, me) {
			return true, nil
		}
		if w.expired(bound) {
			return false, fmt.Errorf("%w (pid %d)", ErrLocked, uint32(v))
		}
	}
}

// release frees a lock word this process holds.
func release(p *uint64) { atomic.StoreUint64(p, 0) }
