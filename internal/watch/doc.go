// Package watch turns file-system events under the config's `watch:` paths
// into debounced change notifications: the edit–save–refresh loop in which a
// saved file makes drover reload its workers.
//
// [New] takes the paths (files or directories) and an [Options] with two
// callbacks. Directories are watched recursively: every sub-directory that
// exists at start is watched, and so is every directory created or moved in
// later, a whole `mkdir -p` tree included; files found in a new directory
// count as changed, since they were not there before. Directories that are
// removed or moved away are dropped without error. A file is watched through
// its parent directory, so an editor's atomic save (write a temporary file,
// rename it over the original) is seen as a change of the file and the watch
// survives it.
//
// Events are debounced: a burst (an editor's write, rename and chmod; a `git
// checkout` touching 500 files) yields one [Change], delivered once the burst
// has been quiet for Options.Debounce (300 ms by default), or at the latest
// Options.MaxDelay (2 s) after its first event, so continuous writes cannot
// starve reloads. A Change carries a sorted, deduplicated sample of the
// changed paths and their count; its String method is the log line. Files
// that are created and gone again within one burst (an editor's temporary
// files) are left out, and a burst that leaves nothing changed yields no
// Change.
//
// Some names are never source and are ignored ([DefaultIgnore]): editor swap,
// backup and lock files (`.swp`, `~`, vim's `4913` probe, emacs' `.#` locks)
// and version-control directories (`.git`, never watched at all);
// Options.Ignore adds to the list. Attribute-only events (chmod, touch -m
// without a write) do not count either.
//
// Nothing fails silently. New fails for a path that does not exist, naming
// it, and when the kernel's watch limit is reached. After New, problems go
// to Options.OnError as descriptive errors (sentinels [ErrWatchLimit],
// [ErrOverflow], [ErrRootRemoved]): a watched path that is removed is
// reported once the burst that removed it is quiet, the other paths keep
// being watched, and the path is watched again, with its files counting as
// changed, when it reappears (checked every second). An event-queue overflow
// is reported, the tree is rescanned and a Change with Overflow set is
// delivered, because some change may have been missed.
//
// A [Watcher] owns one goroutine (plus fsnotify's reader), which calls the
// callbacks one at a time, in order, never after Close has returned. The
// package logs nothing and imports nothing of drover's.
//
// Release links: a symbolic link on a watched path as written (current in
// /srv/app/current, the layout of symlink deploys) is followed when it is
// flipped: the flip is a Change of the paths below it, and from then on the
// new target is watched instead of the old one (link.go).
//
// Limits: symbolic links inside a watched directory are not followed (a
// watched path that is itself a symlink is, and so are links on its way);
// renaming an ancestor of a watched path is not noticed; on Linux every watched directory costs one
// inotify watch (fs.inotify.max_user_watches).
package watch
