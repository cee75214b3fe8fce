package worker

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/drover-dev/drover/ipc"
)

// HTTP listeners (protocol: http). The master parses each request in its
// reactor and sends it as one TypeRequest frame, with the body inline or
// in TypeRequestBody frames after it; the worker answers with TypeResponse
// and, when the response is long or flushed, TypeResponseBody frames, the
// last with ipc.FlagEnd. A request is one event, in flight from its
// TypeRequest to the worker's FlagEnd; it gets no Done. See ipc/http.go.
//
// On the worker's side a request runs like an event of a stream
// connection: the goroutine that read the TypeRequest serves it and only
// then reads on, unless the handler runs long or waits for a body piece,
// which starts a new reader (dispatch.go); so the request's path has no
// goroutine hand-off. The reading goroutine never waits for a handler:
// request body frames are queued for the handler that reads them.

// RunHTTP is the usual main of an HTTP worker: it calls ServeHTTP and exits
// as Run does — 0 after a graceful stop, 1 when run by hand or when the
// master went away, printing the error on stderr.
func RunHTTP(h http.Handler, opts ...Option) {
	err := ServeHTTP(h, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(ipc.ExitCode(err))
}

// ServeHTTP runs the worker with h as the handler of the requests of the
// master's HTTP listeners: any net/http handler or router (http.ServeMux,
// chi, gorilla/mux, …) runs unchanged. It returns as Serve does: nil after
// the master's stop frame once every request in flight has been answered,
// the read error at once when the master went away. Initialise the
// handler before calling ServeHTTP; a handler that cannot start should
// exit with ipc.ExitBootFailure (78) so that the manager backs off.
//
// Requests run concurrently, up to the concurrency the worker declares
// (WithConcurrency; DefaultConcurrency by default), one at a time per
// client connection. The *http.Request is what net/http's server builds:
// Method, URL (from the request-target, origin-, absolute- or
// authority-form, or "*"), RequestURI, Proto, canonical Header (values in
// the order received; Host moved to Request.Host), ContentLength (-1 and
// TransferEncoding ["chunked"] for a chunked body), Close, RemoteAddr, and
// Body (http.NoBody when there is none). Its context is cancelled when the
// client's side ends (the master's TypeCancel) and when the handler returns;
// Bind(r.Context(), uid) binds the request's connection to a uid for
// dispatch_mode 5.
// Bodies longer than ipc.MaxInlineBody arrive in pieces while the handler
// runs; pieces the handler has not read yet are held up to
// WithRequestBodyBuffer bytes.
//
// The http.ResponseWriter buffers up to ipc.MaxInlineBody bytes: a
// response that fits, which is most, leaves in one frame when the handler
// returns. A longer response, or one the handler flushes (http.Flusher,
// http.ResponseController), streams: status, headers and the body so far
// first, then each further piece, then the end. As net/http does, the
// writer sniffs a missing Content-Type from the first bytes, refuses a body
// for 1xx, 204 and 304 (http.ErrBodyNotAllowed) and writes beyond a
// declared Content-Length (http.ErrContentLength), and sends no body for
// HEAD (but the Content-Length of the body the handler wrote, when it fits
// in one frame). Informational statuses (1xx other than 101) are dropped:
// the protocol has no frame for them, and the master answers
// "Expect: 100-continue" itself. Hijacking, deadlines and trailers are not
// supported (http.ErrNotSupported from http.ResponseController); full
// duplex is always on. Once the client went away, Write and Flush fail and
// send nothing.
//
// A panic in the handler is recovered and logged with its stack (except
// http.ErrAbortHandler); the client gets 500 if nothing was sent yet,
// otherwise the response ends where it was. Other requests are unaffected.
func ServeHTTP(h http.Handler, opts ...Option) error {
	return Serve(Events{}, append(opts[:len(opts):len(opts)], withHandler(h))...)
}

// WithRequestBodyBuffer bounds the request body bytes the worker holds for
// one request whose handler reads slower than the client sends (default 4
// MiB). The master forwards a body at most ipc.FlowWindow ahead of what the
// handler read (this SDK grants the credit), so the bound is a safety net
// for masters without flow control: past it the worker drops the queued
// pieces and the rest of the body, and the handler's next Read fails with
// ErrBodyBufferFull. The master's package_max_length bounds each body too.
func WithRequestBodyBuffer(n int) Option {
	return func(o *options) { o.http.bodyBuffer = max(n, ipc.MaxInlineBody) }
}

// ErrBodyBufferFull is the error a request body's Read returns once the
// handler fell more than WithRequestBodyBuffer bytes behind the client.
var ErrBodyBufferFull = errors.New("worker: request body dropped: the handler fell too far behind the client (WithRequestBodyBuffer)")

const defaultBodyBuffer = 4 << 20

var (
	errClientGone     = errors.New("worker: the client went away")
	errHandlerDone    = errors.New("worker: request body read after the handler returned")
	errWriteAfterEnd  = errors.New("worker: response written after the handler returned")
	errChannelEnded   = errors.New("worker: the channel to the master ended")
	internalErrorBody = []byte("Internal Server Error\n")
)

// httpOptions are the options of ServeHTTP.
type httpOptions struct {
	handler    http.Handler // nil for Serve: HTTP requests are refused
	bodyBuffer int
}

func withHandler(h http.Handler) Option {
	return func(o *options) { o.http.handler = h }
}

// httpState is the Server's table of requests in flight, guarded by s.mu.
type httpState struct {
	reqs     map[uint64]*exchange // by connection id
	draining bool                 // stop frame read: reading goes on for their body and cancel frames
	refused  atomic.Bool          // a request reached a worker without handler (logged once)
	// piece is the buffer allocPiece gave the Reader for the frame being
	// read; touched only by the goroutine that holds the reading role.
	piece *[]byte
}

// exchange is one request and its response. It is allocated per request
// and never reused, because the handler may keep r, r.Body and
// r.Context(); the buffers it works with are pooled and detached when the
// handler returns. It is the handler's http.ResponseWriter, and, as
// *requestBody, its request body.
type exchange struct {
	s    *Server
	conn uint64
	req  *http.Request
	bufs *httpBufs // nil once the handler returned
	gone atomic.Bool

	// The request's context is the exchange itself (reqctx.go): no
	// allocation unless a handler asks for Done or derives a context.
	cmu   sync.Mutex
	done  chan struct{} // made by the first Done
	cerr  error         // context.Canceled once cancelled
	after map[*afterFunc]struct{}

	// Request body; the reading goroutine pushes, the handler reads.
	bmu      sync.Mutex
	bcond    sync.Cond
	chunks   []*[]byte // pooled pieces not yet read (bufs.chunks' storage)
	cur      *[]byte   // the piece being read
	off      int       // read position in cur
	queued   int       // bytes in chunks
	received int64     // bytes pushed in total
	read     int64     // bytes returned by Read
	ended    bool      // the last piece arrived
	follows  bool      // pieces arrive in TypeRequestBody frames
	abody    []byte    // the unread rest of a body in the request arena (body_at)
	berr     error     // Read's error once the queue is empty; set on cancel, close, overflow
	// Flow control (ipc.FlowWindow), also under bmu: body bytes read and
	// not yet credited to the master; response body bytes the handler may
	// still send before it waits for the master's credit.
	uncredited int
	window     int64
	wcond      sync.Cond // signalled by a credit, or when the client is gone

	// Response, touched only by the handler's goroutine.
	head        bool
	wroteHeader bool  // status fixed, headers snapshotted in bufs.pairs
	sent        bool  // TypeResponse written
	status      int   //
	declared    int64 // Content-Length the handler set, or -1
	written     int64 // body bytes the handler wrote
	sniff       bool  // add a sniffed Content-Type to the first frame
	werr        error // the write to the master failed
	aborted     bool  // the response is incomplete: its last frame says so
	prepaid     bool  // finish spent the window for the last frame
}

// requestBody is the request's io.ReadCloser.
type requestBody exchange

// httpBufs are an exchange's pooled buffers.
type httpBufs struct {
	dec   ipc.RequestDecoder
	wire  ipc.Request  // the decoded TypeRequest; its body aliases the read buffer
	tmpl  http.Request // request under construction; WithContext copies it
	hdr   http.Header  // the response headers
	pairs []string     // snapshot of hdr: name, value, …
	keys  []string
	extra []string
	out   []byte // response body not yet sent
	// slot: out is in this slot of the answer arena (at slotOff), and
	// heap is out's own buffer meanwhile (outGrow).
	slot    []byte
	slotOff uint64
	heap    []byte
	enc     []byte // encoded TypeResponse payload
	chunks  []*[]byte
}

var bufsPool = sync.Pool{New: func() any { return &httpBufs{hdr: make(http.Header)} }}

// maxPooledEnc is the largest encode buffer kept: a full inline body plus
// ample headers.
const maxPooledEnc = ipc.MaxInlineBody + 16<<10

func (b *httpBufs) release() {
	b.wire = ipc.Request{Headers: clearSlice(b.wire.Headers)}
	clear(b.hdr)
	b.pairs, b.keys, b.extra = clearSlice(b.pairs), clearSlice(b.keys), clearSlice(b.extra)
	b.chunks = b.chunks[:0]
	b.out = b.out[:0]
	if cap(b.out) > ipc.MaxInlineBody {
		b.out = nil
	}
	if cap(b.enc) > maxPooledEnc {
		b.enc = nil
	}
	bufsPool.Put(b)
}

func clearSlice(s []string) []string { clear(s); return s[:0] }

// startRequest decodes a TypeRequest frame's payload (which aliases the
// read buffer) and registers the request. It returns nil when it answered
// the request itself (no handler, malformed request).
func (s *Server) startRequest(conn uint64, payload []byte) *exchange {
	if s.opt.http.handler == nil {
		s.refuseHTTP(conn)
		return nil
	}
	b := bufsPool.Get().(*httpBufs)
	x := &exchange{s: s, conn: conn, bufs: b, declared: -1, window: ipc.FlowWindow}
	if err := b.dec.Decode(payload, &b.wire); err != nil {
		s.opt.errorLog.Printf("worker %d: conn %d: undecodable HTTP request frame: %v", s.id, conn, err)
		x.abort(http.StatusInternalServerError)
		return nil
	}
	if b.wire.BodyAt != nil {
		if _, ok := s.opt.arenas.body(b.wire.BodyAt); !ok {
			// The master's fault, not the client's.
			s.opt.errorLog.Printf("worker %d: conn %d: request body at %v, outside the request arena", s.id, conn, b.wire.BodyAt)
			x.abort(http.StatusInternalServerError)
			return nil
		}
	}
	if !x.build() {
		x.abort(http.StatusBadRequest)
		return nil
	}
	s.mu.Lock()
	if s.http.reqs[conn] != nil {
		s.opt.errorLog.Printf("worker %d: conn %d: a request arrived while the previous one is in flight", s.id, conn)
	}
	s.http.reqs[conn] = x
	s.active.Add(1)
	s.mu.Unlock()
	return x
}

// abort answers a request that never reached the handler.
func (x *exchange) abort(status int) {
	x.wroteHeader, x.status = true, status
	x.sniff = false
	x.bufs.pairs = append(x.bufs.pairs[:0], "Content-Type", "text/plain; charset=utf-8", "X-Content-Type-Options", "nosniff")
	x.bufs.out = append(x.bufs.out[:0], http.StatusText(status)...)
	x.bufs.out = append(x.bufs.out, '\n')
	x.emit(x.bufs.out, true)
	x.dropSlot()
	x.bufs.release()
	x.bufs = nil
}

// refuseHTTP answers a request that reached a worker started with Serve
// rather than ServeHTTP: a configuration error, said once.
func (s *Server) refuseHTTP(conn uint64) {
	if !s.http.refused.Swap(true) {
		s.opt.errorLog.Printf("worker %d: an HTTP request arrived but this worker has no HTTP handler (start it with worker.ServeHTTP); answering 501", s.id)
	}
	x := &exchange{s: s, conn: conn, bufs: bufsPool.Get().(*httpBufs), declared: -1, window: ipc.FlowWindow}
	x.abort(http.StatusNotImplemented)
}

// build turns the decoded frame into x.req, as net/http's server reads a
// request; false means a target net/http would answer with 400.
func (x *exchange) build() bool {
	w := &x.bufs.wire
	r := &x.bufs.tmpl
	*r = http.Request{Method: w.Method, RequestURI: w.Target, RemoteAddr: w.Remote}
	rawURL := w.Target
	justAuthority := r.Method == http.MethodConnect && !strings.HasPrefix(rawURL, "/")
	if justAuthority {
		rawURL = "http://" + rawURL
	}
	var err error
	if r.URL, err = url.ParseRequestURI(rawURL); err != nil {
		return false
	}
	if justAuthority {
		r.URL.Scheme = ""
	}
	switch w.Proto {
	case "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		var ok bool
		if r.ProtoMajor, r.ProtoMinor, ok = http.ParseHTTPVersion(w.Proto); !ok {
			return false
		}
		r.Proto = w.Proto
	}

	// As net/textproto: one backing array for the first value of each name.
	n := len(w.Headers) / 2
	h := make(http.Header, n)
	strs := make([]string, n)
	for i := 0; i+1 < len(w.Headers); i += 2 {
		k, v := http.CanonicalHeaderKey(w.Headers[i]), w.Headers[i+1]
		if vv := h[k]; vv != nil {
			h[k] = append(vv, v)
		} else {
			strs[0] = v
			h[k], strs = strs[:1:1], strs[1:]
		}
	}
	r.Header = h
	r.Host = r.URL.Host
	if r.Host == "" {
		r.Host = h.Get("Host")
	}
	delete(h, "Host")
	if pragma := h["Pragma"]; len(pragma) > 0 && pragma[0] == "no-cache" && len(h["Cache-Control"]) == 0 {
		h["Cache-Control"] = []string{"no-cache"}
	}
	r.Close = shouldClose(r.ProtoMajor, r.ProtoMinor, h)

	r.ContentLength = w.ContentLength
	if w.ContentLength < 0 {
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length")
	}
	switch {
	case w.BodyAt != nil:
		body, _ := x.s.opt.arenas.body(w.BodyAt) // checked by startRequest
		x.ended, x.abody, x.received = true, body, int64(len(body))
		r.Body = (*requestBody)(x)
	case w.BodyFollows:
		x.follows = true
		x.bcond.L = &x.bmu
		r.Body = (*requestBody)(x)
	case len(w.Body) > 0 || w.ContentLength != 0:
		x.ended = true
		if len(w.Body) > 0 {
			x.cur = copyChunk(w.Body)
			x.received = int64(len(w.Body))
		}
		r.Body = (*requestBody)(x)
	default:
		r.Body = http.NoBody
	}
	x.head = r.Method == http.MethodHead

	x.req = r.WithContext(x)
	*r = http.Request{}
	return true
}

// shouldClose reports whether the client asked to close the connection
// after this request, as net/http sets Request.Close.
func shouldClose(major, minor int, h http.Header) bool {
	conn := h["Connection"]
	if major < 1 {
		return true
	}
	if major == 1 && minor == 0 {
		return hasToken(conn, "close") || !hasToken(conn, "keep-alive")
	}
	return hasToken(conn, "close")
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// copyChunk copies a piece of body into a pooled buffer.
func copyChunk(p []byte) *[]byte {
	bp := bufPool.Get().(*[]byte)
	*bp = append((*bp)[:0], p...)
	return bp
}

func putChunk(bp *[]byte) {
	if bp != nil && cap(*bp) <= maxPooled {
		bufPool.Put(bp)
	}
}

// serve runs the handler on the calling goroutine and ends the response.
func (x *exchange) serve() {
	defer x.finish()
	x.s.opt.http.handler.ServeHTTP(x, x.req)
}

// finish ends the exchange: it recovers a panic, writes the last frame
// and releases the request's slot.
func (x *exchange) finish() {
	if p := recover(); p != nil {
		x.panicked(p)
	}
	if !x.wroteHeader {
		x.WriteHeader(http.StatusOK)
	}
	if len(x.bufs.out) > 0 && !x.head && !x.gone.Load() {
		// The credit for the last piece arrives while the exchange can
		// still be found by its connection.
		x.spend(len(x.bufs.out))
		x.prepaid = true
	}
	s := x.s
	s.mu.Lock()
	if s.http.reqs[x.conn] == x {
		// Before the last frame: the master may send the connection's next
		// request as soon as it has it.
		delete(s.http.reqs, x.conn)
	}
	last := s.http.draining && len(s.http.reqs) == 0
	s.mu.Unlock()
	x.failBody(errHandlerDone)
	x.cancel() // before the last frame: once the response ended, so has the context
	if x.declared >= 0 && x.written < x.declared && (x.sent || len(x.bufs.out) > 0) && bodyAllowed(x.status) && !x.head {
		x.aborted = true // shorter than its Content-Length: net/http closes too
	}
	x.emit(x.bufs.out, true)
	x.dropSlot()
	x.bufs.release()
	x.bufs = nil
	if last {
		// The stop frame's drain is over: wake the reading goroutine.
		_ = s.ch.shutdownRead()
	}
	s.active.Done()
}

func (x *exchange) panicked(p any) {
	if p != http.ErrAbortHandler {
		x.s.opt.errorLog.Printf("worker %d: panic serving %s %s (conn %d): %v\n%s", x.s.id, x.req.Method, x.req.RequestURI, x.conn, p, stack())
	}
	b := x.bufs
	b.out = b.out[:0]
	if x.sent {
		x.aborted = true // part of it went out: the client must see the cut
		return
	}
	x.wroteHeader, x.status, x.sniff, x.declared = true, http.StatusInternalServerError, false, -1
	b.pairs = append(b.pairs[:0], "Content-Type", "text/plain; charset=utf-8", "X-Content-Type-Options", "nosniff")
	b.out = append(b.out, internalErrorBody...)
}

// requestFrame routes a TypeRequestBody, TypeCancel or TypeWindow frame to the
// connection's request; frames for a connection without one are late
// (the handler has returned) and ignored. It never blocks on a handler.
// own, when not nil, is the pooled buffer the payload was read into
// (allocPiece), which the request keeps instead of a copy.
func (s *Server) requestFrame(h ipc.Header, payload []byte, own *[]byte) {
	s.mu.Lock()
	x := s.http.reqs[h.ID]
	s.mu.Unlock()
	if x == nil {
		putChunk(own)
		return
	}
	if h.Type == ipc.TypeWindow {
		if n, err := ipc.ParseWindow(payload); err == nil {
			x.credit(int64(n))
		}
		return
	}
	if h.Type == ipc.TypeCancel {
		// Like net/http when the client's side of the connection ends: the
		// context is cancelled and an unfinished body fails, but what the
		// handler still writes goes out — a client that only half-closed
		// reads it. FlagEnd says the connection is closed: what the
		// handler writes from now on fails, and nothing waits for credit.
		if h.Flags&ipc.FlagEnd != 0 {
			x.clientGone(errClientGone)
			return
		}
		x.cancel()
		x.failBody(errClientGone)
		return
	}
	x.push(payload, own, h.Flags&ipc.FlagEnd != 0)
}

// allocPiece is the channel Reader's SetAlloc function: the payload of a
// large TypeRequestBody frame is read into a pooled piece buffer, which
// the request keeps (push), instead of into the Reader's buffer and then
// copied into one. Called by the reading goroutine, which takes the
// buffer back with ownedPiece after ReadFrame.
func (s *Server) allocPiece(h ipc.Header) []byte {
	if h.Type != ipc.TypeRequestBody {
		return nil
	}
	bp := bufPool.Get().(*[]byte)
	if cap(*bp) < int(h.Length) {
		*bp = make([]byte, 0, h.Length)
	}
	s.http.piece = bp
	return *bp
}

// ownedPiece returns the buffer the last frame's payload was read into,
// when it was (allocPiece), else nil. Called by the reading goroutine
// after ReadFrame.
func (s *Server) ownedPiece() *[]byte {
	bp := s.http.piece
	s.http.piece = nil
	if bp == nil || !s.ch.r.Owned() {
		putChunk(bp) // a read that failed after allocPiece
		return nil
	}
	return bp
}

// drainHTTP is called on the stop frame: it reports whether requests are in
// flight, in which case the reading goroutine must go on reading their body
// and cancel frames; the last request to finish then shuts the reading
// down.
func (s *Server) drainHTTP() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.http.draining = len(s.http.reqs) > 0
	return s.http.draining
}

// httpReadEnded fails the requests in flight when reading ended otherwise
// than by a drained stop frame: their bodies will not arrive, and nobody
// will read their responses.
func (s *Server) httpReadEnded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.http.reqs {
		x.clientGone(errChannelEnded)
	}
}

// clientGone cancels the request's context and fails its body.
func (x *exchange) clientGone(err error) {
	x.gone.Store(true)
	x.cancel()
	x.failBody(err)
}

// push queues a piece of the body: own, the pooled buffer p was read into,
// or else a copy of p. Called by the reading goroutine.
func (x *exchange) push(p []byte, own *[]byte, end bool) {
	x.bmu.Lock()
	defer x.bmu.Unlock()
	if !x.follows || x.ended || x.berr != nil {
		putChunk(own)
		return
	}
	x.ended = end
	if len(p) == 0 {
		putChunk(own)
	} else {
		if x.queued+len(p) > x.s.bodyBuffer() {
			putChunk(own)
			x.dropChunks()
			x.berr = ErrBodyBufferFull
		} else {
			if own == nil {
				own = copyChunk(p)
			} else {
				*own = p // p is (*own)[:len(p)]
			}
			x.chunks = append(x.chunks, own)
			x.queued += len(p)
			x.received += int64(len(p))
		}
	}
	x.bcond.Signal()
}

func (s *Server) bodyBuffer() int {
	if s.opt.http.bodyBuffer == 0 {
		return defaultBodyBuffer
	}
	return s.opt.http.bodyBuffer
}

// failBody makes Read fail with err once what was read is consumed, and
// frees the queue. The first error wins.
func (x *exchange) failBody(err error) {
	x.bmu.Lock()
	defer x.bmu.Unlock()
	if x.berr == nil {
		x.berr = err
	}
	x.dropChunks()
	x.abody = nil // the master may reuse its range once the response ended
	if x.bcond.L != nil {
		x.bcond.Signal()
	}
	if x.wcond.L != nil {
		x.wcond.Broadcast() // a writer waiting for credit sees the client gone
	}
}

// credit takes the master's credit for n more response body bytes.
// Called by the reading goroutine.
func (x *exchange) credit(n int64) {
	x.bmu.Lock()
	x.window += n
	if x.wcond.L != nil {
		x.wcond.Broadcast()
	}
	x.bmu.Unlock()
}

// spend waits until the response may send n more body bytes (the client
// has taken enough of what was sent), and counts them. It reports false
// when the client went away meanwhile.
func (x *exchange) spend(n int) bool {
	x.bmu.Lock()
	defer x.bmu.Unlock()
	for x.window <= 0 && !x.gone.Load() && x.bufs != nil {
		if x.wcond.L == nil {
			x.wcond.L = &x.bmu
		}
		if x.s.opt.onWindowWait != nil {
			x.s.opt.onWindowWait()
		}
		// The credit comes in a frame: read it if nobody reads.
		if x.s.takeRole() {
			x.bmu.Unlock()
			x.s.readThrough(x)
			x.bmu.Lock()
			continue
		}
		x.s.wakeReader()
		x.wcond.Wait()
	}
	x.window -= int64(n)
	return !x.gone.Load()
}

// dropChunks frees the queued pieces; called with bmu held.
func (x *exchange) dropChunks() {
	for i, c := range x.chunks {
		putChunk(c)
		x.chunks[i] = nil
	}
	x.chunks = x.chunks[:0]
	x.queued = 0
	putChunk(x.cur)
	x.cur, x.off = nil, 0
}

// Read reads the request body. Pieces not yet received are waited for.
// Every half window read is credited to the master, which forwards the
// body only that far ahead of the handler.
func (b *requestBody) Read(p []byte) (int, error) {
	x := (*exchange)(b)
	n, grant, err := x.readBody(p)
	if grant > 0 {
		var w [4]byte
		// A failure means the channel is gone; the reader sees that too.
		_ = x.s.ch.w.WriteFrame(ipc.TypeWindow, 0, x.conn, ipc.AppendWindow(w[:0], uint32(grant)))
	}
	return n, err
}

// WriteTo writes the request body to w as its pieces arrive, each from
// the buffer it arrived in (io.Copy uses it): a handler copying the body
// to its response, or a file, does without a copy into its own buffer.
// Pieces are credited to the master as Read credits them.
func (b *requestBody) WriteTo(w io.Writer) (int64, error) {
	x := (*exchange)(b)
	var total int64
	for {
		if piece, err := x.arenaPiece(); err != nil || piece != nil {
			if err != nil {
				return total, err
			}
			n, werr := w.Write(piece)
			total += int64(n)
			if werr != nil {
				return total, werr
			}
			continue
		}
		bp, off, grant, err := x.nextPiece()
		if grant > 0 {
			var win [4]byte
			_ = x.s.ch.w.WriteFrame(ipc.TypeWindow, 0, x.conn, ipc.AppendWindow(win[:0], uint32(grant)))
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, werr := w.Write((*bp)[off:])
		putChunk(bp)
		total += int64(n)
		if werr != nil {
			return total, werr
		}
	}
}

// arenaPiece takes the next piece of a body in the request arena
// (body_at), a frame's worth, for WriteTo; nil when there is none.
func (x *exchange) arenaPiece() ([]byte, error) {
	x.bmu.Lock()
	defer x.bmu.Unlock()
	if len(x.abody) == 0 {
		return nil, nil
	}
	if x.berr != nil {
		return nil, x.berr
	}
	n := min(len(x.abody), ipc.MaxInlineBody)
	p := x.abody[:n]
	x.abody = x.abody[n:]
	x.read += int64(n)
	return p, nil
}

// nextPiece is readBody taking the rest of the next piece whole: the
// caller owns *bp from off on, and puts it back in the pool.
func (x *exchange) nextPiece() (bp *[]byte, off, grant int, err error) {
	x.bmu.Lock()
	defer x.bmu.Unlock()
	for {
		if x.berr != nil {
			return nil, 0, 0, x.berr
		}
		if x.cur == nil && len(x.chunks) > 0 {
			x.cur = x.chunks[0]
			x.chunks = append(x.chunks[:0], x.chunks[1:]...)
			x.queued -= len(*x.cur)
		}
		if x.cur != nil {
			bp, off = x.cur, x.off
			x.cur, x.off = nil, 0
			n := len(*bp) - off
			x.read += int64(n)
			if x.follows {
				if x.uncredited += n; x.uncredited >= ipc.FlowWindow/2 {
					grant, x.uncredited = x.uncredited, 0
				}
			}
			return bp, off, grant, nil
		}
		if x.ended {
			if cl := x.req.ContentLength; cl > 0 && x.read < cl {
				return nil, 0, 0, io.ErrUnexpectedEOF
			}
			return nil, 0, 0, io.EOF
		}
		if x.waitPiece() {
			x.bcond.Wait()
		}
	}
}

// waitPiece is called with bmu held when the body's next piece has not
// arrived: when nobody reads, it reads frames itself until a frame of this
// request arrived (readThrough; bmu released meanwhile) and returns false;
// otherwise it makes sure someone reads and returns true: the caller
// waits for bcond.
func (x *exchange) waitPiece() bool {
	if x.s.takeRole() {
		x.bmu.Unlock()
		x.s.readThrough(x)
		x.bmu.Lock()
		return false
	}
	x.s.wakeReader()
	return true
}

// readBody is Read under bmu; grant is the credit to send after it.
func (x *exchange) readBody(p []byte) (n, grant int, err error) {
	x.bmu.Lock()
	defer x.bmu.Unlock()
	for {
		if x.berr != nil {
			return 0, 0, x.berr
		}
		if len(x.abody) > 0 {
			n := copy(p, x.abody)
			x.abody = x.abody[n:]
			x.read += int64(n)
			return n, 0, nil
		}
		if x.cur != nil {
			n := copy(p, (*x.cur)[x.off:])
			x.off += n
			if x.off == len(*x.cur) {
				putChunk(x.cur)
				x.cur, x.off = nil, 0
			}
			x.read += int64(n)
			if x.follows {
				if x.uncredited += n; x.uncredited >= ipc.FlowWindow/2 {
					grant, x.uncredited = x.uncredited, 0
				}
			}
			return n, grant, nil
		}
		if len(x.chunks) > 0 {
			x.cur = x.chunks[0]
			x.chunks = append(x.chunks[:0], x.chunks[1:]...)
			x.queued -= len(*x.cur)
			continue
		}
		if x.ended {
			if cl := x.req.ContentLength; cl > 0 && x.read < cl {
				return 0, 0, io.ErrUnexpectedEOF
			}
			return 0, 0, io.EOF
		}
		if len(p) == 0 {
			return 0, 0, nil
		}
		// The next piece needs a reader.
		if x.waitPiece() {
			x.bcond.Wait()
		}
	}
}

// Close discards the rest of the body; later Reads fail.
func (b *requestBody) Close() error {
	(*exchange)(b).failBody(http.ErrBodyReadAfterClose)
	return nil
}

// Header returns the response headers; changes after WriteHeader (or the
// first Write) have no effect.
func (x *exchange) Header() http.Header {
	if x.bufs == nil {
		return http.Header{}
	}
	return x.bufs.hdr
}

// WriteHeader sets the status and snapshots the headers. It does not send
// anything: the response leaves on the handler's return, when the buffer
// is full, or on Flush.
func (x *exchange) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if x.bufs == nil {
		return
	}
	if x.wroteHeader {
		x.s.opt.errorLog.Printf("worker %d: http: superfluous response.WriteHeader call (%s %s)", x.s.id, x.req.Method, x.req.RequestURI)
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		return // informational: no frame carries it
	}
	x.wroteHeader, x.status = true, code
	b := x.bufs
	h := b.hdr
	if cl := h.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			x.declared = v
		} else {
			x.s.opt.errorLog.Printf("worker %d: http: invalid Content-Length of %q (%s %s)", x.s.id, cl, x.req.Method, x.req.RequestURI)
			delete(h, "Content-Length")
		}
	}
	_, haveType := h["Content-Type"]
	x.sniff = bodyAllowed(code) && !haveType && h.Get("Content-Encoding") == "" && h.Get("Transfer-Encoding") == ""
	b.keys = b.keys[:0]
	for k := range h {
		if suppressed(code, k) || strings.HasPrefix(k, http.TrailerPrefix) || !validHeaderName(k) {
			continue
		}
		b.keys = append(b.keys, k)
	}
	slices.Sort(b.keys)
	b.pairs = b.pairs[:0]
	for _, k := range b.keys {
		for _, v := range h[k] {
			b.pairs = append(b.pairs, k, headerValue(v))
		}
	}
}

// bodyAllowed reports whether a response with this status may have a body.
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// suppressed reports the headers net/http drops for bodiless statuses.
func suppressed(code int, k string) bool {
	switch {
	case code == http.StatusNotModified:
		return k == "Content-Type" || k == "Content-Length" || k == "Transfer-Encoding"
	case code < 200 || code == http.StatusNoContent:
		return k == "Content-Length" || k == "Transfer-Encoding"
	}
	return false
}

// validHeaderName reports whether k is an HTTP token; net/http skips
// other names rather than write a broken header.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// headerValue replaces CR and LF by spaces, as net/http does, so a value
// cannot smuggle another header line.
func headerValue(v string) string {
	if strings.IndexAny(v, "\r\n") < 0 {
		return v
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
}

// Write buffers p; a full buffer goes to the master.
func (x *exchange) Write(p []byte) (int, error) {
	if x.bufs == nil {
		return 0, errWriteAfterEnd
	}
	if !x.wroteHeader {
		x.WriteHeader(http.StatusOK)
	}
	switch {
	case !bodyAllowed(x.status):
		return 0, http.ErrBodyNotAllowed
	case x.gone.Load():
		return 0, errClientGone
	case x.werr != nil:
		return 0, x.werr
	case x.declared >= 0 && x.written+int64(len(p)) > x.declared:
		return 0, http.ErrContentLength
	}
	x.written += int64(len(p))
	b := x.bufs
	// Once the response streams, a whole frame's worth with nothing
	// buffered goes out from p, without being buffered first.
	if len(b.out)+len(p) <= ipc.MaxInlineBody && !(x.sent && len(b.out) == 0 && len(p) == ipc.MaxInlineBody) {
		x.outGrow(len(p))
		b.out = append(b.out, p...)
		return len(p), nil
	}
	n := len(p)
	if len(b.out) > 0 {
		room := ipc.MaxInlineBody - len(b.out)
		x.outGrow(room)
		b.out = append(b.out, p[:room]...)
		p = p[room:]
		x.emit(b.out, false)
	}
	// Whole frames go from p (a piece of the request body written by
	// requestBody.WriteTo is one).
	for len(p) >= ipc.MaxInlineBody && x.werr == nil {
		x.emit(p[:ipc.MaxInlineBody], false)
		p = p[ipc.MaxInlineBody:]
	}
	x.outGrow(len(p))
	b.out = append(b.out, p...)
	if x.werr != nil {
		return 0, x.werr
	}
	return n, nil
}

// WriteString is Write without a conversion.
func (x *exchange) WriteString(s string) (int, error) {
	if x.bufs != nil && !x.wroteHeader {
		x.WriteHeader(http.StatusOK)
	}
	if x.bufs != nil && bodyAllowed(x.status) && len(x.bufs.out)+len(s) <= ipc.MaxInlineBody &&
		!x.gone.Load() && x.werr == nil && (x.declared < 0 || x.written+int64(len(s)) <= x.declared) {
		x.written += int64(len(s))
		x.outGrow(len(s))
		x.bufs.out = append(x.bufs.out, s...)
		return len(s), nil
	}
	return x.Write([]byte(s))
}

// Flush sends the status, headers and buffered body now (http.Flusher).
func (x *exchange) Flush() { _ = x.FlushError() }

// FlushError is Flush with the error, for http.ResponseController.
func (x *exchange) FlushError() error {
	if x.bufs == nil {
		return errWriteAfterEnd
	}
	if !x.wroteHeader {
		x.WriteHeader(http.StatusOK)
	}
	if x.gone.Load() {
		return errClientGone
	}
	if !x.sent || len(x.bufs.out) > 0 {
		x.emit(x.bufs.out, false)
	}
	if err := x.s.ch.w.Flush(); err != nil && x.werr == nil { // out now, even in a held batch
		x.werr = fmt.Errorf("worker: response to conn %d: %w", x.conn, err)
	}
	return x.werr
}

// EnableFullDuplex is for http.ResponseController: a handler may always
// read the request body while it writes the response.
func (x *exchange) EnableFullDuplex() error { return nil }

// toArena puts a body of answerMin bytes or more in the answer arena,
// when the worker has one with a slot free, and returns where.
func (x *exchange) toArena(data []byte) (ipc.Ref, bool) {
	a := x.s.opt.arenas
	if a == nil || len(data) < answerMin || len(data) > ipc.MaxInlineBody {
		return ipc.Ref{}, false
	}
	return a.put(data)
}

// releaseFrame takes back the answer-arena slots a Release frame names.
func (s *Server) releaseFrame(payload []byte) {
	if a := s.opt.arenas; a != nil {
		a.release(payload)
	}
}

// emit writes body as the response's next frame — TypeResponse with the
// status and headers first, TypeResponseBody after — and empties the
// buffer; end marks the last frame.
func (x *exchange) emit(body []byte, end bool) {
	b := x.bufs
	var flags uint8
	if end {
		flags = ipc.FlagEnd
		if x.aborted {
			flags |= ipc.FlagAbort
		}
	}
	data := body
	if x.head || x.gone.Load() || len(data) > 0 && !x.prepaid && !x.spend(len(data)) {
		data = nil // nobody will read it
	}
	// A body in the answer arena goes by reference: from its slot
	// (outGrow), which is then the master's, or copied into one.
	inSlot := b.slot != nil && len(body) > 0 && &body[0] == &b.slot[:1][0]
	var ref ipc.Ref
	var byRef bool
	switch {
	case inSlot && len(data) > 0:
		ref, byRef = ipc.Ref{Off: b.slotOff, Len: uint64(len(data))}, true
		b.slot = nil
	case !inSlot:
		ref, byRef = x.toArena(data)
	}
	var err error
	if !x.sent {
		x.sent = true
		b.extra = b.extra[:0]
		if x.sniff && len(body) > 0 {
			b.extra = append(b.extra, "Content-Type", http.DetectContentType(body))
		}
		if x.head && end && len(body) > 0 && x.declared < 0 && bodyAllowed(x.status) {
			b.extra = append(b.extra, "Content-Length", strconv.Itoa(len(body)))
		}
		if byRef {
			b.enc = ipc.AppendResponseRef(b.enc[:0], x.status, b.pairs, b.extra, ref)
			err = x.s.ch.w.WriteFrameParts(ipc.TypeResponse, flags|ipc.FlagRef, x.conn, b.enc, nil)
		} else {
			b.enc = ipc.AppendResponseHead(b.enc[:0], x.status, b.pairs, b.extra, len(data))
			err = x.s.ch.w.WriteFrameParts(ipc.TypeResponse, flags, x.conn, b.enc, data)
		}
	} else if byRef {
		var p [ipc.RefSize]byte
		err = x.s.ch.w.WriteFrame(ipc.TypeResponseBody, flags|ipc.FlagRef, x.conn, ipc.AppendRef(p[:0], ref))
	} else if len(data) > 0 || end {
		err = x.s.ch.w.WriteFrameParts(ipc.TypeResponseBody, flags, x.conn, nil, data)
	}
	if err != nil && x.werr == nil {
		x.werr = fmt.Errorf("worker: response to conn %d: %w", x.conn, err)
	}
	if inSlot && b.slot == nil {
		b.out, b.heap = b.heap[:0], nil // the slot is the master's now
	} else {
		b.out = b.out[:0]
	}
}

// outGrow prepares b.out for n more bytes: once the body buffered would
// reach answerMin, it moves into a slot of the answer arena (when there
// is one free), where it is written from then on and sent from by
// reference, without another copy.
func (x *exchange) outGrow(n int) {
	b, a := x.bufs, x.s.opt.arenas
	if a == nil || b.slot != nil || x.head || len(b.out)+n < answerMin || len(b.out)+n > ipc.MaxInlineBody {
		return
	}
	slot, off, ok := a.take()
	if !ok {
		return
	}
	b.heap, b.slot, b.slotOff = b.out, slot, off
	b.out = append(slot, b.out...)
}

// dropSlot gives back a slot taken and not sent (a HEAD answer's, a body
// nobody reads).
func (x *exchange) dropSlot() {
	b := x.bufs
	if b.slot == nil {
		return
	}
	x.s.opt.arenas.giveBack(b.slotOff)
	b.out, b.heap, b.slot = b.heap[:0], nil, nil
}
