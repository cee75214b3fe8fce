package logfile

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestReopenUnderConcurrentWriters renames the file (as logrotate does) and
// reopens it while writers write: every line lands whole in exactly one of
// the two files, and each writer's lines keep their order.
func TestReopenUnderConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drover.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, lines = 8, 2000
	// A long line: a short write or an interleaving would show.
	pad := strings.Repeat("x", 300)
	var wg sync.WaitGroup
	// Every writer has written half its lines before the rename (so the
	// old file gets some), writes on while the file is renamed and
	// reopened, and holds its last line until the reopen returned (so the
	// new file gets some): the test does not depend on how the scheduler
	// runs the writers.
	halfway := make(chan struct{}, writers)
	reopened := make(chan struct{})
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				if i == lines/2 {
					halfway <- struct{}{}
				}
				if i == lines-1 {
					<-reopened
				}
				if _, err := fmt.Fprintf(w, "w%d %d %s end\n", g, i, pad); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
	}
	for range writers {
		<-halfway
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	err = w.Reopen()
	close(reopened)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	next := make([]int, writers) // each writer's next line number, across both files
	counts := map[string]int{}
	for _, name := range []string{path + ".1", path} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			var g, i int
			var p, end string
			if n, err := fmt.Sscanf(sc.Text(), "w%d %d %s %s", &g, &i, &p, &end); n != 4 || err != nil ||
				p != pad || end != "end" || g < 0 || g >= writers {
				t.Fatalf("%s: damaged line %q", filepath.Base(name), sc.Text())
			}
			if i != next[g] {
				t.Fatalf("%s: writer %d line %d follows line %d", filepath.Base(name), g, i, next[g]-1)
			}
			next[g]++
			counts[name]++
		}
		f.Close()
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d of %d lines found", g, n, lines)
		}
	}
	if counts[path+".1"] == 0 || counts[path] == 0 {
		t.Errorf("lines per file: %v (want some in both)", counts)
	}
}

// TestReopenFailsWhenTheDirectoryIsGone keeps writing to the old file and
// says why the new one could not be opened.
func TestReopenFailsWhenTheDirectoryIsGone(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := Open(filepath.Join(logDir, "drover.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("before\n"))
	moved := filepath.Join(dir, "log.old")
	if err := os.Rename(logDir, moved); err != nil {
		t.Fatal(err)
	}
	err = w.Reopen()
	if err == nil {
		t.Fatal("Reopen succeeded without its directory")
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), logDir) ||
		!strings.Contains(err.Error(), "still go to the file open before") {
		t.Errorf("Reopen error %q: want the path, the cause and what happens to the logs", err)
	}
	if _, err := w.Write([]byte("after\n")); err != nil {
		t.Fatalf("write after a failed Reopen: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(moved, "drover.log"))
	if string(b) != "before\nafter\n" {
		t.Errorf("old file holds %q, want both lines", b)
	}
	// Once the directory is back, Reopen works again.
	if err := os.Mkdir(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("new\n"))
	if b, _ := os.ReadFile(filepath.Join(logDir, "drover.log")); string(b) != "new\n" {
		t.Errorf("new file holds %q", b)
	}
}

func TestReopenAndWriteAfterClose(t *testing.T) {
	w, err := Open(filepath.Join(t.TempDir(), "drover.log"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := w.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := w.Reopen(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Reopen after Close: %v", err)
	}
}

func TestOpenCreatesWithMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drover.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^Mode != 0 {
		t.Errorf("mode %v, want at most %v", fi.Mode().Perm(), os.FileMode(Mode))
	}
	if _, err := Open(filepath.Join(path, "sub.log")); err == nil {
		t.Error("Open under a regular file succeeded")
	}
}
