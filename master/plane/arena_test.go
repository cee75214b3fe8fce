package plane

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
)

// arenaWorker is a test worker with an answer arena: ans is its
// read-write mapping of what the master maps read-only.
type arenaWorker struct {
	*testWorker
	ans []byte
}

// readyArenaWorker adds a worker for slot with an answer arena, as the
// manager passes one, and makes it say hello with arenas (or not).
func (h *harness) readyArenaWorker(slot, concurrency int, arenas bool) *arenaWorker {
	h.t.Helper()
	f, _, err := ipc.NewArena("test-answers", ipc.AnswerArenaSize, false)
	if err != nil {
		h.t.Fatal(err)
	}
	ans, err := ipc.MapArena(f, true)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { ipc.Unmap(ans) })
	ours, theirs, err := ipc.SocketPair(unix.SOCK_STREAM)
	if err != nil {
		h.t.Fatal(err)
	}
	conn, err := net.FileConn(theirs)
	theirs.Close()
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	h.gen++
	h.p.Attach(ipc.WorkerEvent{Role: ipc.RoleWorker, Slot: slot, Gen: h.gen, PID: 10000 + slot, Launch: "exec"}, ours, f)
	w := h.p.disp.byGen(h.gen)
	if w == nil {
		h.t.Fatalf("worker %d not in the dispatcher", slot)
	}
	tw := &testWorker{h: h, w: w, conn: conn}
	tw.write(helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: w.pid, Concurrency: concurrency,
		Role: ipc.RoleWorker, SDK: "test", Flow: true, Arenas: arenas}))
	h.waitReady(tw)
	return &arenaWorker{testWorker: tw, ans: ans}
}

// answerRef writes a response whose body is in the answer arena at off.
func (aw *arenaWorker) answerRef(id uint64, flags uint8, status int, headers []string, off int, body []byte) {
	aw.h.t.Helper()
	copy(aw.ans[off:], body)
	p := ipc.AppendResponseRef(nil, status, headers, nil, ipc.Ref{Off: uint64(off), Len: uint64(len(body))})
	aw.write(ipc.AppendFrame(nil, ipc.TypeResponse, flags|ipc.FlagRef, id, p))
}

var dateLine = regexp.MustCompile(`Date: [^\r]*\r\n`)

// exchange sends raw on a new connection, lets answer answer it at the
// worker and returns what the client read until the server closed or
// idle went by without a byte (keep-alive).
func exchangeRaw(t *testing.T, h *harness, w *arenaWorker, raw string, answer func(id uint64)) string {
	t.Helper()
	c := h.dial()
	c.rawSend(raw)
	hd, _ := w.expect(ipc.TypeRequest, 0)
	answer(hd.ID)
	var out []byte
	buf := make([]byte, 128<<10)
	for {
		c.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return dateLine.ReplaceAllString(string(out), "")
}

// A body in the answer arena reaches the client framed exactly as the
// same body inline: the master's rules (Content-Length cut, HEAD, 204 and
// 304 without body, the length of a FlagEnd answer) hold for it too.
func TestArenaAnswerIsFramedAsAnInlineOne(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<10) // 48 KiB
	cases := []struct {
		name    string
		req     string
		status  int
		headers []string
		body    []byte
	}{
		{"plain", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, []string{"Content-Type", "text/plain"}, big},
		{"content-length cut", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, []string{"Content-Length", "100"}, big},
		{"content-length short", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, []string{"Content-Length", "60000"}, big},
		{"head", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 200, nil, big},
		{"204", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 204, nil, big},
		{"304", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 304, nil, big},
		{"http/1.0", "GET / HTTP/1.0\r\n\r\n", 200, nil, big},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, ref := range []bool{false, true} {
				h := newHarness(t, harnessOpts{http: true, workers: 1})
				w := h.readyArenaWorker(0, 8, true)
				got[i] = exchangeRaw(t, h, w, tc.req, func(id uint64) {
					if ref {
						w.answerRef(id, ipc.FlagEnd, tc.status, tc.headers, 5<<16, tc.body)
						return
					}
					w.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, id,
						marshalResponse(t, ipc.Response{Status: tc.status, Headers: tc.headers, Body: tc.body})))
				})
			}
			if got[0] != got[1] {
				t.Fatalf("the client read, inline:\n%.300q\nby reference:\n%.300q", got[0], got[1])
			}
			if !strings.HasPrefix(got[1], "HTTP/1.1 ") {
				t.Fatalf("no answer: %q", got[1])
			}
		})
	}
}

// A streamed answer whose pieces are in the answer arena (ResponseBody
// with FlagRef) reaches the client whole, chunked, and every range comes
// back to the worker in Release frames, at the latest with the next frame
// it gets.
func TestArenaStreamedAnswerAndReleases(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, workers: 1})
	w := h.readyArenaWorker(0, 8, true)
	c := h.dial()
	c.rawSend("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	hd, _ := w.expect(ipc.TypeRequest, 0)
	head := ipc.AppendResponseHead(nil, 200, nil, nil, 0)
	w.write(ipc.AppendFrame(nil, ipc.TypeResponse, 0, hd.ID, head))
	var want []byte
	offs := []int{0, 1 << 16, 7 << 16}
	for i, off := range offs {
		piece := bytes.Repeat([]byte{byte('a' + i)}, 40<<10)
		want = append(want, piece...)
		copy(w.ans[off:], piece)
		flags := ipc.FlagRef
		if i == len(offs)-1 {
			flags |= ipc.FlagEnd
		}
		w.write(ipc.AppendFrame(nil, ipc.TypeResponseBody, flags, hd.ID, ipc.AppendRef(nil, ipc.Ref{Off: uint64(off), Len: uint64(len(piece))})))
	}
	c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	br := bufio.NewReader(c.c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, want) || resp.TransferEncoding == nil {
		t.Fatalf("the streamed answer: %d bytes (want %d), transfer encoding %v, %v", len(body), len(want), resp.TransferEncoding, err)
	}
	// The next request carries the releases before it.
	c.rawSend("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	released := map[uint64]uint64{}
	for {
		fh, p := w.read()
		if fh.Type == ipc.TypeRequest {
			break
		}
		if fh.Type != ipc.TypeRelease {
			t.Fatalf("a %s frame, want release or request", fh.Type)
		}
		if err := ipc.ParseRelease(p, func(r ipc.Ref) { released[r.Off] = r.Len }); err != nil {
			t.Fatal(err)
		}
	}
	for _, off := range offs {
		if released[uint64(off)] != 40<<10 {
			t.Fatalf("released %v, want every range of %v (40 KiB each)", released, offs)
		}
	}
}

// A worker that names bytes outside its answer arena, or answers by
// reference without one, breaks the protocol: it is replaced and its
// client gets 502; the master read nothing outside the arena.
func TestArenaAnswerOutOfRangeReplacesTheWorker(t *testing.T) {
	cases := []struct {
		name    string
		arena   bool
		frames  func(id uint64) []byte
		started bool // the answer's head went out: the client sees it cut
	}{
		{"past the end", true, func(id uint64) []byte {
			p := ipc.AppendResponseRef(nil, 200, nil, nil, ipc.Ref{Off: ipc.AnswerArenaSize - 10, Len: 11})
			return ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd|ipc.FlagRef, id, p)
		}, false},
		{"wrapping", true, func(id uint64) []byte {
			p := ipc.AppendResponseRef(nil, 200, nil, nil, ipc.Ref{Off: 1 << 63, Len: 1 << 63})
			return ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd|ipc.FlagRef, id, p)
		}, false},
		{"body piece past the end", true, func(id uint64) []byte {
			return cat(ipc.AppendFrame(nil, ipc.TypeResponse, 0, id, ipc.AppendResponseHead(nil, 200, nil, nil, 0)),
				ipc.AppendFrame(nil, ipc.TypeResponseBody, ipc.FlagEnd|ipc.FlagRef, id, ipc.AppendRef(nil, ipc.Ref{Off: 0, Len: ipc.AnswerArenaSize + 1})))
		}, true},
		{"malformed reference", true, func(id uint64) []byte {
			return ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd|ipc.FlagRef, id, marshalResponse(t, ipc.Response{Status: 200, Body: []byte("x")}))
		}, false},
		{"no answer arena", false, func(id uint64) []byte {
			p := ipc.AppendResponseRef(nil, 200, nil, nil, ipc.Ref{Off: 0, Len: 10})
			return ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd|ipc.FlagRef, id, p)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{http: true, workers: 1})
			var tw *testWorker
			if tc.arena {
				tw = h.readyArenaWorker(0, 8, true).testWorker
			} else {
				tw = h.readyWorker(0, 8)
			}
			c := h.dial()
			c.rawSend("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			hd, _ := tw.expect(ipc.TypeRequest, 0)
			tw.write(tc.frames(hd.ID))
			if e := tw.gone(); e.Level != logrus.ErrorLevel || !strings.Contains(fmt.Sprint(e.Data["reason"]), "reference") {
				t.Fatalf("the worker's removal: %s %v, want an error naming the reference", e.Level, e.Data)
			}
			out := c.expectClosed()
			switch {
			case tc.started && (!strings.HasPrefix(out, "HTTP/1.1 200 ") || strings.HasSuffix(out, "0\r\n\r\n")):
				t.Fatalf("the client: %q, want the answer's head and a cut", out)
			case !tc.started && !strings.HasPrefix(out, "HTTP/1.1 502 "):
				t.Fatalf("the client: %q, want 502", firstLine(out))
			}
		})
	}
}

// A body that comes after its head goes into the request arena, and a
// worker that maps it gets the request naming it (body_at) without body
// frames; its range is free again once the response ended. A worker that
// goes away holding one frees it too.
func TestArenaRequestBodyByReference(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, workers: 1})
	w := h.readyArenaWorker(0, 8, true)
	body := pattern('r', 200<<10)
	c := h.dial()
	go func() {
		c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
		fmt.Fprintf(c.c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
		c.c.Write(body)
	}()
	hd, p := w.expect(ipc.TypeRequest, 0)
	var r ipc.Request
	if err := ipc.Unmarshal(p, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.BodyAt) != 2 || r.BodyFollows || len(r.Body) > 0 {
		t.Fatalf("the request: body_at %v, body_follows %v, %d inline bytes; want the body by reference only", r.BodyAt, r.BodyFollows, len(r.Body))
	}
	off, n := r.BodyAt[0], r.BodyAt[1]
	if got := h.p.arena.mem[off : off+n]; !bytes.Equal(got, body) {
		t.Fatalf("the body in the request arena differs from the client's at offset %d", firstDiff(got, body))
	}
	if h.p.http.Buffered() != 0 {
		t.Fatalf("http_buffered %d after the body went by reference, want 0", h.p.http.Buffered())
	}
	h.eventually("the range held while the request is in flight", func() bool { return h.p.arena.inUse() > 0 })
	// A worker cannot write the request arena.
	if m, err := ipc.MapArena(h.p.arena.file, true); err == nil {
		ipc.Unmap(m)
		t.Fatal("the request arena could be mapped writable")
	}
	w.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, hd.ID, marshalResponse(t, ipc.Response{Status: 201})))
	c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	if resp, err := http.ReadResponse(bufio.NewReader(c.c), nil); err != nil || resp.StatusCode != 201 {
		t.Fatalf("the answer: %v %v", resp, err)
	}
	h.eventually("the range free after the response", func() bool { return h.p.arena.inUse() == 0 })

	// Held by a worker that goes away: freed when its channel ends.
	c2 := h.dial()
	go func() {
		c2.c.SetWriteDeadline(time.Now().Add(waitTimeout))
		fmt.Fprintf(c2.c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
		c2.c.Write(body)
	}()
	w.expect(ipc.TypeRequest, 0)
	h.eventually("the range held", func() bool { return h.p.arena.inUse() > 0 })
	w.conn.Close()
	w.gone()
	h.eventually("the range free after the worker went away", func() bool { return h.p.arena.inUse() == 0 })
	if out := c2.expectClosed(); !strings.HasPrefix(out, "HTTP/1.1 502 ") {
		t.Fatalf("the client of the worker that went away: %q", firstLine(out))
	}
}

// While a ready worker does not map the arenas, bodies go in frames: the
// arena is not used at all.
func TestArenaNotUsedWithoutEveryWorker(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, workers: 2, httpMode: modeRoundRobin})
	h.readyArenaWorker(0, 8, true)
	plain := h.readyArenaWorker(1, 8, false)
	body := pattern('p', 100<<10)
	for i := 0; i < 2; i++ {
		c := h.dial()
		go func() {
			c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
			fmt.Fprintf(c.c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
			c.c.Write(body)
		}()
	}
	hd, p := plain.expect(ipc.TypeRequest, 0)
	var r ipc.Request
	if err := ipc.Unmarshal(p, &r); err != nil || r.BodyAt != nil || !r.BodyFollows {
		t.Fatalf("the request to the worker without arenas: body_at %v, body_follows %v (%v)", r.BodyAt, r.BodyFollows, err)
	}
	if got := plain.readBody(hd.ID); !bytes.Equal(got, body) {
		t.Fatalf("the body in frames differs at %d", firstDiff(got, body))
	}
	if n := h.p.arena.inUse(); n != 0 {
		t.Fatalf("%d arena pages in use", n)
	}
}
