package plane

import (
	"testing"

	"github.com/drover-dev/drover/ipc"
	"github.com/vmihailenco/msgpack/v5"
)

// cgiMap decodes a Request payload as any msgpack reader would.
func cgiMap(t testing.TB, p []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := msgpack.Unmarshal(p, &m); err != nil {
		t.Fatalf("a Request payload that is not a msgpack map: %v (%q)", err, p)
	}
	return m
}

// A worker whose hello says cgi gets its requests in the CGI layout, one
// map of $_SERVER's keys; one that does not gets the default layout. A
// request sent ahead to a CGI worker and handed back unstarted reaches the
// next worker in the layout that one reads.
func TestHTTPRequestsInTheCGILayout(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true}) // mode 3, one loop
	cgi := h.addWorker(0)
	cgi.write(helloFrame(ipc.Hello{Version: ipc.ProtocolVersion, PID: cgi.w.pid, Concurrency: 1, Prefetch: 1,
		Role: ipc.RoleWorker, SDK: "test", CGI: true}))
	h.waitReady(cgi)

	a := h.dial()
	a.get("/a?x=1")
	ha, p := cgi.expect(ipc.TypeRequest, 0)
	var r ipc.Request
	if err := ipc.DecodeRequestCGI(p, &r); err != nil || r.Method != "GET" || r.Target != "/a?x=1" {
		t.Fatalf("the CGI worker's request: %+v, %v (payload %q)", r, err, p)
	}
	if m := cgiMap(t, p); m["QUERY_STRING"] != "x=1" || m["DOCUMENT_URI"] != "/a" {
		t.Fatalf("the CGI worker's request is not in the CGI layout: %v", m)
	}

	// b goes ahead to the busy CGI worker, which hands it back unstarted.
	b := h.dial()
	b.get("/b")
	hb, p := cgi.expect(ipc.TypeRequest, 0)
	if m := cgiMap(t, p); m["REQUEST_URI"] != "/b" {
		t.Fatalf("the request sent ahead: %v", m)
	}
	plain := h.readyWorker(1, 1) // says no cgi
	cgi.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd|ipc.FlagRetry, hb.ID, nil))
	_, p = plain.expect(ipc.TypeRequest, 0)
	var dec ipc.RequestDecoder
	if err := dec.Decode(p, &r); err != nil || r.Target != "/b" || r.Method != "GET" {
		t.Fatalf("the handed-back request at the worker without cgi: %+v, %v (payload %q)", r, err, p)
	}
	if m := cgiMap(t, p); m["method"] != "GET" || m["REQUEST_URI"] != nil {
		t.Fatalf("the worker without cgi did not get the default layout: %v", m)
	}
	cgi.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, ha.ID, marshalResponse(t, ipc.Response{Status: 200, Body: []byte("/a")})))
	if got := a.answer(); got != "/a" {
		t.Fatalf("GET /a answered %q", got)
	}
}
