package worker

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/drover-dev/drover/ipc"
)

// testArenas are body arenas as the manager passes them: the worker's
// mappings (a) and the master's (req, writable; ans, read-only).
type testArenas struct {
	a   *arenas
	req []byte
	ans []byte
}

func newTestArenas(t testing.TB) *testArenas {
	t.Helper()
	rf, req, err := ipc.NewArena("test-requests", 4<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	af, _, err := ipc.NewArena("test-answers", ipc.AnswerArenaSize, false)
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	a := &arenas{}
	if a.req, err = ipc.MapArena(rf, false); err != nil {
		t.Fatal(err)
	}
	if a.ans, err = ipc.MapArena(af, true); err != nil {
		t.Fatal(err)
	}
	a.init()
	ans, err := ipc.MapArena(af, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range [][]byte{req, ans, a.req, a.ans} {
			ipc.Unmap(m)
		}
	})
	return &testArenas{a: a, req: req, ans: ans}
}

func withArenas(a *arenas) Option { return func(o *options) { o.arenas = a } }

// arenaAnswer reads the response of conn id as the master does, its
// bodies by reference resolved in the answer arena; release gives each
// range back at once. refs counts the frames by reference.
func (m *fakeMaster) arenaAnswer(ta *testArenas, id uint64, release bool) (r ipc.Response, body []byte, refs int) {
	m.t.Helper()
	for first := true; ; first = false {
		f := m.readH()
		if f.id != id || first != (f.typ == ipc.TypeResponse) {
			m.t.Fatalf("a %s frame for conn %d, want the response of %d", f.typ, f.id, id)
		}
		var ref ipc.Ref
		byRef := f.flags&ipc.FlagRef != 0
		if f.typ == ipc.TypeResponse {
			if err := ipc.Unmarshal(f.payload, &r); err != nil {
				m.t.Fatal(err)
			}
			body = append(body, r.Body...)
			if byRef {
				ref = ipc.Ref{Off: r.BodyAt[0], Len: r.BodyAt[1]}
			}
		} else if byRef {
			var err error
			if ref, err = ipc.ParseRef(f.payload); err != nil {
				m.t.Fatal(err)
			}
		} else {
			body = append(body, f.payload...)
		}
		if byRef {
			refs++
			body = append(body, ta.ans[ref.Off:ref.Off+ref.Len]...)
			if release {
				m.sendFlags(ipc.TypeRelease, 0, 0, ipc.AppendRef(nil, ref))
			}
		}
		if f.flags&ipc.FlagEnd != 0 {
			return r, body, refs
		}
	}
}

// A worker with the arenas says so; it reads a body the request names in
// the request arena, and sends answer bodies of 16 KiB or more through
// its answer arena: an echo of 300 KiB crosses no socket pair.
func TestArenaEchoByReference(t *testing.T) {
	ta := newTestArenas(t)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) }), withArenas(ta.a))
	if !m.hello.Arenas {
		t.Fatal("hello without arenas")
	}
	body := bytes.Repeat([]byte("0123456789"), 30<<10)
	copy(ta.req[64<<10:], body)
	m.request(7, ipc.Request{Method: "POST", Target: "/echo", ContentLength: int64(len(body)), BodyAt: []uint64{64 << 10, uint64(len(body))}})
	r, got, refs := m.arenaAnswer(ta, 7, true)
	if r.Status != 200 || !bytes.Equal(got, body) {
		t.Fatalf("echo: status %d, %d bytes back (want %d, equal)", r.Status, len(got), len(body))
	}
	if refs < len(body)/ipc.MaxInlineBody {
		t.Fatalf("%d frames by reference for a %d-byte answer", refs, len(body))
	}
	m.stop()
}

// Slots not given back run out: answers then go in frames, and are no
// less whole; slots released are used again. A HEAD answer takes none.
func TestArenaSlotsRunOutAndComeBack(t *testing.T) {
	ta := newTestArenas(t)
	big := bytes.Repeat([]byte("x"), 64<<10)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }), withArenas(ta.a))
	slots := len(ta.a.free)
	byRef := 0
	for i := 0; i < slots+3; i++ {
		m.get(uint64(i+1), "/")
		_, got, refs := m.arenaAnswer(ta, uint64(i+1), false)
		if !bytes.Equal(got, big) {
			t.Fatalf("answer %d: %d bytes", i, len(got))
		}
		byRef += refs
	}
	if byRef != slots {
		t.Fatalf("%d answers by reference, want one per slot (%d), then frames", byRef, slots)
	}
	m.sendFlags(ipc.TypeRelease, 0, 0, ipc.AppendRef(ipc.AppendRef(nil, ipc.Ref{Off: 0, Len: 1 << 16}), ipc.Ref{Off: 1 << 16, Len: 1 << 16}))
	m.request(1000, ipc.Request{Method: "HEAD", Target: "/"})
	if _, _, refs := m.arenaAnswer(ta, 1000, false); refs != 0 {
		t.Fatal("a HEAD answer went by reference")
	}
	for i := 0; i < 2; i++ {
		m.get(uint64(2000+i), "/")
		if _, got, refs := m.arenaAnswer(ta, uint64(2000+i), false); refs != 1 || !bytes.Equal(got, big) {
			t.Fatalf("after the release: %d frames by reference, %d bytes", refs, len(got))
		}
	}
	m.stop()
}

// A request naming bytes outside the request arena is the master's
// fault: 500, and the worker serves on.
func TestArenaBodyOutsideTheArena(t *testing.T) {
	ta := newTestArenas(t)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) }), withArenas(ta.a))
	m.request(1, ipc.Request{Method: "POST", Target: "/", ContentLength: 10, BodyAt: []uint64{uint64(len(ta.req)) - 5, 10}})
	if r, _, _ := m.arenaAnswer(ta, 1, false); r.Status != 500 {
		t.Fatalf("status %d, want 500", r.Status)
	}
	m.get(2, "/")
	if r, _, _ := m.arenaAnswer(ta, 2, false); r.Status != 200 {
		t.Fatalf("the next request: %d", r.Status)
	}
	m.stop()
}
