package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Go workers take large bodies through the body arenas: each maps the
// master's request arena read-only and its own answer arena, and keeps no
// descriptor of them open (its children would inherit it); a 1 MiB echo
// and a 64 KiB answer come back whole, many times over (the ranges are
// given back and reused), and concurrent echoes do not mix.
func TestHTTPBodyArenas(t *testing.T) {
	s := startServer(t, `
worker_num: 2
worker:
  cmd: [{{bin}}/hello]
listeners:
  - address: tcp://127.0.0.1:0
    protocol: http
`)
	client := &http.Client{Timeout: 20 * time.Second}
	for _, pid := range pidsOf(s.status(), "worker") {
		maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
		if err != nil {
			t.Fatal(err)
		}
		var req, ans string
		for _, line := range strings.Split(string(maps), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) < 6:
			case strings.Contains(line, "memfd:drover-requests"):
				req = f[1]
			case strings.Contains(line, "memfd:drover-answers"):
				ans = f[1]
			}
		}
		if req != "r--s" || ans != "rw-s" {
			t.Fatalf("worker %d maps the request arena %q and its answer arena %q, want r--s and rw-s", pid, req, ans)
		}
		fds, _ := filepathGlob(fmt.Sprintf("/proc/%d/fd", pid), "*")
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.Contains(l, "memfd:drover") {
				t.Fatalf("worker %d keeps a descriptor of an arena open (%s: %s)", pid, fd, l)
			}
		}
	}
	bodies := make([][]byte, 4)
	for i := range bodies {
		bodies[i] = make([]byte, 1<<20)
		rand.Read(bodies[i])
	}
	parallel(t, len(bodies), func(i int) error {
		for round := 0; round < 20; round++ {
			resp, err := client.Post(httpURL(s, "/echo"), "application/octet-stream", bytes.NewReader(bodies[i]))
			if err != nil {
				return err
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, bodies[i]) {
				return fmt.Errorf("echo %d round %d: %d, %d bytes (%v), equal %v", i, round, resp.StatusCode, len(got), err, bytes.Equal(got, bodies[i]))
			}
			resp, err = client.Get(httpURL(s, "/64k"))
			if err != nil {
				return err
			}
			got, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(got) != 64<<10 || !bytes.Equal(got[:64], []byte(strings.Repeat("x", 63)+"\n")) {
				return fmt.Errorf("GET /64k round %d: %d bytes (%v)", round, len(got), err)
			}
		}
		return nil
	})
	s.waitStatus("http_buffered back to 0", func(rows []statusRow) bool { return masterRow(rows).HTTPBuffered == 0 })
}

// PHP workers do not use the body arenas: they close the descriptors the
// manager passed (the protocol's SHOULD), so that programs they start do
// not inherit them, and their environment no longer names them.
func TestPHPWorkersCloseTheArenas(t *testing.T) {
	s := startServer(t, phpConfig(t, 2))
	for _, pid := range pidsOf(s.status(), "worker") {
		fds, _ := filepathGlob(fmt.Sprintf("/proc/%d/fd", pid), "*")
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.Contains(l, "memfd:drover-") && !strings.Contains(l, "drover-tables") {
				t.Errorf("PHP worker %d keeps a descriptor of an arena open (%s: %s)", pid, fd, l)
			}
		}
	}
	for _, q := range []string{"/env?name=DROVER_REQUEST_ARENA_FD", "/server?name=DROVER_ANSWER_ARENA_FD"} {
		if st, body := get(t, httpURL(s, q)); st != 200 || body != "" {
			t.Errorf("GET %s: %d %q, want it unset", q, st, body)
		}
	}
}
