package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/worker"
)

// serveReleaseHandler answers every request with what it runs: the release
// named by the RELEASE file in its working directory, and the directories
// of its executable and of that working directory as the kernel resolved
// them when it started ("release=r1 exe=r1 cwd=r1 pid=123").
func serveReleaseHandler() {
	exe, _ := os.Readlink("/proc/self/exe")
	cwd, _ := os.Readlink("/proc/self/cwd")
	name, _ := os.ReadFile("RELEASE")
	answer := fmt.Sprintf("release=%s exe=%s cwd=%s pid=%d", strings.TrimSpace(string(name)),
		filepath.Base(filepath.Dir(exe)), filepath.Base(cwd), os.Getpid())
	worker.ServeHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, answer)
	}))
}

// releases lays out a deploy directory as Capistrano, Deployer or Envoyer
// do: dir/releases/<name>/ for each name, with a RELEASE file saying its
// name and what files(name) returns (relative path → content, mode 0755),
// and dir/current pointing to the first one.
func releases(t *testing.T, dir string, names []string, files func(name string) map[string]string) {
	t.Helper()
	for _, n := range names {
		rel := filepath.Join(dir, "releases", n)
		if err := os.MkdirAll(rel, 0o755); err != nil {
			t.Fatal(err)
		}
		all := files(n)
		all["RELEASE"] = n + "\n"
		for p, content := range all {
			if err := os.WriteFile(filepath.Join(rel, p), []byte(content), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	flip(t, dir, names[0])
}

// flip points dir/current to releases/name atomically, as ln -sfn does:
// a new link renamed over the old one.
func flip(t *testing.T, dir, name string) {
	t.Helper()
	tmp := filepath.Join(dir, "current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("releases", name), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
}

// answersByPID GETs url until every one of pids has answered (dispatch_mode
// 1 spreads requests over the workers), and returns each one's answer.
func answersByPID(t *testing.T, url string, pids []int) map[int]string {
	t.Helper()
	got := map[int]string{}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; len(got) < len(pids); i++ {
		if i > 50*len(pids) {
			t.Fatalf("after %d requests only %d of workers %v answered: %v", i, len(got), pids, got)
		}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var pid int
		if k := strings.Index(string(b), "pid="); k >= 0 {
			fmt.Sscanf(string(b[k:]), "pid=%d", &pid)
		}
		got[pid] = string(b)
	}
	return got
}

// checkReleaseFlip serves s, whose workers run releases r1 and r2 through
// dir/current: every worker answers want1, and after the link is flipped to
// r2 and drover reload, every worker answers want2.
func checkReleaseFlip(t *testing.T, s *server, dir string, answer func(release string) string) {
	t.Helper()
	check := func(release string) {
		t.Helper()
		pids := pidsOf(s.status(), "worker")
		for pid, got := range answersByPID(t, httpURL(s, "/"), pids) {
			if want := answer(release) + fmt.Sprintf(" pid=%d", pid); got != want {
				t.Errorf("worker %d answered %q, want %q", pid, got, want)
			}
		}
	}
	check("r1")
	flip(t, dir, "r2")
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload: %v\n%s", err, out)
	}
	check("r2")
	if t.Failed() {
		return
	}
	flip(t, dir, "r1") // a rollback is the same move
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload: %v\n%s", err, out)
	}
	check("r1")
}

// A deploy that flips a `current` symlink (current -> releases/r1, then
// ln -sfn releases/r2 current) and runs drover reload gets every worker on
// the new release: its executable and its working directory are looked up
// through the link when each successor starts, not when drover started.
func TestSymlinkDeployReloadRunsTheNewRelease(t *testing.T) {
	s := newServer(t, `
worker_num: 3
dispatch_mode: 1
worker:
  cmd: [{{dir}}/current/handler]
  dir: {{dir}}/current
  env: {E2E_HANDLER: release}
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	helper, err := os.ReadFile(helperPath)
	if err != nil {
		t.Fatal(err)
	}
	releases(t, s.dir, []string{"r1", "r2"}, func(string) map[string]string {
		return map[string]string{"handler": string(helper)}
	})
	s.startReady()
	checkReleaseFlip(t, s, s.dir, func(r string) string { return fmt.Sprintf("release=%s exe=%s cwd=%s", r, r, r) })
}

// The same with a PHP worker as a PHP shop deploys it: cmd: [php,
// /srv/app/current/worker.php], the script and its working directory
// under the link.
func TestSymlinkDeployReloadRunsTheNewPHPRelease(t *testing.T) {
	sdk := filepath.Join(filepath.Dir(phpScript(t, "handler.php")), "..", "..", "..", "worker", "php", "autoload.php")
	s := newServer(t, `
worker_num: 2
dispatch_mode: 1
worker:
  cmd: [php, {{dir}}/current/worker.php]
  dir: {{dir}}/current
  launch: exec
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	releases(t, s.dir, []string{"r1", "r2"}, func(name string) map[string]string {
		return map[string]string{"worker.php": `<?php
require '` + sdk + `';
$answer = 'release=' . trim(file_get_contents('RELEASE')) . ' script=' . basename(__DIR__) . ' cwd=' . basename(getcwd()) . ' pid=' . getmypid();
Drover\Http\Worker::serve(static fn () => Drover\Http\Response::text($answer));
`}
	})
	s.startReady()
	checkReleaseFlip(t, s, s.dir, func(r string) string { return fmt.Sprintf("release=%s script=%s cwd=%s", r, r, r) })
}

// launch: auto decides plugin or exec by inspecting the executable. A new
// release behind the same path may be another kind of executable (here:
// the first release a Go handler with plugin support, the second one
// without): each successor is inspected as what the link points to when it
// starts, not as what the path named at the first spawn.
func TestSymlinkDeployNewReleaseOfAnotherKind(t *testing.T) {
	s := newServer(t, `
worker_num: 2
dispatch_mode: 1
worker:
  cmd: [{{dir}}/current/handler]
  dir: {{dir}}/current
  env: {E2E_HANDLER: release}
  start_timeout: 5s
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	helper, err := os.ReadFile(helperPath)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := os.ReadFile(filepath.Join(bin, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	releases(t, s.dir, []string{"r1", "r2"}, func(name string) map[string]string {
		if name == "r1" {
			return map[string]string{"handler": string(helper)}
		}
		return map[string]string{"handler": string(hello)}
	})
	s.startReady()
	launches := func() []string {
		var out []string
		for _, r := range s.status() {
			if r.Role == "worker" {
				out = append(out, r.Launch)
			}
		}
		return out
	}
	if l := launches(); strings.Join(l, ",") != "plugin,plugin" {
		t.Fatalf("release r1 (the test binary, plugin support unknown) launched as %v, want plugin", l)
	}
	flip(t, s.dir, "r2")
	if out, err := s.drover("reload", "-c", s.config); err != nil {
		t.Fatalf("drover reload to a release without plugin support: %v\n%s", err, out)
	}
	if l := launches(); strings.Join(l, ",") != "exec,exec" {
		t.Errorf("release r2 (hello, built without plugin support) launched as %v, want exec", l)
	}
	// hello does not say its pid: round-robin (dispatch_mode 1) over 2
	// workers, 10 requests reach both.
	for i := 0; i < 10; i++ {
		if st, got := get(t, httpURL(s, "/")); st != 200 || got != "Hello, World!" {
			t.Errorf("request %d after the flip to hello: %d %q", i, st, got)
		}
	}
}

// watch: reloads the workers when a file under a watched path changes,
// end to end: drover logs the change, replaces every worker, and the
// successors serve.
func TestWatchReloadsTheWorkers(t *testing.T) {
	s := newServer(t, httpConfig+"watch: [{{dir}}/src]\n")
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "app.php"), []byte("v1"), 0o644)
	logs := s.subscribe()
	s.startReady()
	s.waitLog(logs, 10*time.Second, "watching", func(e logEntry) bool { return e.msg() == "watching for changes: a change reloads the workers" })
	before := pidsOf(s.status(), "worker")

	os.WriteFile(filepath.Join(src, "app.php"), []byte("v2"), 0o644)
	e := s.waitLog(logs, 10*time.Second, "the change", func(e logEntry) bool { return e.msg() == "watch: files changed; reloading the workers" })
	if !strings.Contains(e.str("change"), "app.php") {
		t.Errorf("the change logged is %q, want it to name app.php", e.str("change"))
	}
	s.waitLog(logs, 20*time.Second, "reload done", func(e logEntry) bool { return e.msg() == "reload done" })
	after := pidsOf(s.status(), "worker")
	for _, p := range after {
		if slices.Contains(before, p) {
			t.Errorf("worker %d served before and after the watch reload (before %v, after %v)", p, before, after)
		}
	}
	wantGetOK(t, httpURL(s, "/"))
}

// A watched path behind a release link (watch: [current]) follows the
// link: flipping it is a change (the workers reload onto the new release
// without drover reload), and from then on changes inside the new release
// are seen, not those of the old one.
func TestWatchFollowsTheReleaseLink(t *testing.T) {
	s := newServer(t, `
worker_num: 2
dispatch_mode: 1
worker:
  cmd: [{{dir}}/current/handler]
  dir: {{dir}}/current
  env: {E2E_HANDLER: release}
watch: [{{dir}}/current]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	helper, err := os.ReadFile(helperPath)
	if err != nil {
		t.Fatal(err)
	}
	releases(t, s.dir, []string{"r1", "r2"}, func(string) map[string]string {
		return map[string]string{"handler": string(helper), "app.conf": "x"}
	})
	logs := s.subscribe()
	s.startReady()
	s.waitLog(logs, 10*time.Second, "watching", func(e logEntry) bool { return e.msg() == "watching for changes: a change reloads the workers" })

	flip(t, s.dir, "r2")
	s.waitLog(logs, 10*time.Second, "a reload after the flip", func(e logEntry) bool { return e.msg() == "watch: files changed; reloading the workers" })
	s.waitLog(logs, 20*time.Second, "reload done", func(e logEntry) bool { return e.msg() == "reload done" })
	for pid, got := range answersByPID(t, httpURL(s, "/"), pidsOf(s.status(), "worker")) {
		if want := fmt.Sprintf("release=r2 exe=r2 cwd=r2 pid=%d", pid); got != want {
			t.Errorf("worker %d answered %q after the flip, want %q", pid, got, want)
		}
	}

	// The old release is no longer watched; the new one is.
	os.WriteFile(filepath.Join(s.dir, "releases", "r1", "stale.conf"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(s.dir, "releases", "r2", "app.conf"), []byte("new"), 0o644)
	e := s.waitLog(logs, 10*time.Second, "a change in r2", func(e logEntry) bool { return e.msg() == "watch: files changed; reloading the workers" })
	if c := e.str("change"); !strings.Contains(c, "app.conf") || strings.Contains(c, "stale.conf") {
		t.Errorf("change %q: want app.conf of r2 only, not stale.conf of the old release r1", c)
	}
}
