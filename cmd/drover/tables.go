package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/master"
	"github.com/drover-dev/drover/shm"
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

// checkShared prints drover check's lines for tables: and atomics:, with
// the memory the master will allocate at start:
//
//	tables:       cache 100000 rows (37.6MiB)
//	atomics:      errors, requests
//	shared memory: 37.6MiB, allocated at start
func checkShared(out io.Writer, cfg *config.Config) {
	spec := cfg.Shared()
	if len(spec.Tables)+len(spec.Atomics) == 0 {
		return
	}
	if len(spec.Tables) > 0 {
		var parts []string
		for _, t := range spec.Tables {
			parts = append(parts, fmt.Sprintf("%s %d rows (%s)", t.Name, t.Size, humanBytes(uint64(shm.TableBytes(t)))))
		}
		fmt.Fprintf(out, "tables:       %s\n", strings.Join(parts, ", "))
	}
	if len(spec.Atomics) > 0 {
		fmt.Fprintf(out, "atomics:      %s\n", strings.Join(spec.Atomics, ", "))
	}
	fmt.Fprintf(out, "shared memory: %s, allocated at start\n", humanBytes(uint64(spec.Bytes())))
}
