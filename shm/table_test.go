package shm

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// cacheSpec is the example table and two atomics.
var cacheSpec = Spec{
	Tables: []TableSpec{{Name: "cache", Size: 1000, Columns: []ColumnSpec{
		{Name: "value", Type: String, Size: 256}, {Name: "hits", Type: Int}, {Name: "updated", Type: Float}}}},
	Atomics: []string{"requests", "errors"},
}

func newRegion(t testing.TB, spec Spec) *Region {
	t.Helper()
	r, err := Create(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type cacheCols struct{ value, hits, updated Column }

func cacheTable(t testing.TB, r *Region) (*Table, cacheCols) {
	t.Helper()
	tb, err := r.Table("cache")
	if err != nil {
		t.Fatal(err)
	}
	var c cacheCols
	for name, p := range map[string]*Column{"value": &c.value, "hits": &c.hits, "updated": &c.updated} {
		if *p, err = tb.Column(name); err != nil {
			t.Fatal(err)
		}
	}
	return tb, c
}

func TestTableBasics(t *testing.T) {
	r := newRegion(t, cacheSpec)
	tb, c := cacheTable(t, r)
	row := tb.NewRow()
	if tb.Get("a", row) || tb.Exists("a") || tb.Count() != 0 {
		t.Fatal("an empty table has a row")
	}
	row.SetString(c.value, "hello")
	row.SetInt(c.hits, 3)
	if err := tb.Set("a", row); err != nil {
		t.Fatal(err)
	}
	got := tb.NewRow()
	if !tb.Get("a", got) || got.String(c.value) != "hello" || got.Int(c.hits) != 3 || got.Float(c.updated) != 0 {
		t.Fatalf("get a: %q %d %v", got.String(c.value), got.Int(c.hits), got.Float(c.updated))
	}
	// A set with some columns leaves the others as they were (Swoole).
	row.Reset()
	row.SetFloat(c.updated, 1.5)
	if err := tb.Set("a", row); err != nil {
		t.Fatal(err)
	}
	if !tb.Get("a", got) || got.String(c.value) != "hello" || got.Int(c.hits) != 3 || got.Float(c.updated) != 1.5 {
		t.Fatalf("after a partial set: %q %d %v", got.String(c.value), got.Int(c.hits), got.Float(c.updated))
	}
	if n, err := tb.Incr("a", c.hits, 2); err != nil || n != 5 {
		t.Fatalf("incr: %d %v", n, err)
	}
	if n, err := tb.Incr("b", c.hits, -4); err != nil || n != -4 {
		t.Fatalf("incr of a new key: %d %v", n, err)
	}
	if f, err := tb.IncrFloat("a", c.updated, 0.25); err != nil || f != 1.75 {
		t.Fatalf("incr float: %v %v", f, err)
	}
	if v, ok := tb.GetInt("a", c.hits); !ok || v != 5 {
		t.Fatalf("GetInt: %d %v", v, ok)
	}
	if v, ok := tb.GetFloat("a", c.updated); !ok || v != 1.75 {
		t.Fatalf("GetFloat: %v %v", v, ok)
	}
	if s, ok := tb.GetString("a", c.value, nil); !ok || string(s) != "hello" {
		t.Fatalf("GetString: %q %v", s, ok)
	}
	if err := tb.SetString("a", c.value, "hi"); err != nil {
		t.Fatal(err)
	}
	if s, ok := tb.GetString("a", c.value, make([]byte, 0, 1)); !ok || string(s) != "hi" {
		t.Fatalf("GetString after SetString: %q %v", s, ok)
	}
	if tb.Count() != 2 {
		t.Fatalf("count %d, want 2", tb.Count())
	}
	if ok, err := tb.Del("a"); !ok || err != nil {
		t.Fatalf("del: %v %v", ok, err)
	}
	if ok, _ := tb.Del("a"); ok || tb.Exists("a") || tb.Count() != 1 {
		t.Fatal("a deleted row is still there")
	}
	if _, err := tb.Incr("b", c.value, 1); !errors.Is(err, ErrType) {
		t.Fatalf("incr of a string column: %v", err)
	}
}

func TestTableLimits(t *testing.T) {
	r := newRegion(t, Spec{Tables: []TableSpec{{Name: "small", Size: 3, Columns: []ColumnSpec{{Name: "s", Type: String, Size: 4}}}}})
	tb, _ := r.Table("small")
	s, _ := tb.Column("s")
	row := tb.NewRow()
	if err := row.SetString(s, "12345"); !errors.Is(err, ErrTooLong) {
		t.Fatalf("5 bytes into string(4): %v", err)
	}
	if err := tb.SetString("k", s, "12345"); !errors.Is(err, ErrTooLong) {
		t.Fatalf("SetString of 5 bytes into string(4): %v", err)
	}
	for _, k := range []string{"", strings.Repeat("k", MaxKey+1)} {
		if err := tb.SetString(k, s, "x"); !errors.Is(err, ErrKey) {
			t.Fatalf("key of %d bytes: %v", len(k), err)
		}
	}
	long := strings.Repeat("k", MaxKey)
	for _, k := range []string{long, "b", "c"} {
		if err := tb.SetString(k, s, "1234"); err != nil {
			t.Fatal(err)
		}
	}
	if err := tb.SetString("d", s, "x"); !errors.Is(err, ErrFull) {
		t.Fatalf("a 4th row in a table of 3: %v", err)
	}
	// A full table still updates its rows.
	if err := tb.SetString("b", s, "x"); err != nil {
		t.Fatal(err)
	}
	tb.Del("b")
	if err := tb.SetString("d", s, "x"); err != nil {
		t.Fatalf("a row after a delete: %v", err)
	}
	if v, ok := tb.GetString(long, s, nil); !ok || string(v) != "1234" {
		t.Fatalf("63-byte key: %q %v", v, ok)
	}
}

func TestRange(t *testing.T) {
	r := newRegion(t, cacheSpec)
	tb, c := cacheTable(t, r)
	want := map[string]int64{}
	for i := range 500 {
		k := fmt.Sprintf("key%d", i)
		want[k] = int64(i)
		if err := tb.SetInt(k, c.hits, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int64{}
	tb.Range(tb.NewRow(), func(key string, row *Row) bool {
		if _, dup := got[key]; dup {
			t.Errorf("%s seen twice", key)
		}
		got[key] = row.Int(c.hits)
		return true
	})
	if len(got) != len(want) {
		t.Fatalf("range saw %d rows, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %d, want %d", k, got[k], v)
		}
	}
	n := 0
	tb.Range(tb.NewRow(), func(string, *Row) bool { n++; return n < 10 })
	if n != 10 {
		t.Fatalf("range went on after false: %d calls", n)
	}
	// Deleting each row as it comes (Swoole code does) reaches them all.
	tb.Range(tb.NewRow(), func(key string, _ *Row) bool { tb.Del(key); return true })
	if tb.Count() != 0 {
		t.Fatalf("%d rows left after deleting while ranging", tb.Count())
	}
}

// Two mappings of one memfd (as two processes have) see each other's
// writes.
func TestMapSharesMemory(t *testing.T) {
	r := newRegion(t, cacheSpec)
	r2, err := Map(r.File())
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	r2.file = nil // r's file: closed by r
	tb, c := cacheTable(t, r)
	tb2, c2 := cacheTable(t, r2)
	tb.SetString("k", c.value, "from r")
	if s, ok := tb2.GetString("k", c2.value, nil); !ok || string(s) != "from r" {
		t.Fatalf("r2 reads %q %v", s, ok)
	}
	a, _ := r.Atomic("requests")
	a2, _ := r2.Atomic("requests")
	a.Add(5)
	if a2.Add(1) != 6 {
		t.Fatal("atomics are not shared")
	}
	if !r2.Matches(cacheSpec) || r2.SchemaHash() != r.SchemaHash() {
		t.Fatal("schema differs")
	}
}

// Goroutines incrementing shared rows add up, and reads never see a row
// half written.
func TestConcurrentGoroutines(t *testing.T) {
	r := newRegion(t, cacheSpec)
	tb, c := cacheTable(t, r)
	const workers, ops, keys = 8, 5000, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			row := tb.NewRow()
			for i := range ops {
				k := fmt.Sprintf("k%d", (i*7+w)%keys)
				switch i % 3 {
				case 0:
					if _, err := tb.Incr(k, c.hits, 1); err != nil {
						t.Error(err)
						return
					}
				case 1:
					row.Reset()
					v := fmt.Sprintf("%d-%d", w, i)
					row.SetString(c.value, v)
					row.SetFloat(c.updated, float64(len(v)))
					if err := tb.Set(k, row); err != nil {
						t.Error(err)
						return
					}
				case 2:
					if tb.Get(k, row) && row.Float(c.updated) != float64(len(row.Bytes(c.value))) {
						t.Errorf("torn read of %s: %q with length %v", k, row.Bytes(c.value), row.Float(c.updated))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	var sum int64
	tb.Range(tb.NewRow(), func(_ string, row *Row) bool { sum += row.Int(c.hits); return true })
	if want := int64(workers * ((ops + 2) / 3)); sum != want {
		t.Fatalf("counters sum to %d, want %d", sum, want)
	}
}

func TestSpecCheck(t *testing.T) {
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{Tables: []TableSpec{{Name: "1x", Size: 1, Columns: []ColumnSpec{{Name: "a", Type: Int}}}}}, "not starting with a digit"},
		{Spec{Tables: []TableSpec{{Name: "t", Size: 0, Columns: []ColumnSpec{{Name: "a", Type: Int}}}}}, "size 0 out of range"},
		{Spec{Tables: []TableSpec{{Name: "t", Size: 1}}}, "0 columns"},
		{Spec{Tables: []TableSpec{{Name: "t", Size: 1, Columns: []ColumnSpec{{Name: "a", Type: Int}, {Name: "a", Type: Float}}}}}, `column "a" declared twice`},
		{Spec{Tables: []TableSpec{{Name: "t", Size: 1, Columns: []ColumnSpec{{Name: "a", Type: String}}}}}, "string size 0"},
		{Spec{Atomics: []string{"a", "a"}}, `atomic "a" declared twice`},
	} {
		if err := tt.spec.Check(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.spec, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in   string
		typ  ColumnType
		size int
		err  string
	}{
		{"int", Int, 8, ""}, {"float", Float, 8, ""}, {"string(256)", String, 256, ""},
		{"string", 0, 0, "needs its size"}, {"string(0)", 0, 0, "from 1 to"}, {"strin(2)", 0, 0, "unknown column type"},
	} {
		typ, size, err := ParseType(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseType(%q): %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || typ != tt.typ || size != tt.size {
			t.Errorf("ParseType(%q) = %v %d %v", tt.in, typ, size, err)
		}
	}
}

// The layout's figures documented in docs/tables.md.
func TestBytes(t *testing.T) {
	tb := cacheSpec.Tables[0]
	tb.Size = 100000
	if n := RowSize(tb); n != 352 {
		t.Errorf("row of value string(256), hits int, updated float: %d bytes, docs say 352", n)
	}
	if n := TableBytes(tb); n != 39394624 {
		t.Errorf("table of 100000 rows: %d bytes, docs say 39394624", n)
	}
	r := newRegion(t, Spec{Tables: []TableSpec{tb}})
	if got, _ := r.Table("cache"); got.Memory() != 39394624 {
		t.Errorf("Memory() %d, docs say 39394624", got.Memory())
	}
}
