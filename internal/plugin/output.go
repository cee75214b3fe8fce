package plugin

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/lines"
)

// maxLine is the longest output line logged as one entry; longer lines are
// logged in pieces of this size.
const maxLine = lines.MaxPiece

// output turns the handler's stdout and stderr into log entries and keeps
// the last lines in a ring. It is safe for concurrent use; each stream keeps
// its own panic state.
type output struct {
	log *logrus.Entry

	mu      sync.Mutex
	ring    []string // fixed capacity; next is the slot to overwrite
	next    int
	full    bool
	inPanic map[string]bool
}

func newOutput(log *logrus.Entry, lines int) *output {
	return &output{log: log, ring: make([]string, lines), inPanic: map[string]bool{}}
}

// line records one line of the named stream ("stdout" or "stderr").
func (o *output) line(stream, text string) {
	o.mu.Lock()
	if len(o.ring) > 0 {
		o.ring[o.next] = text
		o.next = (o.next + 1) % len(o.ring)
		o.full = o.full || o.next == 0
	}
	level, panicking := classify(text, o.inPanic[stream])
	o.inPanic[stream] = panicking
	log := o.log
	o.mu.Unlock()
	log.WithFields(logrus.Fields{"stream": stream, "output": text}).Log(level, "worker output")
}

// tail returns the recorded lines, oldest first.
func (o *output) tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.full {
		return append([]string(nil), o.ring[:o.next]...)
	}
	return append(append([]string(nil), o.ring[o.next:]...), o.ring[:o.next]...)
}

// setLog replaces the entry lines are logged to (Start adds the pid once
// the process exists).
func (o *output) setLog(log *logrus.Entry) {
	o.mu.Lock()
	o.log = log
	o.mu.Unlock()
}

// pump reads r line by line until EOF or error and hands every line to fn.
// Lines longer than maxLine are handed over in pieces.
func pump(r io.Reader, fn func(string)) {
	lines.Pump(r, maxLine, func(piece string, _ bool) { fn(piece) })
}

// classify picks the log level of a handler's output line. It understands
// logrus text (level=warning), JSON logs (logrus, zap, slog, hclog: "level"
// or "@level"), hclog/std prefixes ([ERROR]) and Go panics and fatal errors:
// from "panic: " or "fatal error: " on, every line of that stream is an
// error. Anything else is Info: it is the handler's own output and should be
// seen at drover's default level. Panic and fatal levels of the handler map
// to Error, never to logrus's Panic or Fatal.
func classify(line string, inPanic bool) (logrus.Level, bool) {
	if inPanic || strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
		return logrus.ErrorLevel, true
	}
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 && end < 8 {
			if l, ok := levelName(line[1:end]); ok {
				return l, false
			}
		}
	}
	if strings.HasPrefix(line, "{") {
		var fields struct {
			Level  string `json:"level"`
			HCLog  string `json:"@level"`
			Severe string `json:"severity"`
		}
		if json.Unmarshal([]byte(line), &fields) == nil {
			for _, name := range []string{fields.Level, fields.HCLog, fields.Severe} {
				if l, ok := levelName(name); ok {
					return l, false
				}
			}
		}
		return logrus.InfoLevel, false
	}
	if i := strings.Index(line, "level="); i == 0 || i > 0 && line[i-1] == ' ' {
		name := line[i+len("level="):]
		if j := strings.IndexByte(name, ' '); j >= 0 {
			name = name[:j]
		}
		if l, ok := levelName(strings.Trim(name, `"`)); ok {
			return l, false
		}
	}
	return logrus.InfoLevel, false
}

func levelName(s string) (logrus.Level, bool) {
	switch strings.ToLower(s) {
	case "trace", "debug", "dbg":
		return logrus.DebugLevel, true
	case "info", "notice":
		return logrus.InfoLevel, true
	case "warn", "warning", "wrn":
		return logrus.WarnLevel, true
	case "error", "err", "fatal", "panic", "crit", "critical", "dpanic", "emergency", "alert":
		return logrus.ErrorLevel, true
	}
	return 0, false
}

// lineWriter is an io.Writer that hands every complete line to fn; a
// trailing partial line is kept until the next write.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLine {
			break
		}
		if i < 0 {
			i = len(w.buf)
		}
		w.fn(string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[min(i+1, len(w.buf)):]
	}
	return len(p), nil
}

// hclogger routes go-plugin's own logging to log at Debug level, whatever
// level go-plugin chose: its messages are about go-plugin's internals
// ("starting plugin", "plugin process exited" with an error) and drover logs
// the lifecycle events itself. When log is not at Debug, go-plugin's logging
// is switched off entirely so that it costs nothing.
func hclogger(log *logrus.Entry) hclog.Logger {
	if !log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		return hclog.NewNullLogger()
	}
	l := log.WithField("component", "go-plugin")
	return hclog.New(&hclog.LoggerOptions{
		Name:        "go-plugin",
		Level:       hclog.Debug,
		DisableTime: true,
		Output: &lineWriter{fn: func(s string) {
			if s != "" {
				l.Debug(s)
			}
		}},
	})
}
