// Command hello is a drover HTTP handler: a plain net/http handler served
// by worker.RunHTTP inside a drover worker. See examples/hello.yaml.
//
//	GET  /                 200 "Hello, World!" (text/plain)
//	GET  /64k              64 KiB of text (a large answer, for scripts/bench/http.sh)
//	POST /echo             the request body back; long bodies stream both ways
//	GET  /stream?n=5       n server-sent events, each flushed as it is written
//	                       (&interval=200ms spaces them out, to watch with curl -N)
package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/worker"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Hello, World!")
	})
	mux.HandleFunc("GET /64k", big)
	mux.HandleFunc("POST /echo", echo)
	mux.HandleFunc("GET /stream", stream)
	worker.RunHTTP(mux)
}

// bigBody is the answer of GET /64k: 64 KiB of text, lines of 64 bytes.
var bigBody = []byte(strings.Repeat(strings.Repeat("x", 63)+"\n", 1024))

// big answers 64 KiB, the large-answer case of scripts/bench/http.sh
// (scripts/bench/nethttp serves the same).
func big(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(bigBody)
}

// echo copies the body to the response as it arrives: a body longer than
// one frame (64 KiB) is read in pieces while the first pieces are already
// on their way back.
func echo(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	// An error here means the client went away or sent less than it
	// announced; the response then ends where it is.
	io.Copy(w, r.Body)
}

// stream sends n server-sent events and flushes after each, so that every
// event reaches the client before the next is written.
func stream(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if r.URL.Query().Get("n") == "" {
		n, err = 5, nil
	}
	if err != nil || n < 0 || n > 10000 {
		http.Error(w, "n: want a number from 0 to 10000", http.StatusBadRequest)
		return
	}
	var interval time.Duration
	if s := r.URL.Query().Get("interval"); s != "" {
		if interval, err = time.ParseDuration(s); err != nil || interval < 0 || interval > 10*time.Second {
			http.Error(w, "interval: want a duration up to 10s", http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	for i := range n {
		if i > 0 && interval > 0 {
			select {
			case <-time.After(interval):
			case <-r.Context().Done():
				return // the client went away
			}
		}
		if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
			return
		}
		flusher.Flush()
	}
}
