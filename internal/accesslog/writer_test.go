package accesslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/logtest"
)

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "acc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// waitFile waits until the file at path holds want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lacks %q after 10s:\n%s", path, want, b)
		}
		time.Sleep(5 * time.Millisecond) // polling the file the writer goroutine writes
	}
}

func req(target string) *Request {
	r := full
	r.Target = target
	return &r
}

// TestWriterReopen: a Flush reaches the file; after a rename and Reopen
// the next lines go to a new file (mode 0640), none to the old one.
func TestWriterReopen(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "access.log")
	w, err := Open(Options{Path: path, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	b := w.NewBuffer()
	b.Request(req("/first"))
	b.Flush()
	waitFile(t, path, "/first")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	b.Request(req("/second"))
	if err := w.Close([]*Buffer{b}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "/first") || strings.Contains(string(old), "/second") || !strings.Contains(string(cur), "/second") ||
		strings.Contains(string(cur), "/first") {
		t.Errorf("renamed file:\n%s\nnew file:\n%s", old, cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file %v, %v (want mode 0640)", fi, err)
	}
}

// TestOpenRefuses: the file is opened as log_file is: no link followed,
// and the error says how to fix it.
func TestOpenRefuses(t *testing.T) {
	dir := tempDir(t)
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink("/etc/passwd", link); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		link:                              "is a symbolic link (to /etc/passwd)",
		filepath.Join(dir, "no/such.log"): "create its directory or fix its permissions",
	} {
		if _, err := Open(Options{Path: path}); err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "access_log: ") {
			t.Errorf("Open(%s): %v, want an error with %q", path, err, want)
		}
	}
}

// TestWriterOrder: every line of several buffers is written once, in each
// buffer's order, by Close at the latest.
func TestWriterOrder(t *testing.T) {
	var out bytes.Buffer
	w, err := Open(Options{Path: "test", Out: &out, BufferSize: 4096, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	bufs := []*Buffer{w.NewBuffer(), w.NewBuffer()}
	var wg sync.WaitGroup
	for i, b := range bufs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 2000; n++ {
				b.Request(req(fmt.Sprintf("/b%d/%d", i, n)))
				if n%100 == 0 {
					b.Flush()
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(bufs); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() != 0 {
		t.Skipf("%d lines dropped: the writer fell behind on this machine", w.Dropped())
	}
	next := [2]int{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var i, n int
		if _, err := fmt.Sscanf(l[strings.Index(l, "/b"):], "/b%d/%d", &i, &n); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if n != next[i] {
			t.Fatalf("buffer %d: line %d after %d", i, n, next[i]-1)
		}
		next[i]++
	}
	if next != [2]int{2000, 2000} {
		t.Errorf("lines written: %v, want 2000 each", next)
	}
}

// stuck is an io.Writer that blocks until released.
type stuck struct{ release chan struct{} }

func (s stuck) Write(p []byte) (int, error) {
	<-s.release
	return len(p), nil
}

// TestBlockedWriterDrops: a writer that does not return never blocks the
// producer; lines are dropped and counted, the count is logged, and Close
// gives up after CloseWait saying how many lines were lost.
func TestBlockedWriterDrops(t *testing.T) {
	log, hook := logtest.New()
	s := stuck{make(chan struct{})}
	defer close(s.release)
	w, err := Open(Options{Path: "-", Out: s, BufferSize: 4096, Queue: 2, CloseWait: 100 * time.Millisecond, Log: logrus.NewEntry(log)})
	if err != nil {
		t.Fatal(err)
	}
	b := w.NewBuffer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; n < 10000; n++ {
			b.Request(req("/x"))
			if n%50 == 0 {
				b.Flush()
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the producer blocked on a stuck writer")
	}
	e := hook.Wait(t, 10*time.Second, "the drop count", func(e logtest.Entry) bool { return strings.HasPrefix(e.Msg, "access log lines dropped") })
	if n, _ := e.Data["dropped"].(uint64); n == 0 || w.Dropped() < n {
		t.Errorf("drop line %v, Dropped %d", e.Data, w.Dropped())
	}
	// The queue and buffers bound what is held: 2 waiting, 1 in the
	// write, the loop's own.
	if held := 10000 - int(w.Dropped()); held > 4*4096/len(line(t, false, *req("/x"))) {
		t.Errorf("%d lines held for a stuck writer, beyond the bound", held)
	}
	start := time.Now()
	if err := w.Close([]*Buffer{b}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s with CloseWait 100ms", d)
	}
	e = hook.Wait(t, time.Second, "the lines lost at close", func(e logtest.Entry) bool {
		return strings.HasPrefix(e.Msg, "access log not flushed at stop")
	})
	if n, _ := e.Data["lines"].(int); n == 0 {
		t.Errorf("close line %v", e.Data)
	}
}

// failing is an io.Writer that fails while on.
type failing struct {
	mu sync.Mutex
	on bool
	n  int
}

func (f *failing) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.on {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

// TestWriteErrors: a failing write drops its lines (counted) and is
// logged once until a write succeeds again.
func TestWriteErrors(t *testing.T) {
	log, hook := logtest.New()
	out := &failing{on: true}
	w, err := Open(Options{Path: "x", Out: out, Log: logrus.NewEntry(log)})
	if err != nil {
		t.Fatal(err)
	}
	b := w.NewBuffer()
	for i := 0; i < 3; i++ {
		b.Request(req("/x"))
		b.Flush()
	}
	hook.Wait(t, 10*time.Second, "the drops", func(e logtest.Entry) bool { return strings.HasPrefix(e.Msg, "access log lines dropped") })
	out.mu.Lock()
	out.on = false
	out.mu.Unlock()
	b.Request(req("/y"))
	b.Flush()
	hook.Wait(t, 10*time.Second, "the recovery", func(e logtest.Entry) bool { return e.Msg == "access log written again" })
	w.Close([]*Buffer{b})
	if n := hook.Count("access log write failed; its lines are dropped until a write succeeds (check the disk, or reopen-logs)"); n != 1 {
		t.Errorf("write failure logged %d times, want once", n)
	}
	if w.Dropped() != 3 {
		t.Errorf("Dropped %d, want 3", w.Dropped())
	}
}
