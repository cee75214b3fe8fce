package watch

import (
	"path/filepath"
	"strings"
)

// DefaultIgnore reports whether path names something that is never source,
// judging by its last element only:
//
//   - version-control directories: .git, .hg, .svn (never watched);
//   - vim: swap files (.swp, .swo, .swn, .swx, .swpx) and the "4913" probe
//     it writes to test whether a directory is writable;
//   - backups ending in "~"; emacs lock (".#name") and auto-save ("#name#")
//     files; JetBrains safe-write temporaries ("___jb_tmp___",
//     "___jb_old___").
//
// A Watcher always applies it, before Options.Ignore; paths given to New are
// watched even if they match.
func DefaultIgnore(path string) bool {
	base := filepath.Base(path)
	switch base {
	case ".git", ".hg", ".svn", "4913":
		return true
	}
	switch filepath.Ext(base) {
	case ".swp", ".swo", ".swn", ".swx", ".swpx":
		return true
	}
	return strings.HasSuffix(base, "~") ||
		strings.HasPrefix(base, ".#") ||
		len(base) > 1 && strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#") ||
		strings.HasSuffix(base, "___jb_tmp___") ||
		strings.HasSuffix(base, "___jb_old___")
}
