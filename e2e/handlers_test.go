package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/worker"
	_ "github.com/drover-dev/drover/worker/plugin" // helpers run with launch: plugin and auto
)

// runHandler makes this test binary a drover worker (the os/exec
// helper-process pattern). The packets it understands (length protocol,
// 4-byte big-endian header) are commands; anything else is echoed.
//
//	whoami      answers "worker <id> pid <pid>"
//	sleep       answers "sleeping", then holds the event until killed
//	garbage     writes a corrupt frame on the socket pair
//	slow <ms>   echoes after that many milliseconds
//	bind <uid>  binds the connection to uid (dispatch_mode 5)
//	fifo <path> answers "released" once the test closed that FIFO (holdFIFO)
func runHandler(role string) {
	switch role {
	case "boot-failure":
		fmt.Fprintln(os.Stderr, "cannot connect to database at db:5432")
		os.Exit(ipc.ExitBootFailure)
	case "commands":
		worker.Run(worker.Events{
			OnReceive: func(s *worker.Server, conn uint64, data []byte) {
				if len(data) < 4 {
					return
				}
				switch body := string(data[4:]); {
				case body == "whoami":
					s.Send(conn, frame(fmt.Sprintf("worker %d pid %d", s.WorkerID(), os.Getpid())))
				case body == "sleep":
					s.Send(conn, frame("sleeping"))
					time.Sleep(time.Hour)
				case body == "garbage":
					fd3 := os.NewFile(3, "pair")
					fd3.Write([]byte("this is not a frame header at all"))
				case strings.HasPrefix(body, "slow "):
					// Answers after the given number of milliseconds.
					ms, _ := strconv.Atoi(body[5:])
					time.Sleep(time.Duration(ms) * time.Millisecond)
					s.Send(conn, data)
				case strings.HasPrefix(body, "bind "):
					uid, _ := strconv.ParseUint(body[5:], 10, 64)
					s.Bind(conn, uid)
					s.Send(conn, frame("bound"))
				case strings.HasPrefix(body, "fifo "):
					// Held until the test closes the FIFO's write end.
					s.Send(conn, frame(readFIFO(body[5:])))
				case strings.HasPrefix(body, "exit "):
					code, _ := strconv.Atoi(body[5:])
					os.Exit(code)
				default:
					s.Send(conn, data)
				}
			},
		}, worker.WithConcurrency(4))
	case "http":
		serveHTTPHandler()
	case "pool":
		servePoolHandler() // pool_test.go
	case "release":
		serveReleaseHandler() // deploy_test.go
	case "hygiene":
		serveHygieneHandler()
	case "tables":
		serveTablesHandler() // tables_test.go
	case "nested-hello", "deaf", "tasker":
		runHostileHandler(role) // hostile_wire_test.go
	default:
		fmt.Fprintln(os.Stderr, "unknown E2E_HANDLER", role)
		os.Exit(2)
	}
}

// frame prefixes body with its 4-byte big-endian length.
func frame(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// pongs holds the /ping requests waiting for their answer, by nonce.
var pongs sync.Map

// hoard is what /grow leaks.
var hoard [][]byte

// bigPiece is what /big repeats: 32 KiB of a 251-byte cycle, so a piece
// lost or repeated shows in the content.
var bigPiece = func() []byte {
	b := make([]byte, 32<<10)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

// serveHTTPHandler is the HTTP handler of the end-to-end tests:
//
//	/             Hello, World!
//	/echo         the request body back
//	/seq?i=N      N (pipelining order)
//	/stream?n=N   N server-sent events, flushed one by one
//	/exit         the process exits mid-request
//	/wait-cancel  holds the request until the client goes away
//	/hang         never answers, whatever happens
//	/cut          sends part of a streamed answer, then panics
//	/big?n=N      N bytes of bigPiece, repeated
//	/grow?mb=N    keeps N more MiB resident (a leak); answers "grown <pid>"
//	/slow?ms=N    answers "slept" after N milliseconds
//	/fifo?path=P  answers "released" once the test closed FIFO P (holdFIFO)
//	/ping?to=N    messages worker N, which messages back: "pong … from N to …"
//	/whoami       answers "worker <id> pid <pid>"
//	/bind?uid=N   binds the connection to uid N (dispatch_mode 5); answers "bound"
//	/code?n=N     answers status N, without a body
func serveHTTPHandler() {
	// A slow start-up, once the test asks for one (simulates an application
	// that loads for a while before it serves).
	if f := os.Getenv("E2E_FAIL_START_IF"); f != "" {
		slot := os.Getenv("E2E_FAIL_SLOT")
		if _, err := os.Stat(f); err == nil && (slot == "" || slot == os.Getenv("DROVER_WORKER_ID")) {
			if os.Getenv("E2E_FAIL_MODE") == "hang" {
				select {} // never says hello
			}
			fmt.Fprintln(os.Stderr, "cannot start: the test's failure switch is on")
			os.Exit(1)
		}
	}
	if f := os.Getenv("E2E_SLOW_START_IF"); f != "" {
		if _, err := os.Stat(f); err == nil {
			time.Sleep(500 * time.Millisecond)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Hello, World!")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/seq", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Query().Get("i"))
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for i := 0; i < n; i += len(bigPiece) {
			if _, err := w.Write(bigPiece[:min(len(bigPiece), n-i)]); err != nil {
				fmt.Fprintf(os.Stderr, "/big: write after %d bytes: %v\n", i, err)
				return
			}
		}
	})
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		to, _ := strconv.Atoi(r.URL.Query().Get("to"))
		nonce := strconv.FormatInt(time.Now().UnixNano(), 10)
		ch := make(chan string, 1)
		pongs.Store(nonce, ch)
		defer pongs.Delete(nonce)
		if err := worker.SendMessage(to, []byte("ping "+nonce)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		select {
		case msg := <-ch:
			io.WriteString(w, msg)
		case <-time.After(3 * time.Second):
			http.Error(w, "no pong", http.StatusGatewayTimeout)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		io.WriteString(w, "slept")
	})
	mux.HandleFunc("/code", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.WriteHeader(n)
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "worker %s pid %d", os.Getenv("DROVER_WORKER_ID"), os.Getpid())
	})
	mux.HandleFunc("/bind", func(w http.ResponseWriter, r *http.Request) {
		uid, _ := strconv.ParseUint(r.URL.Query().Get("uid"), 10, 64)
		if err := worker.Bind(r.Context(), uid); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "bound")
	})
	mux.HandleFunc("/fifo", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, readFIFO(r.URL.Query().Get("path")))
	})
	mux.HandleFunc("/grow", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		b := make([]byte, mb<<20)
		// One byte a page makes it resident. Touching every byte took
		// seconds under -race on a loaded machine, long enough for the
		// max_memory check to retire the worker mid-request and kill it
		// after max_wait_time (TestMaxMemoryRecycles then never saw
		// "grown").
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hoard = append(hoard, b)
		fmt.Fprintf(w, "grown %d", os.Getpid())
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		os.Exit(3)
	})
	mux.HandleFunc("/cut", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("handler bug after the first flush")
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {} // ignores its context: only replacing the worker ends it
	})
	mux.HandleFunc("/wait-cancel", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "waiting for cancel")
		<-r.Context().Done()
		fmt.Fprintln(os.Stderr, "request context cancelled")
	})
	opts := []worker.Option{worker.WithOnMessage(func(s *worker.Server, from int, data []byte) {
		f := strings.Fields(string(data))
		switch {
		case len(f) == 2 && f[0] == "ping":
			s.SendMessage(from, fmt.Appendf(nil, "pong %s from %d to %d", f[1], s.WorkerID(), from))
		case len(f) > 1 && f[0] == "pong":
			if ch, ok := pongs.Load(f[1]); ok {
				ch.(chan string) <- string(data)
			}
		}
	})}
	if n, err := strconv.Atoi(os.Getenv("E2E_CONCURRENCY")); err == nil {
		opts = append(opts, worker.WithConcurrency(n))
	}
	worker.RunHTTP(mux, opts...)
}
