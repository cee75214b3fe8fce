// Package worker is the Go SDK for drover worker processes: the handler side
// of drover's Swoole-style process model.
//
// The drover master owns the listening sockets and reads every client
// connection in its epoll loops; the manager starts worker_num copies of the
// handler program (worker.cmd), each with one end of a fresh Unix socket pair
// as file descriptor 3. Over that pair the master delivers the events of the
// connections it dispatches to the worker — connect, each packet received
// (framed as the listener's protocol cut it: length header or EOF marker
// included) and close — and the worker answers with bytes to send to any
// connection, connection closes, and one Done per event. docs/protocol.md
// specifies the frames; this package speaks them for you:
//
//	func main() {
//		worker.Run(worker.Events{
//			OnReceive: func(s *worker.Server, conn uint64, data []byte) {
//				_ = s.Send(conn, data) // echo
//			},
//		})
//	}
//
// HTTP listeners deliver requests instead of stream events; any net/http
// handler or router serves them unchanged:
//
//	func main() {
//		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
//			io.WriteString(w, "Hello, World!")
//		})
//		worker.RunHTTP(http.DefaultServeMux)
//	}
//
// ServeHTTP builds each *http.Request from the master's request frame
// (streaming a long body from the body frames), cancels its context when
// the client goes away, and sends the response as one frame when it fits in
// 64 KiB and the handler did not flush, or as a stream of frames otherwise
// (http.Flusher and http.ResponseController work).
//
// The goroutine that reads a request or event from fd 3 runs the handler
// itself; a new reader starts only when the handler waits for body frames or
// has run for one to two checks of a 50µs timer. No goroutine is started per
// request, at the price that frames queued behind a handler that parks wait
// for that timer (which the Go runtime rounds up to about 1ms when the
// process is otherwise idle).
//
// # Life of a worker
//
// Run (or Serve) checks that drover started the process (DROVER_ROLE set,
// fd 3 a stream socket; otherwise it says how to start the program and exits
// 1), calls OnStart, then says hello to the master — from then on the worker
// counts as ready and receives events. An OnStart error ends the process
// with code 78 (ipc.ExitBootFailure) so that the manager backs off instead of
// respawning a broken handler in a loop. On the master's stop frame (reload,
// max_request, shutdown) the worker takes no new events, lets the running
// callbacks finish, flushes what they sent and exits 0. When the master goes
// away (end of file on fd 3) the worker exits 1 at once: the whole process
// tree is being torn down and nobody is left to read its answers.
//
// # Concurrency and ordering
//
// The events of one connection are handled one at a time, in the order the
// client caused them: OnConnect, every OnReceive, OnClose. Events of
// different connections run concurrently, up to the concurrency the worker
// declares in its hello (WithConcurrency); the master never has more events
// outstanding at a worker and queues the rest. With concurrency 1 every
// callback runs on the goroutine that reads fd 3, and OnReceive's data
// points into the read buffer: no copy and no goroutine hand-off, which is
// the lowest latency for handlers that do not block. With more, the worker
// copies each payload into a pooled buffer; the goroutine that read an event
// for an idle connection handles it itself and hands the reading to a fresh
// goroutine, which keeps the hand-off off the request's path.
//
// # Handler errors
//
// A panic in a callback is recovered: the worker logs it with the connection
// id and the stack to stderr (or WithErrorLog), closes that connection unless
// the panic was in OnClose (like net/http, it cannot know what state the
// conversation was left in), answers the event with Done and keeps serving
// every other connection. A handler bug costs one connection, not the
// process. A panic in OnStart is a boot failure.
//
// # Output
//
// The channel is fd 3, not stdout: fmt.Println and the log package are
// harmless in handlers. Stdout and stderr belong to the manager, which keeps
// the last stderr lines of a worker that failed for `drover status`.
//
// # Launch modes
//
// With `launch: exec` the manager starts the program directly. With
// `launch: plugin` it goes through hashicorp/go-plugin (handshake, checksum,
// health checks, Go runtime stats, a graceful stop request); the socket pair
// is fd 3 all the same and the request path never touches gRPC. This
// package does not link go-plugin or gRPC: a handler that wants plugin
// launches imports the package worker/plugin once, for its side effect,
//
//	import _ "github.com/drover-dev/drover/worker/plugin"
//
// and Serve then runs the plugin handshake before its hello when the manager
// launched it as a plugin. `launch: auto` (the default) picks plugin for an
// executable built with that import and exec otherwise; `launch: plugin` of
// an executable built without it is refused when drover starts, and a
// handler started as a plugin without it fails its start with an error
// saying which import to add.
package worker
