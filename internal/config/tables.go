package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/drover-dev/drover/shm"
)

// Table is one shared-memory table (tables: NAME: {size, columns}),
// Swoole\Table's counterpart: up to Size rows of the declared columns,
// shared by every worker, task worker and user process (docs/tables.md).
type Table struct {
	// Size is how many rows the table holds at most; required, 1 to
	// 100,000,000. A set of a new key into a full table fails.
	Size int `yaml:"size" json:"size"`
	// Columns maps each column's name to its type: int (64-bit), float
	// (double) or string(N) (up to N bytes). Required, 1 to 64 columns.
	Columns map[string]string `yaml:"columns" json:"columns"`
}

// structMap decodes a mapping of names to structs (tables:).
func (d *decoder) structMap(path string, line int, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.badValue(line, path, "want a mapping of names to tables (e.g. tables: {cache: {size: 1024, columns: {value: string(256)}}}), got "+describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	seen := map[string]int{}
	for _, p := range d.pairs(path, n, false) {
		k := deref(p.key)
		if k.Kind != yaml.ScalarNode {
			d.errorAt(p.key.Line, path, "keys must be plain names, got "+describe(k)+" (write NAME: {…})")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if !p.merged {
				d.errorAt(p.key.Line, path, fmt.Sprintf("duplicate key %q (first set on line %d; keep one)", k.Value, first))
			}
			continue
		}
		seen[k.Value] = p.key.Line
		key := mapKey(path, k.Value)
		d.lines[key] = p.key.Line
		d.set[key] = true
		elem := reflect.New(v.Type().Elem()).Elem()
		if !isNull(deref(p.val)) {
			d.value(key, p.key.Line, p.val, elem, false)
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
	v.Set(m)
}

// tables checks tables: and atomics: against what shm accepts, each
// problem on the line of its key.
func (v *validator) tables(c *Config) {
	errs := len(v.errs)
	names := slices.Sorted(maps.Keys(c.Tables))
	for _, name := range names {
		tb := c.Tables[name]
		key := mapKey("tables", name)
		if err := shm.CheckName(name); err != nil {
			v.fail(key, "%v", err)
		}
		switch {
		case !v.present(key+".size", tb.Size != 0):
			v.failNear(key+".size", key, "required (how many rows the table holds, e.g. size: 1024)")
		case tb.Size < 1 || tb.Size > shm.MaxRows:
			v.fail(key+".size", "%d is out of range (want 1 to %d rows: how many the table holds; a set of a new key into a full table fails)", tb.Size, shm.MaxRows)
		}
		switch {
		case len(tb.Columns) == 0:
			v.failNear(key+".columns", key, "required (e.g. columns: {value: string(256), hits: int, updated: float})")
		case len(tb.Columns) > shm.MaxColumns:
			v.fail(key+".columns", "%d columns (at most %d)", len(tb.Columns), shm.MaxColumns)
		}
		for _, col := range slices.Sorted(maps.Keys(tb.Columns)) {
			ck := mapKey(key+".columns", col)
			if err := shm.CheckName(col); err != nil {
				v.fail(ck, "%v", err)
				continue
			}
			if _, _, err := shm.ParseType(tb.Columns[col]); err != nil {
				v.fail(ck, "%v", err)
			}
		}
	}
	seen := map[string]bool{}
	for i, a := range c.Atomics {
		key := fmt.Sprintf("atomics[%d]", i)
		if err := shm.CheckName(a); err != nil {
			v.fail(key, "%v", err)
		} else if seen[a] {
			v.fail(key, "%q is declared twice", a)
		}
		seen[a] = true
	}
	if len(v.errs) > errs {
		return
	}
	// All well-formed: does it fit? Blame the largest table.
	spec := c.Shared()
	if n := spec.Bytes(); n > shm.MaxRegion {
		big := spec.Tables[0]
		for _, tb := range spec.Tables {
			if shm.TableBytes(tb) > shm.TableBytes(big) {
				big = tb
			}
		}
		v.fail(mapKey("tables", big.Name), "the tables need %d bytes (%.0f GiB), more than drover maps (%d GiB): lower the sizes of the tables or of their string columns",
			n, float64(n)/(1<<30), shm.MaxRegion>>30)
	}
}

// Shared is what tables: and atomics: declare, for the master to lay out
// (shm.Create); empty when they declare nothing. c must have been
// validated.
func (c *Config) Shared() shm.Spec {
	var s shm.Spec
	for _, name := range slices.Sorted(maps.Keys(c.Tables)) {
		tb := c.Tables[name]
		ts := shm.TableSpec{Name: name, Size: tb.Size}
		for _, col := range slices.Sorted(maps.Keys(tb.Columns)) {
			typ, size, _ := shm.ParseType(tb.Columns[col])
			ts.Columns = append(ts.Columns, shm.ColumnSpec{Name: col, Type: typ, Size: size})
		}
		s.Tables = append(s.Tables, ts)
	}
	s.Atomics = slices.Clone(c.Atomics)
	return s
}
