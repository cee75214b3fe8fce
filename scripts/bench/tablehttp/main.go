// Command tablehttp is the Go handler of scripts/bench/tables.sh: GET
// /item?id=K answers item K (1..1000) as "name price", from the shared
// table items (argument "table") or from a map each worker builds for
// itself (argument "map"): the same handler with a per-process map.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/drover-dev/drover/worker"
)

type item struct {
	name  string
	price float64
}

func items() map[string]item {
	m := make(map[string]item, 1000)
	for i := 1; i <= 1000; i++ {
		m[strconv.Itoa(i)] = item{fmt.Sprintf("item number %d", i), float64(i) / 10}
	}
	return m
}

func main() {
	var get func(id string, buf []byte) ([]byte, bool)
	switch os.Args[len(os.Args)-1] {
	case "table":
		tb, err := worker.Table("items")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(78)
		}
		name, _ := tb.Column("name")
		price, _ := tb.Column("price")
		row := tb.NewRow()
		for id, it := range items() { // each worker: the same rows, idempotent
			row.Reset()
			row.SetString(name, it.name)
			row.SetFloat(price, it.price)
			tb.Set(id, row)
		}
		get = func(id string, buf []byte) ([]byte, bool) {
			buf, ok := tb.GetString(id, name, buf)
			if !ok {
				return buf, false
			}
			p, _ := tb.GetFloat(id, price)
			buf = append(buf, ' ')
			return strconv.AppendFloat(buf, p, 'f', -1, 64), true
		}
	case "map":
		m := items()
		get = func(id string, buf []byte) ([]byte, bool) {
			it, ok := m[id]
			if !ok {
				return buf, false
			}
			buf = append(append(buf, it.name...), ' ')
			return strconv.AppendFloat(buf, it.price, 'f', -1, 64), true
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: tablehttp table|map")
		os.Exit(78)
	}
	worker.RunHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := get(r.URL.Query().Get("id"), make([]byte, 0, 64))
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
}
