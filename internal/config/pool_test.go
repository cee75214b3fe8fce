package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// worker_num as a number or a dynamic pool's mapping, with the defaults
// and the ceilings the worker ids impose.
func TestPoolForms(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name string
		yaml string
		want Pool
		num  int // WorkerNum
		cap  int // WorkerCap
		ids  int // WorkerIDs
	}{
		{"fixed", "worker_num: 4\n", Pool{}, 4, MaxWorkers, 4},
		{"fixed with task workers", "worker_num: 4\ntask_worker_num: 1\ntask_worker: {cmd: [../bin/echo]}\n", Pool{}, 4, 4, 4},
		{"dynamic flow", "worker_num: {min: 2, max: 16, idle_timeout: 30s}\n",
			Pool{Min: 2, Max: 16, IdleTimeout: Duration(30 * time.Second), QueueWait: DefaultQueueWait, Dynamic: true}, 2, 16, 16},
		{"dynamic defaults", "worker_num:\n  max: 8\n",
			Pool{Min: 1, Max: 8, IdleTimeout: DefaultPoolIdleTimeout, QueueWait: DefaultQueueWait, Dynamic: true}, 1, 8, 8},
		{"dynamic queue_wait", "worker_num: {min: 1, max: 1, queue_wait: 10ms, idle_timeout: 1}\n",
			Pool{Min: 1, Max: 1, IdleTimeout: Duration(time.Second), QueueWait: Duration(10 * time.Millisecond), Dynamic: true}, 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fx.parse(minimal + tt.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Pool, tt.want) || c.WorkerNum != tt.num || c.WorkerCap() != tt.cap || c.WorkerIDs() != tt.ids {
				t.Fatalf("pool %+v worker_num %d cap %d ids %d; want %+v %d %d %d",
					c.Pool, c.WorkerNum, c.WorkerCap(), c.WorkerIDs(), tt.want, tt.num, tt.cap, tt.ids)
			}
			// What the manager receives is what the master has.
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var back Config
			if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.Pool, c.Pool) || back.WorkerNum != c.WorkerNum {
				t.Fatalf("JSON round trip: %v %+v %d", err, back.Pool, back.WorkerNum)
			}
		})
	}
}

func TestPoolErrors(t *testing.T) {
	fx := newFixture(t)
	tests := []struct{ name, yaml, want string }{
		{"no max", "worker_num: {min: 2}\n",
			`drover.yaml:6: worker_num.max: required for a dynamic pool (the most workers it may grow to, e.g. worker_num: {min: 2, max: 4})`},
		{"max below min", "worker_num:\n  min: 4\n  max: 2\n",
			`drover.yaml:8: worker_num.max: 2 is out of range (want worker_num.min, 4, to 1024)`},
		{"min zero", "worker_num: {min: 0, max: 2}\n",
			`drover.yaml:6: worker_num.min: 0 is out of range (want 1 to 1024)`},
		{"typo in the mapping", "worker_num:\n  min: 1\n  mx: 4\n",
			"drover.yaml:8: worker_num: unknown key \"mx\" (did you mean \"max\"?)"},
		{"idle_timeout too short", "worker_num: {max: 4, idle_timeout: 500ms}\n",
			`drover.yaml:6: worker_num.idle_timeout: 500ms is too short (want at least 1s: shorter retires workers between the bursts of one load)`},
		{"queue_wait past dispatch_timeout", "dispatch_timeout: 1\nworker_num: {max: 4, queue_wait: 2s}\n",
			`drover.yaml:7: worker_num.queue_wait: 2s is not below dispatch_timeout (1s): requests would get 503 before the pool grows (lower it)`},
		{"a list", "worker_num: [1, 2]\n",
			`drover.yaml:6: worker_num: want an integer, or a mapping for a dynamic pool (worker_num: {min: 2, max: 16}), got a list`},
		{"fixed out of range", "worker_num: 0\n",
			`drover.yaml:6: worker_num: 0 is out of range (want 1 to 1024)`},
		{"ttl too short", "worker:\n  cmd: [../bin/echo]\n  ttl: 0.5\nlisteners: [{address: \"tcp://127.0.0.1:9501\", protocol: http}]\n",
			`drover.yaml:3: worker.ttl: 500ms is too short (want 0 for off, or at least 1s: shorter replaces workers without pause)`},
		{"idle_ttl too short", "task_worker_num: 1\ntask_worker: {cmd: [../bin/echo], idle_ttl: 10ms}\n",
			`drover.yaml:7: task_worker.idle_ttl: 10ms is too short (want 0 for off, or at least 1s: shorter replaces workers without pause)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := minimal + tt.yaml
			if strings.HasPrefix(tt.yaml, "worker:") {
				y = tt.yaml // a whole file
			}
			_, err := fx.parse(y)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// A valid ttl and idle_ttl are kept, per handler.
func TestHandlerTTLs(t *testing.T) {
	fx := newFixture(t)
	c, err := fx.parse(`worker:
  cmd: [../bin/echo]
  ttl: 1h
  idle_ttl: 90
listeners:
  - address: tcp://127.0.0.1:9501
    protocol: http
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.TTL.D() != time.Hour || c.Worker.IdleTTL.D() != 90*time.Second {
		t.Fatalf("ttl %s idle_ttl %s", c.Worker.TTL, c.Worker.IdleTTL)
	}
}

// --worker-num makes any pool a fixed one.
func TestFixedPoolFlag(t *testing.T) {
	fx := newFixture(t)
	c, err := fx.parse(minimal + "worker_num: {min: 2, max: 8}\n")
	if err != nil {
		t.Fatal(err)
	}
	c.FixedPool(3)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Pool.Dynamic || c.WorkerNum != 3 || c.WorkerIDs() != 3 {
		t.Fatalf("after FixedPool(3): %+v, worker_num %d", c.Pool, c.WorkerNum)
	}
}
