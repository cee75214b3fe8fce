package shm

import (
	"strconv"
	"testing"
)

// Benchmarks of docs/benchmarks.md ("Shared tables"): one process, keys
// k0..k999 of the cache table (value string(256), hits int,
// updated float). Get of fixed columns allocates nothing.

func benchTable(b *testing.B) (*Table, cacheCols, []string) {
	r := newRegion(b, Spec{Tables: []TableSpec{{Name: "cache", Size: 100000, Columns: cacheSpec.Tables[0].Columns}}})
	tb, c := cacheTable(b, r)
	keys := make([]string, 1000)
	row := tb.NewRow()
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		row.SetString(c.value, "a cached value of some thirty bytes")
		row.SetInt(c.hits, int64(i))
		if err := tb.Set(keys[i], row); err != nil {
			b.Fatal(err)
		}
	}
	return tb, c, keys
}

func BenchmarkGetInt(b *testing.B) {
	tb, c, keys := benchTable(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := tb.GetInt(keys[i%len(keys)], c.hits); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkGetString(b *testing.B) {
	tb, c, keys := benchTable(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf, _ = tb.GetString(keys[i%len(keys)], c.value, buf)
	}
}

func BenchmarkGetRow(b *testing.B) {
	tb, _, keys := benchTable(b)
	row := tb.NewRow()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tb.Get(keys[i%len(keys)], row)
	}
}

func BenchmarkSetInt(b *testing.B) {
	tb, c, keys := benchTable(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := tb.SetInt(keys[i%len(keys)], c.hits, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetRow(b *testing.B) {
	tb, c, keys := benchTable(b)
	row := tb.NewRow()
	row.SetString(c.value, "a cached value of some thirty bytes")
	row.SetInt(c.hits, 1)
	row.SetFloat(c.updated, 1.5)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := tb.Set(keys[i%len(keys)], row); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIncr(b *testing.B) {
	tb, c, keys := benchTable(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := tb.Incr(keys[i%len(keys)], c.hits, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetDel(b *testing.B) {
	tb, c, _ := benchTable(b)
	b.ReportAllocs()
	for b.Loop() {
		tb.SetInt("fresh", c.hits, 1)
		tb.Del("fresh")
	}
}

func BenchmarkAtomicAdd(b *testing.B) {
	r := newRegion(b, cacheSpec)
	a, _ := r.Atomic("requests")
	b.ReportAllocs()
	for b.Loop() {
		a.Add(1)
	}
}

func BenchmarkGetIntParallel(b *testing.B) {
	tb, c, keys := benchTable(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			tb.GetInt(keys[i%len(keys)], c.hits)
		}
	})
}
