package logfile

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// OpenFile opens path for appending (creating it with Mode), as a process
// that may be root and whose workers may be another user must: the file
// is opened relative to its directory with O_NOFOLLOW, and it is refused
// unless
//
//   - it is not a symbolic link (O_NOFOLLOW on the last component), nor a
//     file with a second hard link (the other name could be any file root
//     may write),
//   - it is a regular file owned by this process's user or by root,
//   - its directory is owned by this process's user or by root, and is
//     not writable by its group (unless that group is root's) or by others
//     unless it has the sticky bit (as /tmp): someone else who may write
//     the directory could swap the file between two opens.
//
// These are logrotate's rules for the directories it rotates in and
// nginx's fix of CVE-2016-1247 (logs written by root into a directory the
// worker user owns). The error says what is wrong and how to fix it. The
// descriptor has O_CLOEXEC: child processes never inherit it.
func OpenFile(path string) (*os.File, error) {
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if err := checkDir(dir, &st); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, Mode)
	if err == unix.ELOOP {
		target, _ := os.Readlink(path)
		return nil, fmt.Errorf("%s is a symbolic link (to %s): drover does not follow a link when it opens a file to write "+
			"(someone who may write the directory could point it at any file); set the real path instead, or remove the link", path, target)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := checkFile(path, &st); err != nil {
		f.Close()
		return nil, err
	}
	// O_NONBLOCK kept a FIFO from blocking the open (it is refused above);
	// a regular file ignores it, but clear it all the same.
	if err := unix.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return f, nil
}

// trusted reports whether uid may own what this process writes: itself or
// root.
func trusted(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

func checkFile(path string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%s is not a regular file: drover appends only to regular files (give the path of a file)", path)
	case !trusted(st.Uid):
		return fmt.Errorf("%s is owned by uid %d: drover (uid %d) appends only to a file of its own or root's "+
			"(`chown %d %s`, or remove it and let drover create it)", path, st.Uid, os.Geteuid(), os.Geteuid(), path)
	case st.Nlink > 1:
		return fmt.Errorf("%s has %d hard links: the other names could be any file drover may write "+
			"(remove it and let drover create it)", path, st.Nlink)
	}
	return nil
}

func checkDir(dir string, st *unix.Stat_t) error {
	sticky := st.Mode&unix.S_ISVTX != 0
	switch {
	case !trusted(st.Uid):
		return fmt.Errorf("directory %s is owned by uid %d: drover (uid %d) writes files only in a directory of its own or root's, "+
			"which nobody else may write (`chown %d %s`, or choose another directory)", dir, st.Uid, os.Geteuid(), os.Geteuid(), dir)
	case st.Mode&0o002 != 0 && !sticky:
		return fmt.Errorf("directory %s is writable by others (mode %04o) without the sticky bit: anyone could replace the file "+
			"drover writes there (`chmod o-w %s`, or choose another directory)", dir, st.Mode&0o7777, dir)
	case st.Mode&0o020 != 0 && st.Gid != 0 && !sticky:
		return fmt.Errorf("directory %s is writable by group %d (mode %04o): its members could replace the file drover writes there "+
			"(`chmod g-w %s`, or choose another directory)", dir, st.Gid, st.Mode&0o7777, dir)
	}
	return nil
}

// CheckDir applies OpenFile's rules for a directory to dir, for files that
// drover writes there by other means (a pid file written by rename).
func CheckDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return checkDir(dir, &st)
}
