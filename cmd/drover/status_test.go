package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/master"
)

// drover status's table shows the master's generation and start time, as
// docs/operations.md promises for upgrades (the JSON has them as
// "generation" and "started").
func TestStatusTableShowsGenerationAndStart(t *testing.T) {
	started := time.Date(2026, 12, 6, 20, 23, 34, 0, time.UTC)
	ps := []master.Process{
		{Role: "master", PID: 4242, State: "running", Started: started, UptimeSec: 90, Generation: 3,
			Config: "/etc/drover.yaml", Listeners: []string{"tcp://127.0.0.1:9501"}},
		{Role: "manager", PID: 4243, State: "running", Started: started},
	}
	var out bytes.Buffer
	printStatus(&out, ps)
	want := "master:      pid 4242, generation 3, started " + started.Local().Format("2006-01-02 15:04:05 MST")
	if !strings.Contains(out.String(), want+"\n") {
		t.Fatalf("drover status printed\n%s\nwant a line %q", out.String(), want)
	}
}
