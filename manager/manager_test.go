package manager

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
)

func TestBackoffFor(t *testing.T) {
	cases := []struct {
		failures, code int
		want           time.Duration
	}{
		{0, 1, 0},                   // ran well: restart at once
		{0, ipc.ExitBootFailure, 0}, // even after a clean boot failure code, a good run resets
		{1, 1, 100 * time.Millisecond},
		{2, 1, 200 * time.Millisecond},
		{5, 1, 1600 * time.Millisecond},
		{9, 1, 25600 * time.Millisecond},
		{10, 1, 30 * time.Second}, // capped
		{100, 1, 30 * time.Second},
		{1, ipc.ExitBootFailure, time.Second}, // boot failure: at least 1s
		{6, ipc.ExitBootFailure, 3200 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := backoffFor(tc.failures, tc.code); got != tc.want {
			t.Errorf("backoffFor(%d, %d) = %s, want %s", tc.failures, tc.code, got, tc.want)
		}
	}
}

func TestWorkerEnv(t *testing.T) {
	t.Setenv("DROVER_LOG_FORMAT", "json")         // the manager's own: not passed on
	t.Setenv("TABLEFLIP_HAS_PARENT_7DIU3", "yes") // tableflip's: not passed on
	t.Setenv("APP_KEEP", "1")
	h := &config.Handler{Env: map[string]string{"APP_ENV": "prod"}}
	env := workerEnv(ipc.RoleWorker, 3, 8, launchExec, h, nil)
	for _, want := range []string{"DROVER_ROLE=worker", "DROVER_WORKER_ID=3", "DROVER_WORKER_NUM=8",
		"DROVER_FD=3", "DROVER_LAUNCH=exec", "APP_ENV=prod", "APP_KEEP=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("worker env lacks %s", want)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "TABLEFLIP_") || kv == "DROVER_LOG_FORMAT=json" {
			t.Errorf("worker env leaks %s", kv)
		}
	}
}

func TestLaunchModeAuto(t *testing.T) {
	dir := t.TempDir()
	// A Go program built with this module (the SDK) is launched as a plugin.
	sdk := filepath.Join(dir, "sdk-handler")
	build := exec.Command("go", "build", "-o", sdk, "../examples/echo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/echo: %v\n%s", err, out)
	}
	// A script (or any non-Go executable) is exec-launched.
	script := filepath.Join(dir, "handler.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mg := &Manager{launches: map[string]string{}, log: logrus.NewEntry(logrus.New())}
	for _, tc := range []struct {
		path, launch, want string
	}{
		{sdk, "auto", launchPlugin},
		{script, "auto", launchExec},
		{sdk, "exec", launchExec},
		{script, "plugin", launchPlugin},
	} {
		got, err := mg.launchMode(&config.Handler{Path: tc.path, Launch: tc.launch})
		if err != nil || got != tc.want {
			t.Errorf("launch %s of %s: %q, %v; want %q", tc.launch, filepath.Base(tc.path), got, err, tc.want)
		}
	}
}

// TestLaunchAutoWithoutPluginSupport: a Go handler built with the SDK but
// without worker/plugin (examples/hello) does not link go-plugin, so auto
// launches it with exec.
func TestLaunchAutoWithoutPluginSupport(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hello")
	build := exec.Command("go", "build", "-o", bin, "../examples/hello")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/hello: %v\n%s", err, out)
	}
	mg := &Manager{launches: map[string]string{}, log: logrus.NewEntry(logrus.New())}
	got, err := mg.launchMode(&config.Handler{Path: bin, Launch: "auto"})
	if err != nil || got != launchExec {
		t.Errorf("launch auto of examples/hello: %q, %v; want %q (it does not import worker/plugin)", got, err, launchExec)
	}
}

// An exit report with long output lines still fits one control message:
// every line is cut to reportLineMax and says it was cut.
func TestExitReportFitsWithLongLines(t *testing.T) {
	c := &child{role: ipc.RoleWorker, slot: 1, gen: 7, pid: 42, cause: strings.Repeat("c", 1<<20)}
	for i := range stderrLines {
		c.addLine(strings.Repeat(string(rune('a'+i)), 1<<20))
	}
	ev := c.exitEvent()
	if len(ev.Stderr) != stderrLines {
		t.Fatalf("%d lines in the report, want %d", len(ev.Stderr), stderrLines)
	}
	for _, l := range append([]string{ev.Cause}, ev.Stderr...) {
		if len(l) > 2<<10+64 || !strings.HasSuffix(l, " bytes cut]") {
			t.Fatalf("report line of %d bytes ending %q: want it cut to about 2 KiB, marked", len(l), l[max(0, len(l)-40):])
		}
	}
	ours, theirs, err := ipc.SocketPair(unix.SOCK_SEQPACKET)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	defer theirs.Close()
	ctl, err := ipc.NewControl(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	if err := ctl.Send(ipc.CtlWorkerExited, ev.Gen, ev); err != nil {
		t.Fatalf("the exit report does not fit a control message: %v", err)
	}
}

func TestCutLineKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", reportLineMax) // 2 bytes each
	got := cutLine(s)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "… ["+strconv.Itoa(len(s)-reportLineMax)+" bytes cut]") {
		t.Fatalf("cutLine: %q", got[max(0, len(got)-60):])
	}
	if short := "short line"; cutLine(short) != short {
		t.Fatalf("cutLine(%q) = %q", short, cutLine(short))
	}
}

// launch: auto is decided for the file a path names when the worker
// starts: a `current` link flipped to a release with another kind of
// executable, or a binary replaced at the same path, is inspected again.
func TestLaunchModeFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	sdk := filepath.Join(dir, "sdk-handler")
	build := exec.Command("go", "build", "-o", sdk, "../examples/echo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/echo: %v\n%s", err, out)
	}
	script := filepath.Join(dir, "handler.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mg := &Manager{launches: map[string]string{}, log: logrus.NewEntry(logrus.New())}
	link := filepath.Join(dir, "current")
	mode := func() string {
		t.Helper()
		h, err := atSpawn(&config.Handler{Path: link, Dir: dir, Launch: "auto"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := mg.launchMode(h)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	os.Symlink(sdk, link)
	if got := mode(); got != launchPlugin {
		t.Fatalf("through a link to a Go SDK handler: %s, want plugin", got)
	}
	os.Remove(link)
	os.Symlink(script, link)
	if got := mode(); got != launchExec {
		t.Fatalf("the link flipped to a script: %s, want exec", got)
	}
	// Replaced at the same path (no link): decided again too.
	os.Remove(link)
	data, _ := os.ReadFile(sdk)
	os.WriteFile(link+".new", data, 0o755)
	os.Rename(link+".new", link)
	if got := mode(); got != launchPlugin {
		t.Fatalf("a Go SDK handler renamed over the path: %s, want plugin", got)
	}
}

// atSpawn resolves the handler's executable and directory through links
// when a worker starts, and fails, naming the path, when a link dangles.
func TestAtSpawnResolvesLinks(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	rel := filepath.Join(dir, "releases", "7")
	os.MkdirAll(rel, 0o755)
	os.WriteFile(filepath.Join(rel, "app"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("releases/7", filepath.Join(dir, "current"))
	h := &config.Handler{Cmd: []string{"app"}, Path: filepath.Join(dir, "current", "app"), Dir: filepath.Join(dir, "current")}
	got, err := atSpawn(h)
	if err != nil || got.Path != filepath.Join(rel, "app") || got.Dir != rel {
		t.Fatalf("atSpawn: %+v, %v; want path and dir in %s", got, err, rel)
	}
	if h.Path != filepath.Join(dir, "current", "app") {
		t.Errorf("atSpawn changed the config's handler: %s", h.Path)
	}
	os.Remove(filepath.Join(dir, "current"))
	os.Symlink("releases/8", filepath.Join(dir, "current"))
	if _, err := atSpawn(h); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "current")) {
		t.Fatalf("a dangling link: %v", err)
	}
}
