package watch

import (
	"fmt"
	"path/filepath"
	"strings"
)

// MaxPaths is the number of paths a Change lists; Count says how many there
// were in all.
const MaxPaths = 10

// maxTracked bounds the distinct paths remembered during one burst, so that a
// burst touching millions of files cannot grow memory without bound.
const maxTracked = 1 << 16

// Change is one debounced burst of changes under the watched paths.
type Change struct {
	// Paths are the first MaxPaths changed paths in sorted order: absolute,
	// cleaned, deduplicated. A directory appears here only when it was
	// removed or moved away; a new directory appears as the files in it.
	Paths []string
	// Count is the number of distinct paths that changed (>= len(Paths)).
	// It stops at 65536; String then says "65536+".
	Count int
	// Roots are the watched paths, as given to New (made absolute), under
	// which the changes happened: sorted, deduplicated. A change is
	// attributed to the innermost root that contains it.
	Roots []string
	// Overflow reports that the kernel dropped events: anything under Roots
	// may have changed, beyond what Paths lists.
	Overflow bool
}

// String describes c for a log line, with paths relative to their root:
//
//	3 files changed under /srv/app (app.go, lib/db.go, main.go)
//	12 files changed under /srv/app (a.go, b.go, …, j.go and 2 more)
//	1 file changed under /srv/app/config.yaml
//	events lost (queue overflow), reloading everything under /srv/app
func (c Change) String() string {
	var b strings.Builder
	roots := strings.Join(c.Roots, ", ")
	if c.Overflow && c.Count == 0 {
		fmt.Fprintf(&b, "events lost (queue overflow), reloading everything under %s", roots)
		return b.String()
	}
	n := fmt.Sprint(c.Count)
	if c.Count >= maxTracked {
		n += "+"
	}
	noun := "files"
	if c.Count == 1 {
		noun = "file"
	}
	fmt.Fprintf(&b, "%s %s changed under %s", n, noun, roots)
	if len(c.Paths) == 1 && len(c.Roots) == 1 && c.Paths[0] == c.Roots[0] {
		// The root itself (a watched file): its name is already there.
	} else if len(c.Paths) > 0 {
		b.WriteString(" (")
		for i, p := range c.Paths {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.rel(p))
		}
		if more := c.Count - len(c.Paths); more > 0 {
			fmt.Fprintf(&b, " and %d more", more)
		}
		b.WriteString(")")
	}
	if c.Overflow {
		b.WriteString("; events were lost (queue overflow), other files may have changed too")
	}
	return b.String()
}

// rel returns p relative to the innermost of c.Roots containing it, or p.
func (c Change) rel(p string) string {
	r := innermost(c.Roots, p)
	switch {
	case r == "":
		return p
	case r == p:
		return filepath.Base(p)
	}
	rel, err := filepath.Rel(r, p)
	if err != nil {
		return p
	}
	return rel
}

// innermost returns the longest of roots that is p or an ancestor of p, or
// "" if none is.
func innermost(roots []string, p string) string {
	best := ""
	for _, r := range roots {
		if len(r) > len(best) && within(p, r) {
			best = r
		}
	}
	return best
}

// within reports whether p is dir or lies below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir) && (strings.HasSuffix(dir, string(filepath.Separator)) || p[len(dir)] == filepath.Separator)
}
