// Command nethttp is the reference for scripts/bench/http.sh: a
// single-process Go net/http server answering "Hello, World!".
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Hello, World!")
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
