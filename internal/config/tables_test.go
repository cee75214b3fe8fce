package config

import (
	"strings"
	"testing"

	"github.com/drover-dev/drover/shm"
)

func TestTables(t *testing.T) {
	fx := newFixture(t)
	c, err := fx.parse(minimal + `tables:
  cache:
    size: 100000
    columns:
      value: string(256)
      hits: int
      updated: float
  limits: {size: 10, columns: {n: int}}
atomics: [requests, errors]
`)
	if err != nil {
		t.Fatal(err)
	}
	spec := c.Shared()
	if len(spec.Tables) != 2 || len(spec.Atomics) != 2 {
		t.Fatalf("spec %+v", spec)
	}
	var cache shm.TableSpec
	for _, tb := range spec.Tables {
		if tb.Name == "cache" {
			cache = tb
		}
	}
	want := map[string]shm.ColumnSpec{"value": {Name: "value", Type: shm.String, Size: 256},
		"hits": {Name: "hits", Type: shm.Int, Size: 8}, "updated": {Name: "updated", Type: shm.Float, Size: 8}}
	if cache.Size != 100000 || len(cache.Columns) != 3 {
		t.Fatalf("cache %+v", cache)
	}
	for _, col := range cache.Columns {
		if col != want[col.Name] {
			t.Errorf("column %+v, want %+v", col, want[col.Name])
		}
	}
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	// No tables, no atomics: no shared memory at all.
	c, _ = fx.parse(minimal)
	if s := c.Shared(); len(s.Tables)+len(s.Atomics) != 0 {
		t.Fatalf("spec of a config without tables: %+v", s)
	}
	// The config reaches the manager as JSON.
	c, _ = fx.parse(minimal + "tables: {t: {size: 1, columns: {a: int}}}\natomics: [n]\n")
	if got := clone(t, c); got.Tables["t"].Size != 1 || got.Tables["t"].Columns["a"] != "int" || got.Atomics[0] != "n" {
		t.Fatalf("after JSON: %+v %+v", got.Tables, got.Atomics)
	}
}

func TestTableErrors(t *testing.T) {
	fx := newFixture(t)
	for _, tt := range []struct{ yaml, err string }{
		{"tables:\n  cache:\n    size: 0\n    columns: {a: int}\n",
			`drover.yaml:8: tables.cache.size: 0 is out of range (want 1 to 100000000 rows: how many the table holds; a set of a new key into a full table fails)`},
		{"tables:\n  cache:\n    columns: {a: int}\n",
			`drover.yaml:7: tables.cache.size: required (how many rows the table holds, e.g. size: 1024)`},
		{"tables:\n  cache:\n    size: 10\n",
			`drover.yaml:7: tables.cache.columns: required (e.g. columns: {value: string(256), hits: int, updated: float})`},
		{"tables:\n  cache:\n    size: 10\n    columns:\n      value: strin(256)\n",
			`drover.yaml:10: tables.cache.columns.value: unknown column type "strin(256)" (want int, float or string(N), e.g. string(256))`},
		{"tables:\n  cache:\n    size: 10\n    columns:\n      value: string\n",
			`drover.yaml:10: tables.cache.columns.value: "string" needs its size in bytes, e.g. string(256)`},
		{"tables:\n  cache:\n    size: 10\n    columns:\n      1v: int\n",
			`drover.yaml:10: tables.cache.columns.1v: "1v": a name is letters, digits and _, not starting with a digit`},
		{"tables:\n  ca-che: {size: 1, columns: {a: int}}\n",
			`drover.yaml:7: tables.ca-che: "ca-che": a name is letters, digits and _, not starting with a digit`},
		{"tables:\n  cache: {size: 1, colums: {a: int}}\n",
			`drover.yaml:7: tables.cache: unknown key "colums" (did you mean "columns"?)`},
		{"tables: [cache]\n",
			`drover.yaml:6: tables: want a mapping of names to tables (e.g. tables: {cache: {size: 1024, columns: {value: string(256)}}}), got a list`},
		{"atomics: [requests, requests]\n",
			`drover.yaml:6: atomics[1]: "requests" is declared twice`},
		{"atomics: [\"\"]\n",
			`drover.yaml:6: atomics[0]: empty name`},
		{"tables:\n  big: {size: 100000000, columns: {s: string(1048576)}}\n",
			`drover.yaml:7: tables.big: the tables need 104869894967616 bytes (97668 GiB), more than drover maps (1024 GiB)`},
	} {
		_, err := fx.parse(minimal + tt.yaml)
		if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
			t.Errorf("%s\ngot  %v\nwant %s", tt.yaml, err, tt.err)
		}
	}
}
