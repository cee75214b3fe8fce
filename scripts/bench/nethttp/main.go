// Command nethttp is the reference for scripts/bench/http.sh: a
// single-process Go net/http server with examples/hello's routes for the
// benchmark: "Hello, World!" at /, 64 KiB at GET /64k, and POST /echo
// sending the request body back.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strings"
)

// bigBody is examples/hello's GET /64k answer: 64 KiB, lines of 64 bytes.
var bigBody = []byte(strings.Repeat(strings.Repeat("x", 63)+"\n", 1024))

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Hello, World!")
	})
	http.HandleFunc("GET /64k", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(bigBody)
	})
	// As examples/hello's echo: the body copied back as it arrives.
	http.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		io.Copy(w, r.Body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
