package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// Errors that callers may branch on with errors.Is; the errors a Watcher
// reports wrap them with the path concerned and what to do.
var (
	// ErrWatchLimit means the kernel refused another watch: on Linux the
	// per-user inotify limit (fs.inotify.max_user_watches, one watch per
	// directory) or the number of inotify instances
	// (fs.inotify.max_user_instances). Directories past the limit are not
	// watched.
	ErrWatchLimit = errors.New("inotify watch limit reached")
	// ErrOverflow means the kernel's event queue overflowed and events were
	// dropped (fs.inotify.max_queued_events); the Watcher rescans and
	// delivers a Change with Overflow set.
	ErrOverflow = errors.New("file event queue overflowed, changes may have been missed")
	// ErrRootRemoved means a path given to New no longer exists (or is no
	// longer the kind it was). The Watcher keeps watching the other paths
	// and picks this one up again when it reappears.
	ErrRootRemoved = errors.New("watched path removed")
)

// limitHint tells the user how to get past ErrWatchLimit.
const limitHint = "raise it (sysctl -w fs.inotify.max_user_watches=524288, persist in /etc/sysctl.d/) or watch fewer directories"

// addError describes a failure to watch dir, or returns nil for failures
// that only mean dir is gone again, which the events for its removal cover.
func addError(dir string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("watch: %s: %w (fs.inotify.max_user_watches): %s", dir, ErrWatchLimit, limitHint)
	}
	return fmt.Errorf("watch: %s: %w", dir, unwrapPath(err))
}

// initError describes a failure to create the fsnotify watcher.
func initError(err error) error {
	if errors.Is(err, syscall.EMFILE) {
		return fmt.Errorf("watch: %w (fs.inotify.max_user_instances): %v; raise it (sysctl -w fs.inotify.max_user_instances=1024) or stop other watchers", ErrWatchLimit, err)
	}
	return fmt.Errorf("watch: start file watcher: %w", err)
}

// eventError describes an error from fsnotify's Errors channel.
func eventError(err error) error {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		return fmt.Errorf("watch: %w (raise fs.inotify.max_queued_events); rescanned and reloading", ErrOverflow)
	}
	return fmt.Errorf("watch: reading file events: %w", err)
}

// unwrapPath strips an *fs.PathError whose path the caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
