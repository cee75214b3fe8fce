package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The machine's unit costs behind the relay's figures (docs/benchmarks.md):
//
//	go test -run XXX -bench . -count 3 ./scripts/bench/relay/

// BenchmarkSyscall is the cost of a system call that does nothing.
func BenchmarkSyscall(b *testing.B) {
	for range b.N {
		unix.Getppid()
	}
}

var src, dst = make([]byte, 1<<20), make([]byte, 1<<20)

// BenchmarkCopy is a user-space copy of 64 KiB and of 1 MiB (in cache).
func BenchmarkCopy(b *testing.B) {
	for _, n := range []int{64 << 10, 1 << 20} {
		b.Run(sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for range b.N {
				copy(dst[:n], src[:n])
			}
		})
	}
}

// BenchmarkUnixWriteRead is 64 KiB written to a socket pair (1 MiB
// buffers, as ipc.SocketPair's) and read back on the same thread: the
// kernel's two copies plus its socket-buffer work, without a wake-up.
func BenchmarkUnixWriteRead(b *testing.B) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	for _, fd := range fds {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for range b.N {
		if _, err := unix.Write(fds[0], buf); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < len(buf); {
			k, err := unix.Read(fds[1], buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += k
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "1MiB"
	}
	return "64KiB"
}
