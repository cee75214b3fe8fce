package worker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// notifyWindowWait signals ch (without blocking) when a response waits for
// credit.
func notifyWindowWait(ch chan struct{}) Option {
	return func(o *options) {
		o.onWindowWait = func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// A response streams no further than the window ahead of the master's
// credit: the handler's Write blocks until the client has taken the rest.
func TestHTTPResponseWaitsForCredit(t *testing.T) {
	const total = 1 << 20
	var written atomic.Int64
	waiting := make(chan struct{}, 1)
	piece := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for written.Load() < total {
			if _, err := w.Write(piece); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			written.Add(int64(len(piece)))
		}
	}), notifyWindowWait(waiting))
	m.holdCredit = true
	m.get(1, "/big")
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatalf("the handler wrote %d bytes without waiting for credit", written.Load())
	}
	// Blocked: what it wrote is the window, a frame over, and what its
	// Write buffers before it emits a frame.
	if got, most := written.Load(), int64(ipc.FlowWindow+2*ipc.MaxInlineBody); got > most {
		t.Fatalf("the handler wrote %d bytes before the first credit, want at most %d", got, most)
	}
	resp := new(response)
	received := 0
	for received < ipc.FlowWindow {
		f := m.readH()
		if resp.add(t, f) {
			t.Fatal("the response ended inside the first window")
		}
		received = len(resp.body)
	}
	// Credit what arrived, as the master does once it left for the client;
	// from here on readH credits each frame.
	m.sendFlags(ipc.TypeWindow, 0, 1, ipc.AppendWindow(nil, uint32(received)))
	m.holdCredit = false
	for f := m.readH(); !resp.add(t, f); f = m.readH() {
	}
	if len(resp.body) != total || resp.Status != 200 {
		t.Fatalf("status %d, %d bytes, want 200 and %d", resp.Status, len(resp.body), total)
	}
	m.stop()
}

// The connection closing releases a handler that waits for credit.
func TestHTTPCancelReleasesCreditWait(t *testing.T) {
	waiting := make(chan struct{}, 1)
	werr := make(chan error, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		piece := make([]byte, 32<<10)
		for {
			if _, err := w.Write(piece); err != nil {
				werr <- err
				return
			}
		}
	}), notifyWindowWait(waiting))
	m.holdCredit = true
	m.get(1, "/forever")
	<-waiting
	// A half-closed client still reads: the handler goes on waiting. A
	// closed connection releases it.
	m.send(ipc.TypeCancel, 1, nil)
	m.sendFlags(ipc.TypeCancel, ipc.FlagEnd, 1, nil)
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("Write after cancel succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still waits for credit after the client went away")
	}
	for f := m.readH(); f.flags&ipc.FlagEnd == 0; f = m.readH() {
	}
	m.stop()
}

// The worker credits the request body as the handler reads it, in
// batches of at least half a window, never ahead of the reading.
func TestHTTPRequestBodyCredit(t *testing.T) {
	const total = 1 << 20
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	m.request(1, ipc.Request{Method: "POST", Target: "/upload", Headers: []string{"Host", "h"}, ContentLength: total, BodyFollows: true})
	body := make([]byte, total)
	for off := 0; off < total; off += ipc.MaxInlineBody {
		var flags uint8
		if off+ipc.MaxInlineBody >= total {
			flags = ipc.FlagEnd
		}
		m.sendFlags(ipc.TypeRequestBody, flags, 1, body[off:off+ipc.MaxInlineBody])
	}
	r := m.response(1)
	if string(r.body) != strconv.Itoa(total) {
		t.Fatalf("handler read %q bytes, want %d", r.body, total)
	}
	got := m.credited[1]
	if got > total || got < total-ipc.FlowWindow/2 || got%(ipc.FlowWindow/2) != 0 {
		t.Fatalf("credited %d bytes for a %d-byte body read whole, want batches of %d", got, total, ipc.FlowWindow/2)
	}
	m.stop()
}

// The request's context is cancelled when the client goes away, and so
// are contexts derived from it (through AfterFunc, not a goroutine each).
func TestRequestContextAndDerived(t *testing.T) {
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		<-ctx.Done()
		io.WriteString(w, context.Cause(ctx).Error()+" / "+r.Context().Err().Error())
	}), WithConcurrency(2))
	m.get(1, "/wait")
	m.send(ipc.TypeCancel, 1, nil)
	r := m.response(1)
	if string(r.body) != "context canceled / context canceled" {
		t.Fatalf("handler saw %q", r.body)
	}
	m.stop()
}
