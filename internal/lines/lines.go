// Package lines reads a process's output line by line with a bound: a line
// longer than the bound is handed over in pieces, and reading goes on to
// the end of the stream whatever the lines' length. The master (the
// manager's log), the manager (workers' output) and internal/plugin
// (plugin-launched workers' output) read through it, so a handler printing
// a line of any length is logged, never stops a reader.
package lines

import (
	"bufio"
	"bytes"
	"io"
)

// MaxPiece is the longest piece of a worker's output line logged as one
// entry; longer lines are logged in pieces of this size.
const MaxPiece = 64 << 10

// Pump reads r until EOF or a read error, which it returns (nil at EOF),
// and calls fn for every line without its line feed (and a trailing
// carriage return). A line longer than max bytes is handed over in pieces
// of max bytes; more is true for every piece but a line's last.
func Pump(r io.Reader, max int, fn func(piece string, more bool)) error {
	br := bufio.NewReaderSize(r, max)
	for {
		b, more, err := br.ReadLine()
		if len(b) > 0 || err == nil {
			if !more {
				b = bytes.TrimRight(b, "\r")
			}
			fn(string(b), more)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
