package manager

import (
	"os"
	"testing"

	"github.com/drover-dev/drover/ipc"
)

// The pages of a body arena a worker touched are not counted against its
// max_memory: they are shared, and bounded by the arena.
func TestRSSLeavesOutSharedArenaPages(t *testing.T) {
	f, _, err := ipc.NewArena("test", 8<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := ipc.MapArena(f, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ipc.Unmap(mem)
	before := shmemOf(os.Getpid())
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	if got := shmemOf(os.Getpid()) - before; got < 8<<20 {
		t.Fatalf("RssShmem grew by %d bytes after 8 MiB of an arena were touched", got)
	}
	if rss := rssOf(os.Getpid()); rss == 0 {
		t.Fatal("no RSS")
	}
}
