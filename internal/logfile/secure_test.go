package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeOK opens path with Open, writes a line and closes it.
func openErr(t *testing.T, path string) error {
	t.Helper()
	w, err := Open(path)
	if err == nil {
		w.Write([]byte("root's line\n"))
		w.Close()
	}
	return err
}

// A log_file that is a symbolic link is refused: a worker user that can
// write the log directory would otherwise make root append to any file
// (nginx CVE-2016-1247). The target stays untouched.
func TestOpenRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	if err := os.WriteFile(target, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "drover.log")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	err := openErr(t, path)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Open of a symlink: err = %v, want a refusal that names the symbolic link", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "secret\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
}

// A log file with a second hard link is refused: the other name may be a
// file the worker user cannot write but root can.
func TestOpenRefusesHardLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "other")
	if err := os.WriteFile(target, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "drover.log")
	if err := os.Link(target, path); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, path); err == nil || !strings.Contains(err.Error(), "hard link") {
		t.Fatalf("Open of a file with 2 links: err = %v, want a refusal that names the hard link", err)
	}
}

// A log directory that others may write to, without the sticky bit, lets
// them swap the file between two opens: refused. With the sticky bit (as
// /tmp) only the file's owner can rename or remove it: accepted.
func TestOpenChecksTheDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "drover.log")
	if err := openErr(t, path); err == nil || !strings.Contains(err.Error(), "writable by") {
		t.Fatalf("Open in a 0777 directory: err = %v, want a refusal that says who may write the directory", err)
	}
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, path); err != nil {
		t.Fatalf("Open in a 1777 directory: %v", err)
	}
}

// A log file owned by another user is refused (that user chose what it
// is); drover's own or root's is accepted.
func TestOpenRefusesFileOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root; this test runs as uid", os.Geteuid())
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "drover.log")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, path); err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Open of a file owned by uid 65534: err = %v, want a refusal naming the owner", err)
	}
	// Its directory given to that user: refused too, whoever owns the file.
	os.Chown(path, 0, 0)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, path); err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Open in a directory owned by uid 65534: err = %v, want a refusal naming the owner", err)
	}
}

// Reopen after the file was replaced by a symbolic link (a worker user
// with write access to the directory, between two rotations) is refused,
// and the lines keep going to the file open before.
func TestReopenRefusesSymlinkAndKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drover.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	target := filepath.Join(dir, "shadow")
	if err := os.WriteFile(target, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Reopen onto a symlink: err = %v, want a refusal that names the symbolic link", err)
	}
	if _, err := w.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "secret\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if b, _ := os.ReadFile(path + ".1"); string(b) != "after\n" {
		t.Fatalf("the old file holds %q, want the line written after the refused reopen", b)
	}
}
