package watch

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults for the zero values of Options.
const (
	DefaultDebounce = 300 * time.Millisecond
	DefaultMaxDelay = 2 * time.Second
)

// pollEvery is how often a Watcher looks for removed watched paths to
// reappear. Their parent is not watched, so there is no event to wait for.
const pollEvery = time.Second

// Options configures a Watcher. OnChange and OnError are required.
type Options struct {
	// Debounce is how long a burst of events must be quiet before its
	// Change is delivered. 0 means DefaultDebounce (300 ms).
	Debounce time.Duration
	// MaxDelay caps the time from a burst's first event to its Change, so
	// that continuous writes cannot starve reloads. 0 means DefaultMaxDelay
	// (2 s); a value below Debounce is raised to Debounce.
	MaxDelay time.Duration
	// OnChange receives one Change per burst.
	OnChange func(Change)
	// OnError receives every problem found after New has returned: a
	// directory that cannot be watched, the watch limit, a lost event
	// queue, a watched path that was removed. The Watcher carries on.
	OnError func(error)
	// Ignore, if not nil, reports whether an absolute path is to be ignored,
	// in addition to DefaultIgnore. An ignored directory is not watched, nor
	// anything below it. It is called from New and from the Watcher's
	// goroutine, never concurrently, and never for the paths given to New.
	Ignore func(path string) bool
}

// Watcher watches paths and reports debounced changes under them; see the
// package documentation for what it watches and reports.
//
// OnChange and OnError are called from the Watcher's own goroutine, one at a
// time, in the order things happened, and never after Close has returned.
// While a callback runs the Watcher reads no events: the kernel queues them,
// and what arrives meanwhile becomes the next Change. A callback should
// therefore hand its value to its owner's loop and return promptly, and it
// must not call Close, which waits for it.
type Watcher struct {
	opts  Options
	fsw   *fsnotify.Watcher
	roots []*root

	// Everything below is owned by the goroutine running loop (by New
	// before it starts).

	tree    map[string]bool // directories watched as part of a directory root
	parents map[string]bool // directories watched for the file roots in them
	links   map[string]bool // symbolic links on the roots' paths (link.go)
	linkDir map[string]bool // directories watched for the links in them
	pending map[string]bool // paths changed in this burst → created in it
	noted   int             // calls to note, to tell whether an event counted
	full    bool            // pending reached maxTracked and dropped paths
	lost    bool            // the kernel dropped events during this burst
	first   time.Time       // first counted event of this burst; zero if none
	timer   *time.Timer     // fires when the burst is due
	poll    *time.Ticker    // running while a root is gone
	early   error           // found by New, reported by loop first

	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when loop has returned
	closeOnce sync.Once
	closeErr  error
}

// root is one path given to New.
type root struct {
	path   string // absolute and clean
	dir    bool   // a directory watched recursively; else a file, watched through its parent
	target string // path with its links resolved when it was last watched (link.go)
	gone   bool   // missing; its watches are dropped and it is polled for
	told   bool   // gone has been reported to OnError
	check  bool   // a removal or rename was seen; stat it when the burst is due
}

// New starts watching paths, each an existing file or directory (relative
// paths resolve against the working directory), and returns once every
// directory under them is watched. It fails, naming the path, if a path does
// not exist or cannot be watched, if the watch limit is reached (wrapping
// ErrWatchLimit), or if opts lacks a callback; it then leaves nothing
// running. A directory below a path that cannot be watched for another
// reason (permissions) is reported to OnError once the Watcher runs.
//
// The caller owns the Watcher and must Close it.
func New(paths []string, opts Options) (*Watcher, error) {
	switch {
	case opts.OnChange == nil || opts.OnError == nil:
		return nil, errors.New("watch: Options.OnChange and Options.OnError are required")
	case opts.Debounce < 0 || opts.MaxDelay < 0:
		return nil, fmt.Errorf("watch: negative Debounce (%v) or MaxDelay (%v)", opts.Debounce, opts.MaxDelay)
	case len(paths) == 0:
		return nil, errors.New("watch: no paths to watch")
	}
	if opts.Debounce == 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	opts.MaxDelay = max(opts.MaxDelay, opts.Debounce)

	roots, err := statRoots(paths)
	if err != nil {
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, initError(err)
	}
	w := &Watcher{
		opts:    opts,
		fsw:     fsw,
		roots:   roots,
		tree:    map[string]bool{},
		parents: map[string]bool{},
		links:   map[string]bool{},
		linkDir: map[string]bool{},
		pending: map[string]bool{},
		timer:   time.NewTimer(time.Hour),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.timer.Stop()
	var later []error
	for _, r := range roots {
		err := w.watchRoot(r, nil)
		if err == nil && !w.watched(r) {
			err = fmt.Errorf("watch: %s: removed while starting to watch it", r.path)
		}
		if errors.Is(err, ErrWatchLimit) || !w.watched(r) {
			fsw.Close()
			return nil, err
		}
		if err != nil {
			later = append(later, err)
		}
	}
	w.early = errors.Join(later...)
	go w.loop()
	return w, nil
}

// statRoots makes paths absolute, drops duplicates and checks that each
// exists, reporting every path that does not at once.
func statRoots(paths []string) ([]*root, error) {
	var roots []*root
	var errs []error
	seen := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if p == "" || err != nil {
			errs = append(errs, fmt.Errorf("watch: %q: not a usable path (fix it in the watch list of the config)", p))
			continue
		}
		if seen[abs] {
			continue
		}
		seen[abs] = true
		fi, err := os.Stat(abs)
		if err != nil {
			errs = append(errs, fmt.Errorf("watch: %s: %w (create it or remove it from the watch list of the config)", abs, unwrapPath(err)))
			continue
		}
		roots = append(roots, &root{path: abs, dir: fi.IsDir()})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(roots, func(a, b *root) int { return cmp.Compare(a.path, b.path) })
	return roots, nil
}

// Close stops the Watcher: it waits for a running callback to return, stops
// the Watcher's goroutines and releases the inotify instance. No callback
// runs after Close returns. Calling it again returns the first call's result.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.quit)
		<-w.done
		w.closeErr = w.fsw.Close()
	})
	return w.closeErr
}

// loop is the Watcher's goroutine: it owns all of the Watcher's state.
func (w *Watcher) loop() {
	defer close(w.done)
	defer w.timer.Stop()
	defer w.stopPoll()
	if w.early != nil {
		w.opts.OnError(w.early)
		w.early = nil
	}
	events, errs := w.fsw.Events, w.fsw.Errors
	for {
		var pollC <-chan time.Time
		if w.poll != nil {
			pollC = w.poll.C
		}
		before := w.noted
		select {
		case <-w.quit:
			return
		case ev, ok := <-events:
			if !ok {
				// fsnotify closes its channels only when closed, which
				// Close does after loop has returned.
				w.opts.OnError(errors.New("watch: file event stream ended unexpectedly; changes are no longer seen"))
				return
			}
			w.handle(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.opts.OnError(eventError(err))
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.rescan()
			}
		case <-w.timer.C:
			w.flush()
		case <-pollC:
			w.report(w.checkRoots())
		}
		if w.noted != before && (len(w.pending) > 0 || w.full || w.lost) {
			w.schedule()
		}
	}
}

// handle applies one fsnotify event to the watches and the pending burst.
func (w *Watcher) handle(ev fsnotify.Event) {
	name := ev.Name
	if ev.Op&^fsnotify.Chmod == 0 {
		return
	}
	if w.links[name] {
		w.relinked(name)
		return
	}
	inTree := w.tree[filepath.Dir(name)]
	r := w.rootAt(name)
	if !inTree && r == nil && !w.tree[name] && !w.parents[name] {
		return // a sibling of a watched file
	}
	if w.ignored(name) {
		return
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		w.removed(name)
		return
	}
	if ev.Has(fsnotify.Create) && (inTree || r != nil && r.dir) {
		if fi, err := os.Lstat(name); err == nil && fi.IsDir() {
			// Walk it, as mkdir -p or a move creates whole trees before
			// a watch on the top can be added; what is in it is new.
			w.report(w.addTree(name, w.created))
			return
		}
	}
	if w.tree[name] || w.parents[name] {
		return // a directory's own event (kqueue); its entries speak for it
	}
	w.note(name, ev.Has(fsnotify.Create))
}

// removed handles name being removed or renamed away: it counts as changed,
// its watches go, and a root it was, or contained, is checked when the
// burst is due.
func (w *Watcher) removed(name string) {
	if w.tree[filepath.Dir(name)] || w.tree[name] || w.rootAt(name) != nil {
		// Not so the directory of a watched file: it is not watched
		// itself, only the file in it, which is noted below.
		w.note(name, false)
	}
	w.dropTree(name)
	for _, r := range w.roots {
		switch {
		case r.path == name:
			// An editor's atomic save removes a watched file for a
			// moment: decide when the burst is quiet.
			r.check = true
		case within(r.path, name) && !r.gone:
			// The directory holding a watched file, or an ancestor of a
			// nested root, went away.
			r.check = true
			w.note(r.path, false)
		}
	}
}

// dropTree forgets the watches on dir and every directory below it. The
// kernel drops the watch of a deleted directory by itself, but one moved
// away stays attached to it, so it is removed explicitly; errors only mean
// the watch was gone already.
func (w *Watcher) dropTree(dir string) {
	if !w.tree[dir] && !w.parents[dir] {
		return // nothing is watched below a directory that is not watched
	}
	for _, m := range []map[string]bool{w.tree, w.parents} {
		for d := range m {
			if within(d, dir) {
				delete(m, d)
				if !w.linkDir[d] {
					_ = w.fsw.Remove(d)
				}
			}
		}
	}
}

// note adds path to the pending burst; created says it was created during
// the burst, so that it is left out if it is gone again when the burst ends.
func (w *Watcher) note(path string, created bool) {
	w.noted++
	if _, ok := w.pending[path]; ok {
		return // the first event of the burst says whether it is new
	}
	if len(w.pending) >= maxTracked {
		w.full = true
		return
	}
	w.pending[path] = created
}

// created notes a file found in a new directory.
func (w *Watcher) created(path string) { w.note(path, true) }

// schedule (re)arms the timer after an event that counted: Debounce from
// now, but no later than MaxDelay after the burst's first event.
func (w *Watcher) schedule() {
	now := time.Now()
	if w.first.IsZero() {
		w.first = now
	}
	d := min(w.opts.Debounce, w.first.Add(w.opts.MaxDelay).Sub(now))
	w.timer.Reset(max(d, 0))
}

// flush ends the burst: it settles removed roots, then delivers the Change
// (if anything is left changed) and the errors.
func (w *Watcher) flush() {
	w.first = time.Time{}
	err := w.checkRoots()
	if c, ok := w.change(); ok {
		w.opts.OnChange(c)
	}
	w.report(err)
}

// change takes the pending burst as a Change; ok is false if nothing is left
// changed once files created and removed within the burst are dropped.
func (w *Watcher) change() (c Change, ok bool) {
	paths := make([]string, 0, len(w.pending))
	for p, created := range w.pending {
		if created {
			if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	c = Change{Count: len(paths), Overflow: w.lost}
	if w.full {
		c.Count = max(c.Count, maxTracked)
	}
	all := make([]string, len(w.roots))
	for i, r := range w.roots {
		all[i] = r.path
	}
	if c.Overflow {
		c.Roots = all
	} else {
		for _, p := range paths {
			if r := innermost(all, p); r != "" && !slices.Contains(c.Roots, r) {
				c.Roots = append(c.Roots, r)
			}
		}
		slices.Sort(c.Roots)
	}
	c.Paths = slices.Clone(paths[:min(len(paths), MaxPaths)])
	w.pending = map[string]bool{}
	w.full, w.lost = false, false
	return c, c.Count > 0 || c.Overflow
}

// checkRoots settles the roots that were removed or are missing: a root
// that is back is watched again and its files count as changed; one that is
// missing is dropped and reported once. It keeps the poll running while a
// root is missing.
func (w *Watcher) checkRoots() error {
	var errs []error
	anyGone := false
	for _, r := range w.roots {
		if !r.gone && !r.check {
			continue
		}
		r.check = false
		fi, err := os.Stat(r.path)
		why := ""
		switch {
		case err != nil:
			why = unwrapPath(err).Error()
		case fi.IsDir() != r.dir && r.dir:
			why = "now a file, not a directory"
		case fi.IsDir() != r.dir:
			why = "now a directory, not a file"
		}
		if why == "" {
			if !r.gone && w.watched(r) && !w.retargeted(r) {
				continue // still there: a file saved by rename, or a rescan
			}
			// Back (or replaced while its removal was pending): watch it
			// afresh; what is in it is new.
			err := w.watchRoot(r, w.created)
			if w.watched(r) {
				if !r.dir {
					w.note(r.path, false)
				}
				r.gone, r.told = false, false
				errs = append(errs, err) // about directories below it
				continue
			}
			// There, but not watchable: say so once, then keep polling.
			r.gone = true
			anyGone = true
			if err != nil && !r.told {
				r.told = true
				errs = append(errs, err)
			}
			continue
		}
		if !r.gone {
			r.gone = true
			if r.dir {
				w.dropTree(r.path)
			}
		}
		anyGone = true
		if !r.told {
			r.told = true
			errs = append(errs, fmt.Errorf("watch: %s: %w (%s); watching it again when it reappears", r.path, ErrRootRemoved, why))
		}
	}
	switch {
	case anyGone && w.poll == nil:
		w.poll = time.NewTicker(pollEvery)
	case !anyGone:
		w.stopPoll()
	}
	return errors.Join(errs...)
}

func (w *Watcher) stopPoll() {
	if w.poll != nil {
		w.poll.Stop()
		w.poll = nil
	}
}

// rescan rebuilds the watches after the kernel dropped events, some of which
// may have been directories created or removed, and marks the burst as lost
// so that a Change is delivered whatever is found.
func (w *Watcher) rescan() {
	old := w.tree
	w.tree = map[string]bool{}
	var errs []error
	for _, r := range w.roots {
		r.check = true
		if r.dir && !r.gone {
			errs = append(errs, w.addTree(r.path, nil))
		}
	}
	for d := range old {
		if !w.tree[d] && !w.parents[d] {
			_ = w.fsw.Remove(d) // gone already, most likely
		}
	}
	w.lost = true
	w.noted++
	w.report(errors.Join(errs...))
}

// watchRoot watches r: a directory with addTree, passing found along; a
// file through its parent directory.
func (w *Watcher) watchRoot(r *root, found func(string)) error {
	if err := w.watchLinks(r); err != nil {
		return err
	}
	if r.dir {
		return w.addTree(r.path, found)
	}
	dir := filepath.Dir(r.path)
	if w.parents[dir] {
		return nil
	}
	if err := w.fsw.Add(dir); err != nil {
		if err := addError(dir, err); err != nil {
			return err
		}
		return fmt.Errorf("watch: %s: its directory was removed while starting to watch it", r.path)
	}
	w.parents[dir] = true
	return nil
}

// watched reports whether r's watch is in place.
func (w *Watcher) watched(r *root) bool {
	if r.dir {
		return w.tree[r.path]
	}
	return w.parents[filepath.Dir(r.path)]
}

// addTree watches dir and every directory below it that is not ignored,
// and passes every other entry that is not ignored to found, if not nil.
// Symbolic links are not followed. It stops at the watch limit. The error
// names the first directory that could not be watched and counts the
// others; directories that vanish meanwhile are not errors.
func (w *Watcher) addTree(dir string, found func(string)) error {
	var first error
	failed := 0
	fail := func(err error) {
		if first == nil {
			first = err
		}
		failed++
	}
	var walk func(d string) bool
	walk = func(d string) bool {
		if err := w.fsw.Add(d); err != nil {
			if err := addError(d, err); err != nil {
				fail(err)
				return !errors.Is(err, ErrWatchLimit)
			}
			return true
		}
		w.tree[d] = true
		// Read after adding the watch, so that an entry is either listed
		// here or announced by an event.
		entries, err := os.ReadDir(d)
		if err != nil {
			if err := addError(d, err); err != nil {
				fail(err)
			}
		}
		for _, e := range entries {
			p := filepath.Join(d, e.Name())
			if w.ignored(p) {
				continue
			}
			if !e.IsDir() {
				if found != nil {
					found(p)
				}
				continue
			}
			if !walk(p) {
				return false
			}
		}
		return true
	}
	walk(dir)
	if failed > 1 {
		return fmt.Errorf("%w (and %d more directories not watched)", first, failed-1)
	}
	return first
}

// rootAt returns the root whose path is path, or nil.
func (w *Watcher) rootAt(path string) *root {
	for _, r := range w.roots {
		if r.path == path {
			return r
		}
	}
	return nil
}

// ignored applies DefaultIgnore and Options.Ignore to a path that is not a
// root.
func (w *Watcher) ignored(path string) bool {
	if w.rootAt(path) != nil {
		return false
	}
	return DefaultIgnore(path) || w.opts.Ignore != nil && w.opts.Ignore(path)
}

// report passes err, if any, to OnError.
func (w *Watcher) report(err error) {
	if err != nil {
		w.opts.OnError(err)
	}
}
