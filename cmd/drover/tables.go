package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/drover-dev/drover/master"
)

// printShared prints the master's tables and atomics lines of drover
// status, when the config declares any:
//
//	tables:      cache 12 of 100000 rows, 37.6MiB
//	atomics:     errors 0, requests 1234
func printShared(out io.Writer, m master.Process) {
	if len(m.Tables) > 0 {
		var parts []string
		for _, t := range m.Tables {
			p := fmt.Sprintf("%s %d of %d rows, %s", t.Name, t.Rows, t.Size, humanBytes(uint64(t.Memory)))
			if t.Recovered+t.Torn+t.Timeouts > 0 {
				p += fmt.Sprintf(" (%d locks recovered, %d torn writes, %d read timeouts)", t.Recovered, t.Torn, t.Timeouts)
			}
			parts = append(parts, p)
		}
		fmt.Fprintf(out, "tables:      %s\n", strings.Join(parts, "; "))
	}
	if len(m.Atomics) > 0 {
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(m.Atomics)) {
			parts = append(parts, fmt.Sprintf("%s %d", name, m.Atomics[name]))
		}
		fmt.Fprintf(out, "atomics:     %s\n", strings.Join(parts, ", "))
	}
}
