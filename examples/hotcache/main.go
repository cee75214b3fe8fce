// Command hotcache is a hot cache in shared memory: a user process loads a
// JSON file into the table "items" at start and every -every seconds, and
// the workers answer from the table, never from the file. One binary, two
// roles (see examples/hotcache.yaml):
//
//	GET /item?id=K   the item as JSON, 404 when the file has none
//	GET /stats       rows in the table, loads done
//
// Run it with
//
//	make build && bin/drover start -c examples/hotcache.yaml
//	curl 'http://127.0.0.1:8085/item?id=2'
//
// Edit the file: the next load serves the new content to every worker at
// once; items gone from the file go from the table. A reload or a crashed
// worker loses nothing: the table is the master's (docs/tables.md).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/shm"
	"github.com/drover-dev/drover/worker"
)

// cache is the table and its columns, looked up once.
type cache struct {
	items              *shm.Table
	name, price, stamp shm.Column
	loads              *shm.Atomic
}

func open() (*cache, error) {
	items, err := worker.Table("items")
	if err != nil {
		return nil, err
	}
	c := &cache{items: items}
	for col, dst := range map[string]*shm.Column{"name": &c.name, "price": &c.price, "loaded": &c.stamp} {
		if *dst, err = items.Column(col); err != nil {
			return nil, err
		}
	}
	c.loads, err = worker.Atomic("loads")
	return c, err
}

func main() {
	c, err := open()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(ipc.ExitBootFailure)
	}
	if os.Getenv(ipc.EnvRole) == ipc.RoleProcess {
		worker.RunProcess(c.refresh)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /item", c.item)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"items": c.items.Count(), "loads": c.loads.Get(), "size": c.items.Size()})
	})
	worker.RunHTTP(mux)
}

// item answers from the table: one Get into a row, no allocation but the
// JSON.
func (c *cache) item(w http.ResponseWriter, r *http.Request) {
	row := c.items.NewRow()
	if !c.items.Get(r.URL.Query().Get("id"), row) {
		http.Error(w, `{"error":"no such item"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"name": row.String(c.name), "price": row.Float(c.price), "loaded": row.Int(c.stamp)})
}

// refresh loads the file at start and every HOTCACHE_EVERY seconds
// (default 5) until drover stops the process.
func (c *cache) refresh(ctx context.Context, _ *worker.Server) error {
	file := os.Getenv("HOTCACHE_FILE")
	if file == "" {
		file = "php/hotcache.json" // beside examples/hotcache.yaml: the PHP example's data
	}
	every, _ := strconv.Atoi(os.Getenv("HOTCACHE_EVERY"))
	t := time.NewTicker(time.Duration(max(every, 1)) * time.Second)
	defer t.Stop()
	for {
		if err := c.load(file); err != nil {
			log.Printf("hotcache: %v; the table keeps what it has", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *cache) load(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var data map[string]struct {
		Name  string  `json:"name"`
		Price float64 `json:"price"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	row := c.items.NewRow()
	now := time.Now().Unix()
	for id, it := range data {
		row.Reset()
		if err := row.SetString(c.name, it.Name); err != nil {
			log.Printf("hotcache: item %s: %v", id, err)
			continue
		}
		row.SetFloat(c.price, it.Price)
		row.SetInt(c.stamp, now)
		if err := c.items.Set(id, row); err != nil {
			log.Printf("hotcache: item %s: %v", id, err)
		}
	}
	var gone []string
	c.items.Range(row, func(id string, _ *shm.Row) bool {
		if _, ok := data[id]; !ok {
			gone = append(gone, id)
		}
		return true
	})
	for _, id := range gone {
		c.items.Del(id)
	}
	c.loads.Add(1)
	return nil
}
