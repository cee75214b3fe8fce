package master

import (
	"io"
	"strings"

	"github.com/drover-dev/drover/ipc"
)

// relayManagerLine writes a piece of a line of the manager's output to
// out, the master's log output, in one write (buf is the scratch for it,
// returned for the next). The manager's logger formats its lines as the
// master's does; what it writes without its logger (a Go panic, a race
// report) is no JSON object, and with log_format: json it goes out as the
// "output" of a JSON line of its own, so that every line is one.
func (m *Master) relayManagerLine(out io.Writer, buf []byte, piece string) []byte {
	if m.cfg.LogFormat == "json" && !strings.HasPrefix(piece, "{") {
		m.log.WithFields(map[string]any{"role": ipc.RoleManager, "output": piece}).Error("manager output")
		return buf
	}
	buf = append(append(buf[:0], piece...), '\n')
	out.Write(buf)
	return buf
}
