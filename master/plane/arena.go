package plane

import (
	"fmt"
	"math/bits"
	"os"
	"sync"
	"unsafe"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/reactor"
)

// Body arenas on the master's side (ipc/arena.go, docs/protocol.md "Body
// arenas"). A worker whose hello says `arenas` gets large request bodies
// by reference into the request arena (body_at) instead of in
// RequestBody frames, and may answer with bodies in its own answer arena
// (FlagRef) instead of in the frames. What stays in the frames, and in
// the master's hands, is everything that decides what reaches a client:
// the length of each body, the Content-Length, HEAD and 204/304 rules
// (reactor.HTTPConn applies them to a referenced body as to an inline
// one), flow control and the send timeout. A worker can spoil only its
// own answers: a range outside its arena is a protocol violation (the
// worker is replaced, its clients get 502), and the bytes of a range are
// copied, never parsed.

// arenaPage is the request arena's unit of allocation.
const arenaPage = 64 << 10

// arenaMinBody is the smallest request body put in the request arena:
// below it, frames cost less than a range to account for.
const arenaMinBody = 16 << 10

// relFlush is how many bytes of a worker's answer arena the master lets
// it wait for before it sends a Release frame of its own; under that, the
// releases go with the next frame the worker gets anyway (a request, a
// credit), or with the next second's tick.
const relFlush = ipc.AnswerArenaSize / 16

// reqArena is the master's request arena: a memfd it maps read-write
// and seals so that the workers, which get it from the manager, can only
// read it. Bodies are allocated in runs of pages, first fit, so that the
// pages in use stay few and low when the load is light.
type reqArena struct {
	file *os.File // passed to the manager (CtlInit); read-only after newReqArena
	mem  []byte   // the master's mapping; read-only after newReqArena (the slice)

	mu   sync.Mutex
	used []uint64 // a bit per page in use; guarded by mu
}

// newReqArena creates a request arena of size bytes (rounded down to
// pages).
func newReqArena(size int) (*reqArena, error) {
	pages := size / arenaPage
	if pages == 0 {
		return nil, fmt.Errorf("request arena of %d bytes: less than a page", size)
	}
	f, mem, err := ipc.NewArena("drover-requests", pages*arenaPage, true)
	if err != nil {
		return nil, err
	}
	return &reqArena{file: f, mem: mem, used: make([]uint64, (pages+63)/64)}, nil
}

// alloc returns n bytes of the arena (len and cap n), or nil when no run
// of pages that long is free.
func (a *reqArena) alloc(n int) []byte {
	k := (n + arenaPage - 1) / arenaPage
	total := len(a.mem) / arenaPage
	a.mu.Lock()
	defer a.mu.Unlock()
	run := 0
	for i := 0; i < total; i++ {
		w := a.used[i/64]
		if w == ^uint64(0) && i%64 == 0 {
			i += 63 // a full word
			run = 0
			continue
		}
		if w&(1<<(i%64)) != 0 {
			run = 0
			continue
		}
		if run++; run == k {
			start := i - k + 1
			for j := start; j <= i; j++ {
				a.used[j/64] |= 1 << (j % 64)
			}
			off := start * arenaPage
			return a.mem[off : off+n : off+n]
		}
	}
	return nil
}

// offsetOf returns where buf, a range alloc returned, starts in the arena.
func (a *reqArena) offsetOf(buf []byte) (int, bool) {
	if cap(buf) == 0 {
		return 0, false
	}
	off := uintptr(unsafe.Pointer(unsafe.SliceData(buf[:1]))) - uintptr(unsafe.Pointer(unsafe.SliceData(a.mem)))
	if off >= uintptr(len(a.mem)) {
		return 0, false
	}
	return int(off), true
}

// free gives back a range alloc returned.
func (a *reqArena) free(buf []byte) {
	off, ok := a.offsetOf(buf)
	if !ok {
		return
	}
	k := (cap(buf) + arenaPage - 1) / arenaPage
	a.mu.Lock()
	defer a.mu.Unlock()
	for j := off / arenaPage; j < off/arenaPage+k; j++ {
		a.used[j/64] &^= 1 << (j % 64)
	}
}

// inUse is how many pages are allocated (tests).
func (a *reqArena) inUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, w := range a.used {
		n += bits.OnesCount64(w)
	}
	return n
}

// RequestArena is the request arena's file, to be passed to the manager
// for its workers (nil: there is none; bodies travel in frames).
func (p *Plane) RequestArena() *os.File {
	if p.arena == nil {
		return nil
	}
	return p.arena.file
}

// ArenaAlloc implements reactor.BodyArena: a range of the request arena
// for a body of n bytes, when every ready worker reads bodies there.
func (p *Plane) ArenaAlloc(_ *reactor.HTTPConn, n int) []byte {
	if p.arena == nil || n < arenaMinBody || !p.disp.takesArenas() {
		return nil
	}
	return p.arena.alloc(n)
}

// ArenaFree implements reactor.BodyArena.
func (p *Plane) ArenaFree(buf []byte) { p.arena.free(buf) }

// takesArenas reports whether a worker is ready and every ready one maps
// the arenas (hello arenas).
func (d *dispatcher) takesArenas() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ok := false
	for _, w := range d.workers {
		if w == nil || w.state != stateReady {
			continue
		}
		if !w.arenas {
			return false
		}
		ok = true
	}
	return ok
}

// arenaFields are a worker's body arenas (in Worker).
type arenaFields struct {
	// ans is the worker's answer arena, mapped read-only (nil: none). Set
	// by Attach; read by the owner loop only, which unmaps it when the
	// worker is closed.
	ans []byte
	// arenas: its hello said it maps the arenas. Guarded by dispatcher.mu
	// (set before it gets requests).
	arenas bool
	// rel holds Refs of ans that the master is done with and has not yet
	// given back (a Release frame), relBytes their bytes. Guarded by
	// outMu.
	rel      []byte
	relBytes uint64
	// bodies are the request-arena ranges of the requests in flight here
	// by reference (body_at), by connection: the worker may read them
	// until it ends the response. Guarded by bodyMu.
	bodyMu sync.Mutex
	bodies map[uint64]*reactor.BodyLoan
}

// mapAnswers maps the worker's answer arena, passed with it by the
// manager; f is closed (the mapping stays). A worker without one sends
// its answers in frames.
func (w *Worker) mapAnswers(f *os.File) {
	if f == nil {
		return
	}
	defer f.Close()
	mem, err := ipc.MapArena(f, false)
	if err != nil {
		w.log.WithField("error", err.Error()).Warn("worker's answer arena cannot be mapped: its answers go in frames")
		return
	}
	w.ans = mem
}

// answer is the range of w's answer arena a FlagRef frame names; a range
// outside it (or a frame from a worker without one) is a protocol
// violation. Runs on the owner loop.
func (w *Worker) answer(r ipc.Ref) ([]byte, error) {
	if w.ans == nil {
		return nil, fmt.Errorf("%w: an answer by reference (FlagRef) from a worker without an answer arena", errProtocol)
	}
	if !r.In(len(w.ans)) {
		return nil, fmt.Errorf("%w: an answer by reference (FlagRef) to bytes %d+%d, outside its %d-byte answer arena", errProtocol, r.Off, r.Len, len(w.ans))
	}
	return w.ans[r.Off : r.Off+r.Len : r.Off+r.Len], nil
}

// release gives a range of w's answer arena back: with the next frame the
// worker gets, or at once (at the end of l's iteration) when relFlush
// bytes wait. Any loop.
func (w *Worker) release(l *reactor.Loop, r ipc.Ref) {
	if r.Len == 0 {
		return
	}
	w.outMu.Lock()
	w.rel = ipc.AppendRef(w.rel, r)
	w.relBytes += r.Len
	now := w.relBytes >= relFlush
	if now {
		w.queueReleases()
	}
	w.outMu.Unlock()
	if now {
		w.deferFlush(l)
	}
}

// queueReleases appends the releases waiting to the output, as one
// Release frame. Called with outMu held, before any frame is queued.
func (w *Worker) queueReleases() {
	if len(w.rel) == 0 || w.closed {
		return
	}
	w.compactOut()
	w.out = ipc.AppendFrame(w.out, ipc.TypeRelease, 0, 0, w.rel)
	w.p.ipc.framesOut.Add(1)
	w.rel, w.relBytes = w.rel[:0], 0
}

// flushReleases sends the releases that waited for another frame since
// the last tick. Runs on loop l once a second.
func (p *Plane) flushReleases(l *reactor.Loop) {
	for _, wi := range p.disp.snapshot() {
		w := wi.w
		w.outMu.Lock()
		waiting := len(w.rel) > 0 && !w.closed
		if waiting {
			w.queueReleases()
		}
		w.outMu.Unlock()
		if waiting {
			w.deferFlush(l)
		}
	}
}

// holdBody keeps the request-arena range of connection id's request,
// which w reads in place, until the request ends (dropBody).
func (w *Worker) holdBody(id uint64, loan *reactor.BodyLoan) {
	w.bodyMu.Lock()
	if w.bodies == nil {
		w.bodies = make(map[uint64]*reactor.BodyLoan)
	}
	if old := w.bodies[id]; old != nil {
		old.Release() // cannot happen: one request per connection
	}
	w.bodies[id] = loan
	w.bodyMu.Unlock()
}

// dropBody releases the range of connection id's request: its response
// ended.
func (w *Worker) dropBody(id uint64) {
	w.bodyMu.Lock()
	loan := w.bodies[id]
	delete(w.bodies, id)
	w.bodyMu.Unlock()
	if loan != nil {
		loan.Release()
	}
}

// dropBodies releases the ranges of every request in flight at w, once
// its process can no longer read them (it exited, or its channel ended).
func (w *Worker) dropBodies() {
	w.bodyMu.Lock()
	bodies := w.bodies
	w.bodies = nil
	w.bodyMu.Unlock()
	for _, loan := range bodies {
		loan.Release()
	}
}

// refAnswer resolves the body of a Response or ResponseBody frame with
// FlagRef: the range of w's answer arena it names (resp: the Response
// decoded, nil for a ResponseBody). A reference that does not decode or
// lies outside the arena is a protocol violation. Runs on the owner loop
// l, before the frame counts as handled.
func (p *Plane) refAnswer(l *reactor.Loop, w *Worker, h ipc.Header, payload []byte) ([]byte, ipc.Ref, *ipc.ResponseView, error) {
	var ref ipc.Ref
	var resp *ipc.ResponseView
	if h.Type == ipc.TypeResponseBody {
		var err error
		if ref, err = ipc.ParseRef(payload); err != nil {
			return nil, ref, nil, fmt.Errorf("%w: an answer by reference (FlagRef): %v", errProtocol, err)
		}
	} else {
		resp = &p.loops[l.Index()].resp
		if err := resp.Decode(payload); err != nil || len(resp.BodyAt) != 2 || len(resp.Body) > 0 {
			return nil, ref, nil, fmt.Errorf("%w: an answer by reference (FlagRef) without one valid body_at (%v)", errProtocol, err)
		}
		ref = ipc.Ref{Off: resp.BodyAt[0], Len: resp.BodyAt[1]}
	}
	body, err := w.answer(ref)
	return body, ref, resp, err
}

// deliverRef hands an answer by reference to its connection (body in w's
// answer arena, resolved by refAnswer) and gives the range back once
// handled: written to the client, or copied into its output; copied
// before, when the connection is another loop's. Runs on the owner loop l.
func (p *Plane) deliverRef(l *reactor.Loop, w *Worker, h ipc.Header, payload, body []byte, ref ipc.Ref, resp *ipc.ResponseView) {
	defer w.release(l, ref)
	flags := h.Flags &^ ipc.FlagRef
	target := p.rx.LoopOf(h.ID)
	switch {
	case target == nil:
	case target == l && resp == nil:
		if c := l.Conn(h.ID); c != nil {
			p.httpResponseBody(c, flags, body)
		}
	case target == l:
		if c := l.Conn(h.ID); c != nil {
			resp.Body = body
			p.respond(c, flags, nil, resp)
		}
	case resp == nil:
		target.Post(reactor.Task{Fn: responseBodyTask, ID: h.ID, Data: append([]byte(nil), body...), Arg: int(flags)})
	default:
		data := make([]byte, 0, len(payload)+len(body))
		data = append(append(data, payload...), body...)
		target.Post(reactor.Task{Fn: refResponseTask, ID: h.ID, Data: data, Arg: int(flags) | len(payload)<<8})
	}
}

// refResponseTask hands a Response with FlagRef to a connection of
// another loop: Data is the payload (Arg>>8 bytes) followed by the body.
func refResponseTask(l *reactor.Loop, t *reactor.Task) {
	c := l.Conn(t.ID)
	if c == nil {
		return
	}
	p := c.Ctx.(*connState).p
	n := t.Arg >> 8
	resp := &p.loops[l.Index()].resp
	if err := resp.Decode(t.Data[:n]); err != nil {
		return // decoded on the owner loop already
	}
	resp.Body, resp.BodyAt = t.Data[n:], nil
	p.respond(c, uint8(t.Arg), nil, resp)
}

// arenaBody is where hc's request body starts in the request arena, when
// it is whole there (reactor.HTTPConn.ArenaBody).
func (p *Plane) arenaBody(hc *reactor.HTTPConn) (int, bool) {
	b := hc.ArenaBody()
	if b == nil || p.arena == nil {
		return 0, false
	}
	return p.arena.offsetOf(b)
}

// maxReqArena bounds the request arena: its pages, once touched, stay
// resident (the seal that keeps workers from writing it also keeps the
// master from punching holes), so a burst of bodies beyond it goes to
// buffers of the heap instead, which the runtime gives back.
const maxReqArena = 64 << 20

// newArena creates the request arena when an HTTP listener may use it,
// sized http_max_buffered up to maxReqArena: the bodies it holds count
// against that bound until they are dispatched. Without one, bodies
// travel in frames.
func (p *Plane) newArena() {
	http := false
	for _, l := range p.cfg.Listeners {
		http = http || l.Protocol == "http"
	}
	if !http || p.cfg.HTTPMaxBuffered <= 0 {
		return
	}
	a, err := newReqArena(int(min(int64(p.cfg.HTTPMaxBuffered), maxReqArena)))
	if err != nil {
		p.log.WithField("error", err.Error()).Warn("no request arena: request bodies go to workers in frames")
		return
	}
	p.arena = a
}
