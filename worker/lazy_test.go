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
// not arrived hands the reading over at once. The lend timer is made
// useless (an hour) so that only that hand-over can make progress; with
// concurrency 1 and 2, and with a second request served meanwhile when
// there is room for it.
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
