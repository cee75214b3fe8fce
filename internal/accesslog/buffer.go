package accesslog

import "time"

// Buffer is one producer's (a reactor loop's) side of the access log: lines
// are formatted into it and handed to the Writer when it is nearly full or
// on Flush. It is owned by one goroutine and never locked; it never blocks
// and, once its Writer's buffers exist, allocates nothing per line.
type Buffer struct {
	w     *Writer
	b     []byte
	lines int

	// The timestamp of the current second, formatted once a second: JSON's
	// "2006-01-02T15:04:05" and zone ("Z07:00"), combined's
	// "[02/Jan/2006:15:04:05 -0700]".
	sec      int64
	jsonDate []byte
	jsonZone []byte
	clfDate  []byte
}

// NewBuffer returns a Buffer for one producer.
func (w *Writer) NewBuffer() *Buffer {
	return &Buffer{w: w, b: w.take(), sec: -1}
}

// Lines is how many lines wait in the buffer.
func (b *Buffer) Lines() int { return b.lines }

// Flush hands the buffered lines to the writer (a producer calls it at
// each tick, so that a line waits at most that long). When the writer's
// queue is full they stay, for the next Flush or until the buffer fills.
func (b *Buffer) Flush() { b.hand(false) }

// room makes sure n more bytes fit: else the buffer is handed over first.
func (b *Buffer) room(n int) {
	if cap(b.b)-len(b.b) < n {
		b.hand(true)
	}
}

// hand gives the buffer to the writer and takes an empty one. full: the
// buffer has no room for the next line, so when the queue is full its
// lines are dropped (counted) rather than kept.
func (b *Buffer) hand(full bool) {
	if b.lines == 0 {
		return
	}
	select {
	case b.w.queue <- chunk{b.b, b.lines}:
		b.b, b.lines = b.w.take(), 0
	default:
		if full {
			b.w.drop(b.lines)
			b.b, b.lines = b.b[:0], 0
		}
	}
}

// stamp formats t's second once (see Buffer's fields).
func (b *Buffer) stamp(t time.Time) {
	if s := t.Unix(); s != b.sec {
		b.sec = s
		b.jsonDate = t.AppendFormat(b.jsonDate[:0], "2006-01-02T15:04:05")
		b.jsonZone = t.AppendFormat(b.jsonZone[:0], "Z07:00")
		b.clfDate = t.AppendFormat(b.clfDate[:0], "[02/Jan/2006:15:04:05 -0700]")
	}
}
