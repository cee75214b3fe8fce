package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// wait bounds every wait for a callback; generous, so that a loaded machine
// only makes the tests slower, never red.
const wait = 15 * time.Second

// TestMain fails the run if any test left a Watcher's goroutine (or
// fsnotify's reader) behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if stacks := leaked(); stacks != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", stacks)
			code = 1
		}
	}
	os.Exit(code)
}

// leaked returns the stacks of this package's and fsnotify's goroutines that
// are still running a bounded while after every Watcher was closed (their
// last deferred calls may still be finishing when Close returns).
func leaked() string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var bad []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "internal/watch.(*Watcher)") || strings.Contains(g, "fsnotify.(*inotify)") {
				bad = append(bad, g)
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			return strings.Join(bad, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// harness runs a Watcher whose callbacks feed channels. Unless a test takes
// them, errors fail the test when it ends.
type harness struct {
	t       *testing.T
	w       *Watcher
	changes chan Change
	errs    chan error
}

func start(t *testing.T, paths []string, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, changes: make(chan Change, 100), errs: make(chan error, 100)}
	stop := make(chan struct{})
	opts.OnChange = func(c Change) {
		select {
		case h.changes <- c:
		case <-stop:
		}
	}
	opts.OnError = func(err error) {
		select {
		case h.errs <- err:
		case <-stop:
		}
	}
	w, err := New(paths, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", paths, err)
	}
	h.w = w
	t.Cleanup(func() {
		close(stop)
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		close(h.errs)
		for err := range h.errs {
			t.Errorf("unexpected OnError: %v", err)
		}
	})
	return h
}

// next returns the next Change, failing the test after wait.
func (h *harness) next() Change {
	h.t.Helper()
	select {
	case c := <-h.changes:
		return c
	case err := <-h.errs:
		h.t.Fatalf("OnError while waiting for a change: %v", err)
	case <-time.After(wait):
		h.t.Fatalf("no change within %v", wait)
	}
	return Change{}
}

// until returns the first Change that lists path, skipping others (a burst
// may be split in two on a slow machine; tests that care use next).
func (h *harness) until(path string) Change {
	h.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case c := <-h.changes:
			if slices.Contains(c.Paths, path) {
				return c
			}
		case err := <-h.errs:
			h.t.Fatalf("OnError while waiting for %s: %v", path, err)
		case <-deadline:
			h.t.Fatalf("no change listing %s within %v", path, wait)
		}
	}
}

// nextError returns the next error, skipping changes.
func (h *harness) nextError() error {
	h.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case <-h.changes:
		case err := <-h.errs:
			return err
		case <-deadline:
			h.t.Fatalf("no error within %v", wait)
		}
	}
}

// only fails unless c lists exactly paths.
func only(t *testing.T, c Change, paths ...string) {
	t.Helper()
	if c.Count != len(paths) || !slices.Equal(c.Paths, paths) {
		t.Fatalf("change = %d %q (%s), want exactly %q", c.Count, c.Paths, c, paths)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirAll(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// fast keeps the tests quick where bursts need not stay whole.
var fast = Options{Debounce: 50 * time.Millisecond}

func TestFileWrite(t *testing.T) {
	root := t.TempDir()
	app := filepath.Join(root, "app.go")
	write(t, app, "package main\n")
	h := start(t, []string{root}, fast)

	write(t, app, "package main // saved\n")
	c := h.next()
	only(t, c, app)
	if !slices.Equal(c.Roots, []string{root}) {
		t.Errorf("Roots = %q, want [%s]", c.Roots, root)
	}
	if want := "1 file changed under " + root + " (app.go)"; c.String() != want {
		t.Errorf("String() = %q, want %q", c, want)
	}
}

func TestNewNestedDirectory(t *testing.T) {
	root := t.TempDir()
	h := start(t, []string{root}, fast)

	// Created at once, as mkdir -p does, with a file written straight
	// away: both race the watch on the new directories.
	deep := filepath.Join(root, "a", "b", "c")
	mkdirAll(t, deep)
	f := filepath.Join(deep, "f.go")
	write(t, f, "x")
	h.until(f)

	// Written after the first change was delivered: only the watch on the
	// new directory can report it.
	g := filepath.Join(deep, "g.go")
	write(t, g, "x")
	h.until(g)

	// Removing the tree is a change, not an error (harness checks), and
	// the directory is watched afresh when it comes back.
	if err := os.RemoveAll(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	h.until(filepath.Join(root, "a"))
	mkdirAll(t, deep)
	write(t, f, "y")
	h.until(f)
	write(t, g, "y")
	h.until(g)
}

func TestTreeMovedIn(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	src := filepath.Join(outside, "pkg")
	mkdirAll(t, filepath.Join(src, "sub"))
	write(t, filepath.Join(src, "sub", "lib.go"), "x")
	h := start(t, []string{root}, fast)

	dst := filepath.Join(root, "pkg")
	if err := os.Rename(src, dst); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dst, "sub", "lib.go")
	h.until(lib)
	more := filepath.Join(dst, "sub", "more.go")
	write(t, more, "x")
	h.until(more)

	// Renamed within the tree: the watches follow the new name.
	moved := filepath.Join(root, "moved")
	if err := os.Rename(dst, moved); err != nil {
		t.Fatal(err)
	}
	h.until(filepath.Join(moved, "sub", "lib.go"))
	again := filepath.Join(moved, "sub", "again.go")
	write(t, again, "x")
	c := h.until(again)
	for _, p := range c.Paths {
		if strings.HasPrefix(p, dst+"/") {
			t.Errorf("change lists the old name %s: %s", p, c)
		}
	}
}

func TestBurstIsOneChange(t *testing.T) {
	root := t.TempDir()
	// A long Debounce, so that only a stall of seconds between two writes
	// could split the burst; MaxDelay out of the way.
	h := start(t, []string{root}, Options{Debounce: 2 * time.Second, MaxDelay: time.Minute})

	const n = 200
	var want []string
	for i := range n {
		p := filepath.Join(root, fmt.Sprintf("f%03d.go", i))
		write(t, p, "x")
		if err := os.Chmod(p, 0o600); err != nil { // noise, as editors make
			t.Fatal(err)
		}
		want = append(want, p)
	}
	c := h.next()
	if c.Count != n || !slices.Equal(c.Paths, want[:MaxPaths]) {
		t.Fatalf("change = %d %q, want %d starting %q", c.Count, c.Paths, n, want[:MaxPaths])
	}
	if !strings.Contains(c.String(), "200 files changed under "+root+" (f000.go, f001.go,") ||
		!strings.HasSuffix(c.String(), "f009.go and 190 more)") {
		t.Errorf("String() = %q", c)
	}

	// Nothing of the burst is left over: the next change is this alone.
	last := filepath.Join(root, "last.go")
	write(t, last, "x")
	only(t, h.next(), last)
}

func TestMaxDelay(t *testing.T) {
	root := t.TempDir()
	h := start(t, []string{root}, Options{Debounce: time.Second, MaxDelay: 1500 * time.Millisecond})
	p := filepath.Join(root, "log.go")

	// Writes every 20 ms never leave the burst quiet for Debounce; the
	// change must come anyway, while they go on.
	stop, stopped := make(chan struct{}), make(chan error)
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := os.WriteFile(p, []byte(fmt.Sprint(i)), 0o644); err != nil {
				stopped <- err
				return
			}
		}
	}()
	c := h.next()
	close(stop)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	only(t, c, p)
}

func TestIgnored(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src.go")
	write(t, src, "x")
	mkdirAll(t, filepath.Join(root, ".git", "refs"))
	h := start(t, []string{root}, Options{
		Debounce: 50 * time.Millisecond,
		Ignore:   func(p string) bool { return filepath.Base(p) == "node_modules" },
	})

	for _, name := range []string{
		".src.go.swp", ".src.go.swx", "src.go~", "4913", ".#src.go", "#src.go#",
		".git/index", ".git/refs/main", "src.go___jb_tmp___",
	} {
		write(t, filepath.Join(root, name), "junk")
	}
	if err := os.Remove(filepath.Join(root, "src.go~")); err != nil {
		t.Fatal(err)
	}
	mkdirAll(t, filepath.Join(root, "node_modules", "x"))
	write(t, filepath.Join(root, "node_modules", "x", "index.js"), "junk")
	mkdirAll(t, filepath.Join(root, "sub", ".git"))
	write(t, filepath.Join(root, "sub", ".git", "HEAD"), "junk")
	if err := os.Chmod(src, 0o600); err != nil {
		t.Fatal(err)
	}

	// Everything above came first; had any of it counted, it would be in
	// this change or an earlier one.
	real := filepath.Join(root, "real.go")
	write(t, real, "x")
	only(t, h.next(), real)
}

func TestTransientFileLeftOut(t *testing.T) {
	root := t.TempDir()
	h := start(t, []string{root}, Options{Debounce: 2 * time.Second, MaxDelay: time.Minute})

	// An atomic save: the temporary file is created and renamed over the
	// target within the burst, so only the target is reported.
	tmp, app := filepath.Join(root, ".app.go.tmp123"), filepath.Join(root, "app.go")
	write(t, tmp, "x")
	if err := os.Rename(tmp, app); err != nil {
		t.Fatal(err)
	}
	only(t, h.next(), app)
}

func TestWatchedFile(t *testing.T) {
	dir := t.TempDir()
	conf, other := filepath.Join(dir, "app.ini"), filepath.Join(dir, "other.txt")
	write(t, conf, "a=1")
	h := start(t, []string{conf}, fast)

	// An editor's atomic save replaces the file; the watch survives it.
	tmp := filepath.Join(dir, "app.ini.tmp")
	write(t, other, "not watched")
	write(t, tmp, "a=2")
	if err := os.Rename(tmp, conf); err != nil {
		t.Fatal(err)
	}
	c := h.next()
	only(t, c, conf)
	if want := "1 file changed under " + conf; c.String() != want {
		t.Errorf("String() = %q, want %q", c, want)
	}

	write(t, other, "still not watched")
	write(t, conf, "a=3")
	only(t, h.next(), conf)
}

func TestMissingPath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	_, err := New([]string{dir, missing}, Options{OnChange: func(Change) {}, OnError: func(error) {}})
	if err == nil {
		t.Fatal("New with a missing path succeeded")
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "watch list") {
		t.Errorf("error = %q; want it to wrap fs.ErrNotExist, name %s and point at the watch list", err, missing)
	}
}

func TestBadOptions(t *testing.T) {
	dir := t.TempDir()
	ok := Options{OnChange: func(Change) {}, OnError: func(error) {}}
	for name, tc := range map[string]struct {
		paths []string
		opts  Options
	}{
		"no OnChange":       {[]string{dir}, Options{OnError: ok.OnError}},
		"no OnError":        {[]string{dir}, Options{OnChange: ok.OnChange}},
		"negative Debounce": {[]string{dir}, Options{OnChange: ok.OnChange, OnError: ok.OnError, Debounce: -1}},
		"no paths":          {nil, ok},
		"empty path":        {[]string{""}, ok},
	} {
		if w, err := New(tc.paths, tc.opts); err == nil {
			w.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestRootRemovedAndBack(t *testing.T) {
	base := t.TempDir()
	app, lib := filepath.Join(base, "app"), filepath.Join(base, "lib")
	mkdirAll(t, filepath.Join(app, "sub"))
	mkdirAll(t, lib)
	write(t, filepath.Join(app, "sub", "a.go"), "x")
	h := start(t, []string{app, lib}, fast)

	if err := os.RemoveAll(app); err != nil {
		t.Fatal(err)
	}
	err := h.nextError()
	if !errors.Is(err, ErrRootRemoved) || !strings.Contains(err.Error(), app) {
		t.Fatalf("error = %v, want ErrRootRemoved naming %s", err, app)
	}

	// The other path is still watched.
	x := filepath.Join(lib, "x.go")
	write(t, x, "x")
	h.until(x)

	// And the removed one again once it is back (found by polling).
	mkdirAll(t, filepath.Join(app, "sub"))
	b := filepath.Join(app, "sub", "b.go")
	write(t, b, "x")
	h.until(b)
	write(t, b, "y")
	c := h.until(b)
	if !slices.Equal(c.Roots, []string{app}) {
		t.Errorf("Roots = %q, want [%s]", c.Roots, app)
	}
}

func TestClose(t *testing.T) {
	root := t.TempDir()
	calls := make(chan Change, 10)
	var closed atomic.Bool
	w, err := New([]string{root}, Options{
		Debounce: 50 * time.Millisecond,
		OnChange: func(c Change) {
			if closed.Load() {
				t.Errorf("OnChange after Close returned: %s", c)
			}
			select {
			case calls <- c:
			default: // only the first is waited for
			}
		},
		OnError: func(err error) { t.Errorf("OnError: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "a.go"), "x")
	select {
	case <-calls:
	case <-time.After(wait):
		t.Fatal("no change")
	}
	// A burst may be pending at Close: it is delivered before Close
	// returns or not at all.
	write(t, filepath.Join(root, "b.go"), "x")
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed.Store(true)
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if s := leaked(); s != "" {
		t.Fatalf("goroutines left after Close:\n%s", s)
	}
}

func TestDefaultIgnore(t *testing.T) {
	for path, want := range map[string]bool{
		"/a/.git":                 true,
		"/a/.hg":                  true,
		"/a/.main.go.swp":         true,
		"/a/.main.go.swo":         true,
		"/a/.main.go.swx":         true,
		"/a/main.go~":             true,
		"/a/4913":                 true,
		"/a/.#main.go":            true,
		"/a/#main.go#":            true,
		"/a/main.go___jb_old___":  true,
		"/a/main.go":              false,
		"/a/main.swift":           false,
		"/a/.gitignore":           false,
		"/a/.github":              false,
		"/a/49130":                false,
		"/a/#":                    false,
		"/a/tests/#1/fixture.txt": false,
	} {
		if got := DefaultIgnore(path); got != want {
			t.Errorf("DefaultIgnore(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestChangeString(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{Paths: []string{"/srv/app/a.go"}, Count: 1, Roots: []string{"/srv/app"}},
			"1 file changed under /srv/app (a.go)"},
		{Change{Paths: []string{"/srv/app/a.go", "/srv/app/lib/b.go"}, Count: 12, Roots: []string{"/srv/app"}},
			"12 files changed under /srv/app (a.go, lib/b.go and 10 more)"},
		{Change{Paths: []string{"/srv/app.ini", "/srv/app/a.go"}, Count: 2, Roots: []string{"/srv/app", "/srv/app.ini"}},
			"2 files changed under /srv/app, /srv/app.ini (app.ini, a.go)"},
		{Change{Paths: []string{"/srv/app/a.go"}, Count: maxTracked, Roots: []string{"/srv/app"}},
			"65536+ files changed under /srv/app (a.go and 65535 more)"},
		{Change{Roots: []string{"/srv/app"}, Overflow: true},
			"events lost (queue overflow), reloading everything under /srv/app"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	limit := addError("/srv/app/x", &fs.PathError{Op: "inotify_add_watch", Path: "/srv/app/x", Err: syscall.ENOSPC})
	if !errors.Is(limit, ErrWatchLimit) || !strings.Contains(limit.Error(), "fs.inotify.max_user_watches") || !strings.Contains(limit.Error(), "/srv/app/x") {
		t.Errorf("watch limit error = %q", limit)
	}
	if err := addError("/srv/app/x", syscall.ENOENT); err != nil {
		t.Errorf("addError(ENOENT) = %v, want nil (the directory is gone; its events say so)", err)
	}
	if err := addError("/srv/app/x", syscall.EACCES); err == nil || !strings.Contains(err.Error(), "/srv/app/x: permission denied") {
		t.Errorf("addError(EACCES) = %v", err)
	}
	over := eventError(fsnotify.ErrEventOverflow)
	if !errors.Is(over, ErrOverflow) || !strings.Contains(over.Error(), "max_queued_events") {
		t.Errorf("overflow error = %q", over)
	}
	if err := initError(syscall.EMFILE); !errors.Is(err, ErrWatchLimit) || !strings.Contains(err.Error(), "max_user_instances") {
		t.Errorf("init error = %q", err)
	}
}

func TestOverflow(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: overflows the kernel's event queue with thousands of files")
	}
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skipf("skipped: no inotify queue limit to overflow: %v", err)
	}
	var limit int
	if _, err := fmt.Sscan(string(b), &limit); err != nil || limit > 1<<16 {
		t.Skipf("skipped: fs.inotify.max_queued_events = %q, too many files to create", b)
	}

	root := t.TempDir()
	gen := filepath.Join(root, "gen")
	mkdirAll(t, gen)
	entered, release, stop := make(chan Change), make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	changes, errs := make(chan Change, 10), make(chan error, 10)
	first := true
	w, err := New([]string{root}, Options{
		Debounce: 50 * time.Millisecond,
		OnChange: func(c Change) {
			if first {
				// Hold the Watcher's goroutine: nothing reads events
				// until release, so the kernel's queue fills up.
				first = false
				entered <- c
				<-release
				return
			}
			select {
			case changes <- c:
			case <-stop:
			}
		},
		OnError: func(err error) {
			select {
			case errs <- err:
			case <-stop:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(stop)
		releaseOnce.Do(func() { close(release) })
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	write(t, filepath.Join(root, "a.go"), "x")
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("no change")
	}
	// Two events a file (create, write), beyond the queue and what
	// fsnotify holds in its read buffer.
	for i := range limit/2 + 3000 {
		write(t, filepath.Join(gen, fmt.Sprintf("f%05d", i)), "x")
	}
	// Created once events are being dropped: only the rescan finds it.
	late := filepath.Join(root, "late")
	mkdirAll(t, late)
	releaseOnce.Do(func() { close(release) })

	select {
	case err := <-errs:
		if !errors.Is(err, ErrOverflow) {
			t.Fatalf("OnError(%v), want ErrOverflow", err)
		}
	case <-time.After(wait):
		t.Fatal("no overflow reported")
	}
	deadline := time.After(wait)
	for overflowed := false; !overflowed; {
		select {
		case c := <-changes:
			overflowed = c.Overflow
		case err := <-errs:
			t.Fatalf("OnError(%v)", err)
		case <-deadline:
			t.Fatal("no change with Overflow set")
		}
	}
	x := filepath.Join(late, "x.go")
	write(t, x, "x")
	for {
		select {
		case c := <-changes:
			if slices.Contains(c.Paths, x) {
				return
			}
		case err := <-errs:
			t.Fatalf("OnError(%v)", err)
		case <-deadline:
			t.Fatalf("no change listing %s: the rescan did not watch %s", x, late)
		}
	}
}
