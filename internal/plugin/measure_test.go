package plugin

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// TestMeasureLaunchCost measures what go-plugin costs per worker: time from
// spawn to ready and the handler's RSS right after, for the minimal handlers
// in testdata/handler launched three ways, plus their binary sizes and the
// manager-side goroutines per plugin worker. Run it without -race:
//
//	DROVER_PLUGIN_MEASURE=15 go test -run TestMeasureLaunchCost -v ./internal/plugin/
func TestMeasureLaunchCost(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("DROVER_PLUGIN_MEASURE"))
	if runs <= 0 {
		t.Skip("set DROVER_PLUGIN_MEASURE=<runs> to measure launch cost (slow: builds two handlers)")
	}
	dir := t.TempDir()
	bins := map[string]string{}
	for _, name := range []string{"noplugin", "withplugin"} {
		for _, strip := range []bool{false, true} {
			out := filepath.Join(dir, name)
			args := []string{"build", "-o"}
			if strip {
				out += "-stripped"
				args = append(args, out, "-ldflags=-s -w")
			} else {
				args = append(args, out)
			}
			b, err := exec.Command("go", append(args, "./testdata/handler/"+name)...).CombinedOutput()
			if err != nil {
				t.Fatalf("build %s: %v\n%s", name, err, b)
			}
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("size %-21s %6.2f MiB", filepath.Base(out), float64(fi.Size())/(1<<20))
			if !strip {
				bins[name] = out
			}
		}
	}

	log := logrus.New()
	log.SetOutput(io.Discard)
	entry := logrus.NewEntry(log)
	for _, mode := range []struct {
		name, bin string
		plugin    bool
	}{
		{"noplugin exec", bins["noplugin"], false},
		{"withplugin exec", bins["withplugin"], false},
		{"withplugin plugin", bins["withplugin"], true},
	} {
		var times []time.Duration
		var rss, anon []int
		for i := range runs + 1 {
			d, kb, anonKB := launchOnce(t, mode.bin, mode.plugin, entry)
			if i == 0 {
				continue // warm-up: page cache, first fork
			}
			times, rss, anon = append(times, d), append(rss, kb), append(anon, anonKB)
		}
		slices.Sort(times)
		slices.Sort(rss)
		slices.Sort(anon)
		t.Logf("%-18s start-to-ready median %8v (min %v, max %v)   VmRSS median %6d kB (min %d, max %d), RssAnon median %5d kB",
			mode.name, times[len(times)/2].Round(10*time.Microsecond), times[0].Round(10*time.Microsecond),
			times[len(times)-1].Round(10*time.Microsecond), rss[len(rss)/2], rss[0], rss[len(rss)-1], anon[len(anon)/2])
	}

	// Manager side: goroutines held per live plugin worker.
	const n = 4
	before := runtime.NumGoroutine()
	var ps []*Process
	var pairs []*os.File
	for range n {
		cmd, pair := measureCmd(t, bins["withplugin"])
		p, err := Start(cmd, Options{Log: entry})
		if err != nil {
			t.Fatal(err)
		}
		cleanupProcess(t, p)
		ps, pairs = append(ps, p), append(pairs, pair)
	}
	t.Logf("manager side: %.1f goroutines per live plugin worker", float64(runtime.NumGoroutine()-before)/n)
	for i, p := range ps {
		pairs[i].Close()
		<-p.Exited()
	}
}

func measureCmd(t *testing.T, bin string) (*exec.Cmd, *os.File) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	cmd := exec.Command(bin)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t.Cleanup(func() { theirs.Close(); ours.Close() })
	return cmd, ours
}

// launchOnce starts bin, waits until it is ready (the "ready" line for exec,
// Start's return for plugin), reads its VmRSS and RssAnon (the part not
// shared with other workers running the same binary), and stops it by
// closing fd 3.
func launchOnce(t *testing.T, bin string, plugin bool, log *logrus.Entry) (took time.Duration, rssKB, anonKB int) {
	cmd, pair := measureCmd(t, bin)
	var wait func()
	if plugin {
		began := time.Now()
		p, err := Start(cmd, Options{Log: log})
		took = time.Since(began)
		if err != nil {
			t.Fatal(err)
		}
		cleanupProcess(t, p)
		wait = func() { <-p.Exited() }
	} else {
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		line, err := bufio.NewReader(out).ReadString('\n')
		took = time.Since(began)
		if err != nil || line != "ready\n" {
			t.Fatalf("ready line %q: %v", line, err)
		}
		wait = func() { _ = cmd.Wait() }
	}
	rssKB = procStatusKB(t, cmd.Process.Pid, "VmRSS:")
	anonKB = procStatusKB(t, cmd.Process.Pid, "RssAnon:")
	pair.Close()
	wait()
	return took, rssKB, anonKB
}

func procStatusKB(t *testing.T, pid int, key string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	t.Fatalf("no %s for pid %d", key, pid)
	return 0
}
