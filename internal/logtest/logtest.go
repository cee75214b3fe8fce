// Package logtest records a logger's lines for tests that wait for one
// (synchronising on what a process logged, never on a sleep). Only tests
// import it.
package logtest

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// Entry is a copy of one log line.
type Entry struct {
	Level logrus.Level
	Msg   string
	Data  logrus.Fields
}

// Hook records every line of the logger it is added to and wakes whoever
// waits for one.
type Hook struct {
	mu      sync.Mutex
	entries []Entry
	changed chan struct{} // closed and replaced on every entry
}

// New returns a logger at debug level that writes nothing but records
// every line in the returned Hook.
func New() (*logrus.Logger, *Hook) {
	h := &Hook{changed: make(chan struct{})}
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(h)
	return l, h
}

// Levels implements logrus.Hook.
func (h *Hook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire implements logrus.Hook.
func (h *Hook) Fire(e *logrus.Entry) error {
	data := make(logrus.Fields, len(e.Data))
	for k, v := range e.Data {
		data[k] = v
	}
	h.mu.Lock()
	h.entries = append(h.entries, Entry{Level: e.Level, Msg: e.Message, Data: data})
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	return nil
}

// Find returns the first entry matching match, or false and a channel
// closed at the next entry.
func (h *Hook) Find(match func(Entry) bool) (Entry, bool, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.entries {
		if match(e) {
			return e, true, nil
		}
	}
	return Entry{}, false, h.changed
}

// Wait waits up to timeout for an entry matching match; what names it in
// the failure, which lists every line logged.
func (h *Hook) Wait(t testing.TB, timeout time.Duration, what string, match func(Entry) bool) Entry {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		e, ok, changed := h.Find(match)
		if ok {
			return e
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("no log line for %q within %s; logged:\n%s", what, timeout, h.Dump())
		}
	}
}

// Count is how many lines have message msg.
func (h *Hook) Count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.entries {
		if e.Msg == msg {
			n++
		}
	}
	return n
}

// Dump formats every line, for a failure message.
func (h *Hook) Dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s string
	for _, e := range h.entries {
		s += "  " + e.Level.String() + " " + e.Msg + " " + fmt.Sprint(map[string]any(e.Data)) + "\n"
	}
	return s
}
