package watch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// ship lays out dir/releases/<name>/{app.php,sub/lib.php} and points
// dir/current to it, replacing the link atomically as ln -sfn does.
func ship(t *testing.T, dir, name string) {
	t.Helper()
	rel := filepath.Join(dir, "releases", name)
	mkdirAll(t, filepath.Join(rel, "sub"))
	write(t, filepath.Join(rel, "app.php"), name)
	write(t, filepath.Join(rel, "sub", "lib.php"), name)
	tmp := filepath.Join(dir, "current.tmp")
	if err := os.Symlink(filepath.Join("releases", name), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
}

// A watched directory that is a release link (current -> releases/1)
// follows the link: flipping it is a change, and from then on the new
// release is watched (its sub-directories too) and the old one is not.
func TestLinkedDirectoryFollowsTheLink(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	ship(t, dir, "1")
	cur := filepath.Join(dir, "current")
	h := start(t, []string{cur}, fast)

	ship(t, dir, "2")
	c := h.until(cur)
	if !slices.Contains(c.Roots, cur) {
		t.Errorf("the flip's change has roots %q, want %s", c.Roots, cur)
	}

	write(t, filepath.Join(dir, "releases", "1", "app.php"), "old release edited")
	write(t, filepath.Join(dir, "releases", "2", "sub", "lib.php"), "new release edited")
	c = h.until(filepath.Join(cur, "sub", "lib.php"))
	if slices.Contains(c.Paths, filepath.Join(cur, "app.php")) {
		t.Errorf("an edit of the old release was reported after the flip: %s", c)
	}
}

// The same for a watched file under the link, and for a watched directory
// below it (watch: [current/config/app.ini, current/src]).
func TestPathsBelowALinkFollowIt(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	ship(t, dir, "1")
	cur := filepath.Join(dir, "current")
	file, sub := filepath.Join(cur, "app.php"), filepath.Join(cur, "sub")
	h := start(t, []string{file, sub}, fast)

	ship(t, dir, "2")
	h.until(file)
	write(t, filepath.Join(dir, "releases", "2", "app.php"), "edited")
	h.until(file)
	write(t, filepath.Join(dir, "releases", "2", "sub", "lib.php"), "edited")
	h.until(filepath.Join(sub, "lib.php"))
}
