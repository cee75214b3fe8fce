package master

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/config"
)

// TestManagerOutputInJSON: with log_format: json, what the manager writes
// besides its logger's lines (a Go panic) reaches the master's log as
// JSON lines too; its logger's lines pass as they are. In text, all pass.
func TestManagerOutputInJSON(t *testing.T) {
	const logged = `{"level":"info","msg":"worker started","role":"manager","time":"2026-12-06T22:00:00.000Z"}`
	manager := logged + "\npanic: boom\n\ngoroutine 1 [running]:\n"
	for _, format := range []string{"json", "text"} {
		var out bytes.Buffer
		l := logrus.New()
		l.SetOutput(&out)
		if format == "json" {
			l.SetFormatter(&logrus.JSONFormatter{})
		}
		m := &Master{cfg: &config.Config{LogFormat: format}, opts: Options{LogOutput: &out}, log: logrus.NewEntry(l).WithField("role", "master")}
		m.copyManagerLog(io.NopCloser(strings.NewReader(manager)))
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if format == "text" {
			if out.String() != manager {
				t.Errorf("text: the manager's output changed:\n%s", out.String())
			}
			continue
		}
		if len(lines) != 4 || lines[0] != logged {
			t.Fatalf("json: %d lines, first %q:\n%s", len(lines), lines[0], out.String())
		}
		for i, want := range []string{"panic: boom", "", "goroutine 1 [running]:"} {
			var e map[string]any
			if err := json.Unmarshal([]byte(lines[i+1]), &e); err != nil {
				t.Fatalf("json: line %q: %v", lines[i+1], err)
			}
			if e["output"] != want || e["role"] != "manager" || e["msg"] != "manager output" || e["level"] != "error" {
				t.Errorf("json: %v, want the output %q of the manager", e, want)
			}
		}
	}
}
