package manager

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// A worker that reads the shared tables has their pages in its resident
// set: they are the master's memory, allocated once, and must not count
// towards its max_memory (else reading a big table would recycle workers
// for ever).
func TestRSSLeavesSharedMemoryOut(t *testing.T) {
	const size = 64 << 20
	before := rssOf(os.Getpid())
	fd, err := unix.MemfdCreate("test-shared", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, size); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	for i := 0; i < size; i += 4096 {
		mem[i] = 1
	}
	if after := rssOf(os.Getpid()); after > before+16<<20 {
		t.Fatalf("RSS went from %d to %d bytes with %d bytes of shared memory touched: shared memory is counted", before, after, size)
	}
}
