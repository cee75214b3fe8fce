package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Pool is worker_num as written. A number is a pool of that fixed size,
// which only an operator changes (drover scale, SIGTTIN and SIGTTOU). A
// mapping {min, max, idle_timeout, queue_wait} is a dynamic pool: it starts
// with Min workers, adds one while requests wait longer than QueueWait for
// a worker, up to Max, and retires a worker idle for IdleTimeout, down to
// Min (docs/configuration.md, docs/operations.md "Scaling the pool").
//
// The number of workers at start is Config.WorkerNum in both cases.
type Pool struct {
	// Min is the fewest workers of a dynamic pool, and how many it starts
	// with. Default 1; 1..1024.
	Min int `yaml:"min" json:"min"`
	// Max is the most workers a dynamic pool grows to. Required; Min..1024.
	Max int `yaml:"max" json:"max"`
	// IdleTimeout retires a worker of a dynamic pool above Min that served
	// nothing for this long. Default 10s (php-fpm's
	// pm.process_idle_timeout); at least 1s.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// QueueWait is how long a request may wait for a free worker before the
	// pool adds one. Default DefaultQueueWait; more than 0 and less than
	// dispatch_timeout.
	QueueWait Duration `yaml:"queue_wait" json:"queue_wait"`
	// Dynamic is set when worker_num is a mapping.
	Dynamic bool `yaml:"-" json:"dynamic"`

	// size is worker_num written as a number, and scalar says it was:
	// Parse's defaults copy it to Config.WorkerNum.
	size   int
	scalar bool
}

// Defaults of a dynamic pool.
const (
	DefaultPoolMin         = 1
	DefaultPoolIdleTimeout = Duration(10 * time.Second)
	// DefaultQueueWait is worker_num.queue_wait. A new worker helps only
	// the requests still waiting when it says hello. From the decision to
	// its hello, one start at a time on a 2-vCPU VM, Go handlers took 3–16
	// ms (median 7; 8–100, median 18, with the go-plugin handshake), PHP
	// ones 16–87 ms (median 26). 50 ms covers most of each, adds no
	// latency a client notices, and is far below dispatch_timeout (5s)
	// (docs/configuration.md, "A dynamic pool").
	DefaultQueueWait = Duration(50 * time.Millisecond)
	// MaxWorkers is the most workers (or task workers) of one instance.
	MaxWorkers = 1024
)

// setScalar implements the decoder's scalarSetter: worker_num: 4.
func (p *Pool) setScalar(n *yaml.Node) error {
	var i int
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want an integer, or a mapping for a dynamic pool (worker_num: {min: 2, max: 16}), got %s", describe(n))
	}
	if n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		return fmt.Errorf("want an integer, got %s", describe(n))
	}
	p.size, p.scalar = i, true
	return nil
}

// FixedPool makes the pool a fixed one of n workers (the --worker-num
// flag, which beats the file's worker_num, dynamic or not).
func (c *Config) FixedPool(n int) {
	c.WorkerNum, c.Pool = n, Pool{}
}

// WorkerCap is the most workers the pool may ever have: worker_num.max for
// a dynamic pool; for a fixed one worker_num itself when task workers or
// processes have the worker ids after the workers' (messages address them
// by id: docs/protocol.md), else MaxWorkers, as far as drover scale may
// grow it. Task workers' ids start at WorkerCap.
func (c *Config) WorkerCap() int {
	switch {
	case c.Pool.Dynamic:
		return c.Pool.Max
	case c.TaskWorkerNum > 0 || len(c.Processes) > 0:
		return c.WorkerNum
	}
	return MaxWorkers
}

// WorkerIDs is DROVER_WORKERS: the worker ids a handler addresses workers
// by are 0..WorkerIDs-1 (worker_num.max for a dynamic pool, else
// worker_num); a fixed pool scaled above worker_num without task workers
// or processes has workers beyond it too.
func (c *Config) WorkerIDs() int {
	if c.Pool.Dynamic {
		return c.Pool.Max
	}
	return c.WorkerNum
}

// TaskWorkerCap is the most task workers drover scale --tasks may run:
// task_worker_num when processes have the ids after the task workers',
// else MaxWorkers. Processes' ids start at WorkerCap + TaskWorkerCap.
func (c *Config) TaskWorkerCap() int {
	if len(c.Processes) > 0 {
		return c.TaskWorkerNum
	}
	return MaxWorkers
}

// poolDefaults resolves worker_num: a number, a mapping with its
// defaults, or (absent) the number of CPUs (fallback).
func (v *validator) poolDefaults(c *Config, fallback int) {
	p := &c.Pool
	switch {
	case !v.set["worker_num"]:
		c.WorkerNum = fallback
	case p.scalar:
		c.WorkerNum = p.size
		*p = Pool{}
	default:
		p.Dynamic = true
		if !v.set["worker_num.min"] {
			p.Min = DefaultPoolMin
		}
		if !v.set["worker_num.idle_timeout"] {
			p.IdleTimeout = DefaultPoolIdleTimeout
		}
		if !v.set["worker_num.queue_wait"] {
			p.QueueWait = DefaultQueueWait
		}
		c.WorkerNum = p.Min
	}
}

// pool checks worker_num.
func (v *validator) pool(c *Config) {
	p := &c.Pool
	if !p.Dynamic {
		v.atLeast("worker_num", c.WorkerNum, 1, MaxWorkers)
		return
	}
	v.atLeast("worker_num.min", p.Min, 1, MaxWorkers)
	switch {
	case !v.present("worker_num.max", p.Max != 0):
		v.failNear("worker_num.max", "worker_num", "required for a dynamic pool (the most workers it may grow to, e.g. worker_num: {min: %d, max: %d})", max(p.Min, 1), max(2*p.Min, 4))
	case p.Max < p.Min || p.Max > MaxWorkers:
		v.fail("worker_num.max", "%d is out of range (want worker_num.min, %d, to %d)", p.Max, p.Min, MaxWorkers)
	}
	if p.IdleTimeout < Duration(time.Second) {
		v.fail("worker_num.idle_timeout", "%s is too short (want at least 1s: shorter retires workers between the bursts of one load)", p.IdleTimeout)
	}
	switch {
	case p.QueueWait <= 0:
		v.fail("worker_num.queue_wait", "must be more than 0 (e.g. \"50ms\")")
	case c.DispatchTimeout > 0 && p.QueueWait >= c.DispatchTimeout:
		v.fail("worker_num.queue_wait", "%s is not below dispatch_timeout (%s): requests would get 503 before the pool grows (lower it)", p.QueueWait, c.DispatchTimeout)
	}
}

// ttls checks a handler's ttl and idle_ttl.
func (v *validator) ttls(key string, h *Handler) {
	for _, t := range []struct {
		name string
		d    Duration
	}{{"ttl", h.TTL}, {"idle_ttl", h.IdleTTL}} {
		if t.d != 0 && t.d < Duration(time.Second) {
			v.fail(key+"."+t.name, "%s is too short (want 0 for off, or at least 1s: shorter replaces workers without pause)", t.d)
		}
	}
}
