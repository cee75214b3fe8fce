package ipc

import (
	"encoding/binary"
	"fmt"
)

// HTTP frames. An HTTP listener's master parses requests in its reactor and
// sends each to a worker as one event that lasts from TypeRequest until the
// worker ends its response (a frame with FlagEnd): no Done is written for
// it. One request per connection is at a worker at a time — pipelined
// requests wait in the master and are answered in order — so the frame id
// is the connection id.
const (
	// TypeRequest (M→W, msgpack Request) starts a request on connection id.
	TypeRequest Type = 16
	// TypeRequestBody (M→W, raw bytes) carries the next piece of the
	// current request's body; FlagEnd marks the last piece (possibly empty).
	// Sent only when Request.BodyFollows is true.
	TypeRequestBody Type = 17
	// TypeResponse (W→M, msgpack Response) carries the status, headers and
	// possibly body of the response to connection id's current request.
	// FlagEnd: the response is complete; otherwise TypeResponseBody frames
	// follow and the last has FlagEnd.
	TypeResponse Type = 18
	// TypeResponseBody (W→M, raw bytes) carries more response body; each is
	// written to the client as it arrives (streaming).
	TypeResponseBody Type = 19
	// TypeCancel (M→W, no payload): the client of connection id's current
	// request went away. The worker should stop working on it; it must
	// still end the response (FlagEnd). Without FlagEnd the client only
	// shut down its side and may still read what the worker sends; with
	// FlagEnd the connection is closed and the master drops the rest (a
	// worker waiting for TypeWindow credit stops waiting). A FlagEnd
	// cancel may follow a plain one.
	TypeCancel Type = 20
	// TypeWindow (both ways, 4-byte big-endian count) grants flow-control
	// credit for connection id's current request, between peers that
	// both use it (Hello.Flow): M→W for response body bytes the master has
	// written to the client, W→M for request body bytes the handler has
	// read. See FlowWindow.
	TypeWindow Type = 21
)

// FlowWindow is the flow-control window of one request's body in each
// direction, when the worker's hello sets Flow. A worker stops sending
// response body frames while FlowWindow bytes or more of the response's
// body (counted from its first frame) are not yet credited by TypeWindow
// frames; the master credits them as it writes them to the client, so a
// slow client slows the handler down instead of filling memory. Likewise
// the master stops forwarding a request's body while FlowWindow bytes or
// more of it are not yet credited by the worker, which credits them as the
// handler reads them. Either side may overshoot by the one frame it was
// sending. Credits travel in batches (each side may hold back less than
// half a window), and a credit for a request that has ended is ignored.
const FlowWindow = 256 << 10

// AppendWindow appends a TypeWindow payload granting n bytes.
func AppendWindow(dst []byte, n uint32) []byte { return binary.BigEndian.AppendUint32(dst, n) }

// ParseWindow decodes a TypeWindow payload.
func ParseWindow(p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("window frame with a %d-byte payload (want 4)", len(p))
	}
	return binary.BigEndian.Uint32(p), nil
}

// FlagEnd marks the last frame of a request body or a response.
const FlagEnd uint8 = 0x01

// FlagAbort, with FlagEnd on a response frame, says the response is
// incomplete (the handler panicked or wrote less than its Content-Length
// after part of it was sent): the master closes the connection without
// completing the framing, so the client sees the cut instead of a response
// that looks whole.
const FlagAbort uint8 = 0x02

// FlagRetry, with FlagEnd on a request's first TypeResponse (whose payload
// is then ignored), hands the request back unstarted: a worker that is
// exiting (a fatal error) found it waiting in its channel, sent ahead
// (Hello.Prefetch). The master sends it to another worker if it can (the
// request had no body following it), else answers 503 with Retry-After.
const FlagRetry uint8 = 0x04

// MaxInlineBody is the largest body the master puts inside a Request (and
// a worker should put inside a Response); longer bodies travel in body
// frames of at most this size.
const MaxInlineBody = 64 << 10

// Request is the payload of TypeRequest.
type Request struct {
	Method string `msgpack:"method"`
	// Target is the request-target as the client sent it ("/path?q=1").
	Target string `msgpack:"target"`
	// Proto is "HTTP/1.1" or "HTTP/1.0".
	Proto string `msgpack:"proto"`
	// Headers are name, value, name, value… in the order received, names
	// as the client wrote them (compare case-insensitively).
	Headers []string `msgpack:"headers"`
	// ContentLength is the body length, or -1 when it is chunked.
	ContentLength int64 `msgpack:"content_length"`
	// Body is the whole body when it is at most MaxInlineBody bytes and
	// arrived with the head; otherwise empty and BodyFollows is true.
	Body []byte `msgpack:"body,omitempty"`
	// BodyFollows says TypeRequestBody frames follow, the last with FlagEnd.
	BodyFollows bool `msgpack:"body_follows,omitempty"`
	// BodyAt is [offset, length] of the whole body in the request arena
	// (arena.go), for a worker that said `arenas`: no body frames follow.
	BodyAt []uint64 `msgpack:"body_at,omitempty"`
	// Remote is the client's address ("ip:port").
	Remote string `msgpack:"remote"`
	// Listener is the index of the listener in the config.
	Listener int `msgpack:"listener"`
}

// Response is the payload of TypeResponse.
type Response struct {
	Status int `msgpack:"status"`
	// Headers are name, value, … as the handler set them. The master adds
	// Date, and Content-Length or Transfer-Encoding: chunked as needed; it
	// removes hop-by-hop headers it manages itself (Connection, Keep-Alive,
	// Transfer-Encoding).
	Headers []string `msgpack:"headers"`
	// Body is the body, or its first piece when the frame has no FlagEnd.
	Body []byte `msgpack:"body,omitempty"`
	// BodyAt is [offset, length] of the body in the worker's answer arena,
	// in place of Body, in a frame with FlagRef (arena.go).
	BodyAt []uint64 `msgpack:"body_at,omitempty"`
}
