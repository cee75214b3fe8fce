package watch

import (
	"os"
	"path/filepath"
	"strings"
)

// Release links. A deploy that flips a symbolic link (current ->
// releases/42, then ln -sfn releases/43 current) replaces what a watched
// path under the link names without an event in the old tree: inotify
// watches what a path named when it was added. So every symbolic link on a
// root's path, as written (current in /srv/app/current/src), is watched
// through the directory that holds it; an event on the link (ln -sfn
// renames a new link over it; rm and ln remove and create it) marks the
// roots below it for a check when the burst is due. A root whose links
// now lead elsewhere (its target changed) is watched afresh: the old
// release's watches go, the new release's files count as changed (they are
// what the workers will run), and the change names the root. A link that
// leads nowhere makes its roots missing, as a removed root is.
//
// Limits: only links on the path as written are followed, not links met
// inside the target of another one.

// watchLinks watches the directories holding the links on r's path and
// records where r leads now.
func (w *Watcher) watchLinks(r *root) error {
	if t, err := filepath.EvalSymlinks(r.path); err == nil {
		r.target = t
	}
	for _, l := range linksOn(r.path) {
		if w.links[l] {
			continue
		}
		dir := filepath.Dir(l)
		if !w.linkDir[dir] {
			if err := w.fsw.Add(dir); err != nil {
				if err := addError(dir, err); err != nil {
					return err
				}
				continue // gone meanwhile: the root's own check reports it
			}
			w.linkDir[dir] = true
		}
		w.links[l] = true
	}
	return nil
}

// linksOn returns the symbolic links among the leading parts of path,
// path itself included, outermost first.
func linksOn(path string) []string {
	var out []string
	cur := string(filepath.Separator)
	for _, part := range strings.Split(strings.TrimPrefix(path, cur), string(filepath.Separator)) {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		if fi, err := os.Lstat(cur); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			out = append(out, cur)
		}
	}
	return out
}

// relinked handles an event on link: the roots at or below it are checked
// when the burst is due (checkRoots, retargeted) and count as changed.
func (w *Watcher) relinked(link string) {
	for _, r := range w.roots {
		if within(r.path, link) {
			r.check = true
			w.note(r.path, false)
		}
	}
}

// retargeted reports whether r's links lead elsewhere than when it was
// watched, and if so drops its watches (the directory's tree, or a file's
// parent) so that it is watched afresh.
func (w *Watcher) retargeted(r *root) bool {
	t, err := filepath.EvalSymlinks(r.path)
	if err != nil || t == r.target {
		return false
	}
	if r.dir {
		w.dropTree(r.path)
	} else {
		w.dropTree(filepath.Dir(r.path))
	}
	return true
}
