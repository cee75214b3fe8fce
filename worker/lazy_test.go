package worker

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// withLendThreshold sets how long a handler runs before a new reader starts.
func withLendThreshold(d time.Duration) Option {
	return func(o *options) { o.lendThreshold = d }
}

// TestHTTPBlockedHandlerGetsReader: the goroutine that read a request runs
// its handler without a reader behind it; a handler that waits for another
// connection's request to be answered must not deadlock — the lend timer
// starts a reader. Both a handler that parks and one that spins.
func TestHTTPBlockedHandlerGetsReader(t *testing.T) {
	for _, spin := range []bool{false, true} {
		for _, conc := range []int{2, 16} {
			t.Run(fmt.Sprintf("spin=%v/concurrency=%d", spin, conc), func(t *testing.T) {
				answered := make(chan struct{})
				var otherDone atomic.Bool
				m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/other" {
						_, _ = w.Write([]byte("other"))
						otherDone.Store(true)
						return
					}
					deadline := time.Now().Add(10 * time.Second)
					if spin {
						for !otherDone.Load() && time.Now().Before(deadline) {
						}
					} else {
						select {
						case <-answered:
						case <-time.After(time.Until(deadline)):
						}
					}
					_, _ = w.Write([]byte("waited"))
				}), WithConcurrency(conc))
				start := time.Now()
				m.get(1, "/wait")
				m.get(2, "/other")
				if spin {
					// /other's flag is set before its frame leaves: either
					// response may come first.
					close(answered)
					got := m.responses(2)
					if string(got[2].body) != "other" || string(got[1].body) != "waited" {
						t.Fatalf("responses %q %q", got[1].body, got[2].body)
					}
					if d := time.Since(start); d > 5*time.Second {
						t.Fatalf("took %v: the blocked handler held the reading", d)
					}
				} else {
					expectServedBehind(t, m, answered, start)
				}
				m.stop()
			})
		}
	}
}

// TestHTTPBlockedHandlerAfterQuickOnesGetsReader: the lend timer is armed
// by the first lend of a busy period and only re-armed while lends go on;
// a handler that blocks after quick ones were served in the same period
// still gets a reader (at the next check that sees its lend unchanged).
func TestHTTPBlockedHandlerAfterQuickOnesGetsReader(t *testing.T) {
	answered := make(chan struct{})
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wait":
			select {
			case <-answered:
			case <-time.After(10 * time.Second):
			}
			_, _ = w.Write([]byte("waited"))
		case "/other":
			_, _ = w.Write([]byte("other"))
		default:
			_, _ = w.Write([]byte("quick"))
		}
	}), WithConcurrency(4), withLendThreshold(20*time.Millisecond))
	for i := range 20 {
		m.get(uint64(10+i), "/quick")
		if r := m.response(uint64(10 + i)); string(r.body) != "quick" {
			t.Fatalf("quick %d: %q", i, r.body)
		}
	}
	start := time.Now()
	m.get(1, "/wait")
	m.get(2, "/other")
	expectServedBehind(t, m, answered, start)
	m.stop()
}

// expectServedBehind: conn 2's "other" is answered while conn 1's handler
// waits on answered; then conn 1 is released and answers "waited", all
// within 5 s of start.
func expectServedBehind(t *testing.T, m *fakeMaster, answered chan struct{}, start time.Time) {
	t.Helper()
	if r := m.response(2); string(r.body) != "other" {
		t.Fatalf("conn 2: %q", r.body)
	}
	close(answered)
	if r := m.response(1); string(r.body) != "waited" {
		t.Fatalf("conn 1: %q", r.body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: the blocked handler held the reading", d)
	}
}

// TestBlockedStreamHandlerGetsReader is the same for OnReceive: a callback
// that waits for another connection's event must not deadlock.
func TestBlockedStreamHandlerGetsReader(t *testing.T) {
	second := make(chan struct{})
	m := startWorker(t, Events{OnReceive: func(s *Server, conn uint64, data []byte) {
		if conn == 2 {
			close(second)
		} else {
			select {
			case <-second:
			case <-time.After(10 * time.Second):
				t.Errorf("conn 1: the event of conn 2 was not read")
			}
		}
		_ = s.Send(conn, data)
	}}, nil, WithConcurrency(2))
	m.send(ipc.TypeData, 1, []byte("a"))
	m.send(ipc.TypeData, 2, []byte("b"))
	got := map[frame]bool{}
	for range 4 {
		got[m.read()] = true
	}
	for _, f := range []frame{{ipc.TypeSend, 2, "b"}, {ipc.TypeDone, 2, ""}, {ipc.TypeSend, 1, "a"}, {ipc.TypeDone, 1, ""}} {
		if !got[f] {
			t.Fatalf("no %v among %v", f, got)
		}
	}
	m.send(ipc.TypeStop, 0, nil)
	if err := m.expectEOF(); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPBodyWaitStartsReader: a handler reading a body whose pieces have
// not arrived gets them read at once (it reads them itself while nobody
// else reads, see TestHTTPBodyReadThrough). The lend timer is made
// useless (an hour) so that only that can make progress; with concurrency
// 1 and 2, and with a second request served meanwhile when there is room
// for it.
func TestHTTPBodyWaitStartsReader(t *testing.T) {
	for _, conc := range []int{1, 2} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			entered := make(chan struct{}, 1)
			m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "GET" {
					hello(w, r)
					return
				}
				entered <- struct{}{}
				echoBody(w, r)
			}), WithConcurrency(conc), withLendThreshold(time.Hour))
			body := bytes.Repeat([]byte("0123456789abcdef"), 3*ipc.MaxInlineBody/16+5)
			m.request(1, ipc.Request{Method: "POST", Target: "/echo", ContentLength: int64(len(body)), BodyFollows: true})
			<-entered
			post := new(response)
			for i, rest := 0, body; len(rest) > 0; i++ {
				n := min(len(rest), ipc.MaxInlineBody)
				var flags uint8
				if n == len(rest) {
					flags = ipc.FlagEnd
				}
				m.sendFlags(ipc.TypeRequestBody, flags, 1, rest[:n])
				rest = rest[n:]
				if i == 0 && conc > 1 {
					// The reader started for the body serves other
					// connections too.
					m.get(2, "/")
					for {
						f := m.readH()
						if f.id == 1 {
							post.add(t, f)
							continue
						}
						if r := new(response); !r.add(t, f) || string(r.body) != "Hello, World!" {
							t.Fatalf("GET: %v %q", r.frames, r.body)
						}
						break
					}
				}
			}
			for f := m.readH(); !post.add(t, f); f = m.readH() {
			}
			if post.Status != 200 || !bytes.Equal(post.body, body) {
				t.Fatalf("status %d, %d of %d bytes echoed", post.Status, len(post.body), len(body))
			}
			m.stop()
		})
	}
}

// withLeaderStarts counts the goroutines started to read fd 3.
func withLeaderStarts(n *atomic.Int32) Option {
	return func(o *options) { o.onLeaderStart = func() { n.Add(1) } }
}

// TestHTTPBodyReadThrough: a handler waiting for its body's next piece
// while nobody reads reads the frames itself: a long body costs no
// goroutine started to read it (the lend timer, made useless, starts none
// either). A request of another connection arriving meanwhile is handed,
// with the reading, to one new goroutine, which serves it; the body's
// rest still arrives.
func TestHTTPBodyReadThrough(t *testing.T) {
	var starts atomic.Int32
	entered := make(chan struct{}, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			hello(w, r)
			return
		}
		entered <- struct{}{}
		echoBody(w, r)
	}), WithConcurrency(4), withLendThreshold(time.Hour), withLeaderStarts(&starts))
	const piece = ipc.MaxInlineBody
	body := bytes.Repeat([]byte("0123456789abcdef"), 20*piece/16)
	m.request(1, ipc.Request{Method: "POST", Target: "/echo", ContentLength: int64(len(body)), BodyFollows: true})
	<-entered
	post := new(response)
	// send sends the pieces from..to of the body from a goroutine (the
	// worker's answers are read meanwhile), and reads the answer until
	// they came back.
	send := func(from, to int) {
		t.Helper()
		go func() {
			for i := from; i < to; i++ {
				var flags uint8
				if i == len(body)/piece-1 {
					flags = ipc.FlagEnd
				}
				if err := m.w.WriteFrame(ipc.TypeRequestBody, flags, 1, body[i*piece:(i+1)*piece]); err != nil {
					return
				}
			}
		}()
		for len(post.body) < to*piece {
			if post.add(t, m.readH()) {
				break
			}
		}
	}
	send(0, 10)
	if n := starts.Load(); n != 0 {
		t.Fatalf("%d goroutines started to read 10 body pieces, want 0 (the handler reads them)", n)
	}
	m.get(2, "/")
	if r := m.response(2); string(r.body) != "Hello, World!" {
		t.Fatalf("GET during the body: %q", r.body)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("%d goroutines started for the GET, want 1", n)
	}
	send(10, 20)
	for post.frames[len(post.frames)-1].flags&ipc.FlagEnd == 0 {
		post.add(t, m.readH())
	}
	if post.Status != 200 || !bytes.Equal(post.body, body) {
		t.Fatalf("status %d, %d of %d bytes echoed", post.Status, len(post.body), len(body))
	}
	m.stop()
}

// TestHTTPBodiesInterleaved: the bodies of many connections arrive
// interleaved piece by piece, with requests without body among them, while
// their handlers read through and hand the reading over; every body comes
// back whole. Concurrency 4 (requests wait for slots) and 64.
func TestHTTPBodiesInterleaved(t *testing.T) {
	for _, conc := range []int{4, 64} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "GET" {
					hello(w, r)
					return
				}
				echoBody(w, r)
			}), WithConcurrency(conc))
			const posts, gets = 12, 12
			bodies := make([][]byte, posts+1)
			for c := 1; c <= posts; c++ {
				bodies[c] = bytes.Repeat([]byte{byte(c)}, c*ipc.MaxInlineBody/3+c)
				m.request(uint64(c), ipc.Request{Method: "POST", Target: "/echo", ContentLength: int64(len(bodies[c])), BodyFollows: true})
			}
			// The frames go out from a goroutine, so that the worker's
			// answers are read meanwhile (the socket pair's buffers
			// would fill otherwise).
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				off := make([]int, posts+1)
				for g, more := 0, true; more; {
					more = false
					for c := 1; c <= posts; c++ {
						n := min(len(bodies[c])-off[c], ipc.MaxInlineBody)
						if off[c] == len(bodies[c]) {
							continue
						}
						var flags uint8
						if off[c]+n == len(bodies[c]) {
							flags = ipc.FlagEnd
						}
						if err := m.w.WriteFrame(ipc.TypeRequestBody, flags, uint64(c), bodies[c][off[c]:off[c]+n]); err != nil {
							return
						}
						off[c] += n
						more = true
						if g < gets {
							g++
							b, _ := ipc.Marshal(ipc.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1"})
							if err := m.w.WriteFrame(ipc.TypeRequest, 0, uint64(100+g), b); err != nil {
								return
							}
						}
					}
				}
			}()
			got := m.responses(posts + gets)
			<-sent
			for c := 1; c <= posts; c++ {
				if r := got[uint64(c)]; r == nil || !bytes.Equal(r.body, bodies[c]) {
					t.Fatalf("conn %d: body not echoed whole", c)
				}
			}
			for g := 1; g <= gets; g++ {
				if r := got[uint64(100+g)]; r == nil || string(r.body) != "Hello, World!" {
					t.Fatalf("GET %d not answered", g)
				}
			}
			m.stop()
		})
	}
}
