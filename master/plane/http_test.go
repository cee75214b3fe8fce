package plane

import (
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/config"
	"github.com/drover-dev/drover/ipc"
)

// httpTestConfig makes the harness's listener an HTTP one, with the
// defaults of internal/config.
func httpTestConfig(cfg *config.Config) {
	cfg.Listeners[0].Protocol = "http"
	cfg.PackageMaxLength = 1 << 20
	cfg.Listeners[0].PackageMaxLength = cfg.PackageMaxLength
	cfg.BufferOutputSize = config.DefaultBufferOutputSize
	cfg.DispatchTimeout = config.DefaultDispatchTimeout
	cfg.HTTPMaxHeaderSize = config.DefaultHTTPMaxHeader
	cfg.HTTPHeaderTimeout = config.DefaultHTTPHeaderTime
	cfg.HTTPIdleTimeout = config.DefaultHTTPIdleTimeout
	cfg.HTTPBodyTimeout = config.DefaultHTTPBodyTimeout
	cfg.HTTPBodyBufferSize = config.DefaultHTTPBodyBufferSize
	cfg.HTTPSendTimeout = config.DefaultHTTPSendTimeout
	cfg.HTTPSendMinRate = config.DefaultHTTPSendMinRate
	cfg.HTTPMaxBuffered = config.DefaultHTTPMaxBuffered
}

// rawSend writes raw bytes on the client's connection.
func (c *client) rawSend(raw string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.c.Write([]byte(raw)); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func marshalResponse(t *testing.T, r ipc.Response) []byte {
	t.Helper()
	b, err := ipc.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A worker of concurrency 1 gets a request only with its whole body: a
// client that sent half of it holds no worker, and a request that came
// after it is served first.
func TestHTTPBodyIsWholeBeforeAConcurrencyOneWorker(t *testing.T) {
	h := newHarness(t, harnessOpts{http: true, workers: 1})
	tw := h.readyWorker(0, 1)
	slow := h.dial()
	slow.rawSend("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
	h.eventually("the half body held by the master", func() bool { return h.p.http.Buffered() == 5 })

	fast := h.dial()
	fast.rawSend("GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	hd, p := tw.read()
	if hd.Type != ipc.TypeRequest || !strings.Contains(string(p), "/fast") {
		t.Fatalf("the worker's first frame: %v %q, want the request for /fast (the upload is not whole)", hd.Type, p)
	}
	// A response's FlagEnd is its Done.
	tw.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, hd.ID, marshalResponse(t, ipc.Response{Status: 200, Body: []byte("fast")})))
	if out := fast.expectClosed(); !strings.HasSuffix(out, "\r\n\r\nfast") {
		t.Fatalf("GET /fast: %q", out)
	}

	slow.rawSend("67890")
	hd, p = tw.expect(ipc.TypeRequest, 0)
	if !strings.Contains(string(p), "/upload") {
		t.Fatalf("the second request: %q, want /upload", p)
	}
	if bh, body := tw.expect(ipc.TypeRequestBody, hd.ID); string(body) != "1234567890" || bh.Flags&ipc.FlagEnd == 0 {
		t.Fatalf("the upload's body frame: %q (flags %d), want the whole body with FlagEnd", body, bh.Flags)
	}
	h.eventually("nothing held by the master", func() bool { return h.p.http.Buffered() == 0 })
}

// Frame by frame, the handler cannot frame a response for the next
// pipelined request: bytes beyond its Content-Length are dropped and the
// connection closed after the declared ones, in one frame or streamed.
func TestHTTPContentLengthIsEnforced(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		h := newHarness(t, harnessOpts{http: true, workers: 1})
		tw := h.readyWorker(0, 1)
		c := h.dial()
		c.rawSend("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
		hd, _ := tw.expect(ipc.TypeRequest, 0)
		lie := "helloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"
		head := ipc.Response{Status: 200, Headers: []string{"Content-Length", "5"}}
		if streamed {
			tw.write(cat(frame(ipc.TypeResponse, hd.ID, marshalResponse(t, head)),
				ipc.AppendFrame(nil, ipc.TypeResponseBody, ipc.FlagEnd, hd.ID, []byte(lie))))
		} else {
			head.Body = []byte(lie)
			tw.write(ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, hd.ID, marshalResponse(t, head)))
		}
		out := c.expectClosed()
		if strings.Count(out, "HTTP/1.1") != 1 || !strings.HasSuffix(out, "\r\n\r\nhello") || !strings.Contains(out, "Content-Length: 5\r\n") {
			t.Fatalf("streamed %v: the client read %q, want one response of the 5 declared bytes, then the close", streamed, out)
		}
		h.hook.Wait(t, waitTimeout, "the line naming the worker", func(e logEntry) bool {
			return strings.Contains(e.Msg, "more than its Content-Length") && e.Data["worker_id"] == 0 && e.Data["target"] == "/a"
		})
	}
}
