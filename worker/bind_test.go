package worker

import (
	"context"
	"encoding/binary"
	"net/http"
	"testing"
	"time"

	"github.com/drover-dev/drover/ipc"
)

// An HTTP handler binds its request's connection to a uid (dispatch_mode
// 5) with the request's context, or one derived from it: the Bind frame
// names the connection and goes before the response, so the master has
// it when the client reads the answer. Other contexts, and a request that
// is over, are refused.
func TestHTTPBind(t *testing.T) {
	late := make(chan context.Context, 1)
	m := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		if err := Bind(ctx, 42); err != nil {
			t.Errorf("Bind with a context derived from the request's: %v", err)
		}
		if err := Bind(context.Background(), 42); err == nil {
			t.Error("Bind with a context of no request: nil error")
		}
		late <- r.Context()
		w.Write([]byte("bound"))
	}))
	m.get(9, "/")
	f := m.readH()
	if f.typ != ipc.TypeBind || f.id != 9 || len(f.payload) != 8 || binary.BigEndian.Uint64(f.payload) != 42 {
		t.Fatalf("first frame %s conn %d %x, want Bind of conn 9 to uid 42", f.typ, f.id, f.payload)
	}
	if r := m.response(9); string(r.body) != "bound" {
		t.Fatalf("response %q", r.body)
	}
	if err := Bind(<-late, 42); err == nil {
		t.Fatalf("Bind after the handler returned: %v, want a refusal", err)
	}
	m.stop()
}
