package shm

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Atomic is a shared signed 64-bit counter, Swoole\Atomic's counterpart:
// every operation is one atomic instruction on the region (sequentially
// consistent), so that increments from every process and language add up.
// Wait and Wakeup use it as Swoole does, as an event flag: Wakeup turns a
// 0 into 1 and wakes waiters, Wait takes a 1 back to 0 or sleeps until a
// Wakeup (a futex on the slot's wake word, so sleeping costs nothing).
type Atomic struct {
	name    string
	value   *uint64
	wake    *uint32 // bumped by every Wakeup that found waiters
	waiters *uint32 // processes in Wait
}

// Name is the atomic's name.
func (a *Atomic) Name() string { return a.name }

// Get returns the value.
func (a *Atomic) Get() int64 { return int64(atomic.LoadUint64(a.value)) }

// Set stores v.
func (a *Atomic) Set(v int64) { atomic.StoreUint64(a.value, uint64(v)) }

// Add adds d and returns the new value.
func (a *Atomic) Add(d int64) int64 { return int64(atomic.AddUint64(a.value, uint64(d))) }

// Sub subtracts d and returns the new value.
func (a *Atomic) Sub(d int64) int64 { return int64(atomic.AddUint64(a.value, uint64(-d))) }

// CompareAndSwap stores new if the value is old, and reports whether it
// did (Swoole's cmpset).
func (a *Atomic) CompareAndSwap(old, new int64) bool {
	return atomic.CompareAndSwapUint64(a.value, uint64(old), uint64(new))
}

// Wait takes the value from 1 to 0 and returns true, sleeping until a
// Wakeup while it is 0, for at most timeout (negative: no bound). It
// returns false at the timeout, or at once when the value is neither 0
// nor 1 (Swoole's semantics).
func (a *Atomic) Wait(timeout time.Duration) bool {
	if a.CompareAndSwap(1, 0) {
		return true
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		seq := atomic.LoadUint32(a.wake)
		atomic.AddUint32(a.waiters, 1)
		if a.CompareAndSwap(1, 0) {
			atomic.AddUint32(a.waiters, ^uint32(0))
			return true
		}
		if a.Get() != 0 {
			atomic.AddUint32(a.waiters, ^uint32(0))
			return false
		}
		var left time.Duration = -1
		if timeout >= 0 {
			if left = time.Until(deadline); left <= 0 {
				atomic.AddUint32(a.waiters, ^uint32(0))
				return false
			}
		}
		futexWait(a.wake, seq, left)
		atomic.AddUint32(a.waiters, ^uint32(0))
		if a.CompareAndSwap(1, 0) {
			return true
		}
	}
}

// Wakeup turns a 0 into 1 and wakes up to n processes in Wait (one of
// them takes the 1; n > 1 lets the others check again). It returns true,
// as Swoole's does, whether or not the value was 0.
func (a *Atomic) Wakeup(n int) bool {
	if a.CompareAndSwap(0, 1) && atomic.LoadUint32(a.waiters) > 0 {
		atomic.AddUint32(a.wake, 1)
		futexWake(a.wake, max(n, 1))
	}
	return true
}

// The futex operations on a shared mapping (no FUTEX_PRIVATE_FLAG).
const (
	futexWaitOp = 0
	futexWakeOp = 1
)

// futexWait sleeps while *p == val, at most d (negative: no bound), or
// until a futexWake; spurious returns are the caller's to handle.
func futexWait(p *uint32, val uint32, d time.Duration) {
	var ts *unix.Timespec
	if d >= 0 {
		t := unix.NsecToTimespec(d.Nanoseconds())
		ts = &t
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWaitOp, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	if e != 0 && !errors.Is(e, unix.EAGAIN) && !errors.Is(e, unix.EINTR) && !errors.Is(e, unix.ETIMEDOUT) {
		// EFAULT and the like cannot happen on a mapped word; a sleep
		// that returns at once is handled by the caller's loop.
		time.Sleep(time.Millisecond)
	}
}

// futexWake wakes up to n sleepers on p.
func futexWake(p *uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWakeOp, uintptr(n), 0, 0, 0)
}
