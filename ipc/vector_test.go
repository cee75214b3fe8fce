package ipc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The shared test vector (testdata/vectors.json): frames a worker reads or
// writes, encoded by the Go encoders, with their decoded payloads as JSON
// values. TestVectors decodes and re-encodes every case byte for byte; the
// PHP SDK's tests/Runtime/VectorTest.php does the same with its Codec, and
// a handler in another language should too (docs/protocol.md). The file is
// written by `go test ./ipc -run TestVectors -update`.

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the Go encoders")

const vectorFile = "testdata/vectors.json"

// vectorFileDoc is the JSON file: a description of its fields and the cases.
type vectorFileDoc struct {
	About []string     `json:"about"`
	Cases []vectorCase `json:"cases"`
}

// vectorCase is one frame.
type vectorCase struct {
	Name     string `json:"name"`
	Dir      string `json:"dir"` // "M→W", "W→M" or "both"
	Type     Type   `json:"type"`
	TypeName string `json:"type_name"`
	Flags    uint8  `json:"flags"`
	ID       string `json:"id"` // decimal uint64
	// Kind says how to read Payload: none, raw (hex), text (UTF-8), hello,
	// connect, request, response, window (uint32), bind (decimal uint64).
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
	Frame   string          `json:"frame"` // hex of header and payload
}

// vHello, vConnect, vRequest and vResponse are the JSON forms of the
// structured payloads: every key present, byte strings in hex.
type vHello struct {
	Version     int    `json:"version"`
	PID         int    `json:"pid"`
	Concurrency int    `json:"concurrency"`
	Role        string `json:"role"`
	SDK         string `json:"sdk"`
	Flow        bool   `json:"flow"`
	Prefetch    int    `json:"prefetch"`
	CGI         bool   `json:"cgi"`
}

type vConnect struct {
	Listener int    `json:"listener"`
	Remote   string `json:"remote"`
	Local    string `json:"local"`
}

type vRequest struct {
	Method        string   `json:"method"`
	Target        string   `json:"target"`
	Proto         string   `json:"proto"`
	Headers       []string `json:"headers"`
	ContentLength int64    `json:"content_length"`
	BodyHex       string   `json:"body_hex"`
	BodyFollows   bool     `json:"body_follows"`
	Remote        string   `json:"remote"`
	Listener      int      `json:"listener"`
}

type vResponse struct {
	Status  int      `json:"status"`
	Headers []string `json:"headers"`
	BodyHex string   `json:"body_hex"`
}

// encodeVector encodes a case's payload with the Go encoder of its kind.
func encodeVector(kind string, raw json.RawMessage) ([]byte, error) {
	switch kind {
	case "none":
		return nil, nil
	case "raw":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return hex.DecodeString(s)
	case "text":
		var s string
		err := json.Unmarshal(raw, &s)
		return []byte(s), err
	case "hello":
		var v vHello
		if err := strictJSON(raw, &v); err != nil {
			return nil, err
		}
		return Marshal(Hello{Version: v.Version, PID: v.PID, Concurrency: v.Concurrency, Role: v.Role, SDK: v.SDK, Flow: v.Flow, Prefetch: v.Prefetch, CGI: v.CGI})
	case "connect":
		var v vConnect
		if err := strictJSON(raw, &v); err != nil {
			return nil, err
		}
		return Marshal(ConnInfo{Listener: v.Listener, Remote: v.Remote, Local: v.Local})
	case "request", "request_cgi":
		var v vRequest
		if err := strictJSON(raw, &v); err != nil {
			return nil, err
		}
		body, err := hex.DecodeString(v.BodyHex)
		if err != nil {
			return nil, err
		}
		r := &Request{Method: v.Method, Target: v.Target, Proto: v.Proto, Headers: v.Headers,
			ContentLength: v.ContentLength, Body: body, BodyFollows: v.BodyFollows, Remote: v.Remote, Listener: v.Listener}
		if kind == "request_cgi" {
			return AppendRequestCGI(nil, r), nil
		}
		return AppendRequest(nil, r), nil
	case "response":
		var v vResponse
		if err := strictJSON(raw, &v); err != nil {
			return nil, err
		}
		body, err := hex.DecodeString(v.BodyHex)
		if err != nil {
			return nil, err
		}
		return AppendResponse(nil, v.Status, v.Headers, nil, body), nil
	case "window":
		var n uint32
		err := json.Unmarshal(raw, &n)
		return AppendWindow(nil, n), err
	case "bind":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		uid, err := strconv.ParseUint(s, 10, 64)
		return AppendBind(nil, uid), err
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// decodeVector decodes a payload with the Go decoder of its kind (the
// master's for W→M frames, the Go SDK's for M→W ones) into its JSON form.
func decodeVector(kind string, p []byte) (any, error) {
	switch kind {
	case "none":
		if len(p) != 0 {
			return nil, fmt.Errorf("%d-byte payload where none belongs", len(p))
		}
		return nil, nil
	case "raw":
		return hex.EncodeToString(p), nil
	case "text":
		return string(p), nil
	case "hello":
		h, err := DecodeHello(p)
		return vHello{h.Version, h.PID, h.Concurrency, h.Role, h.SDK, h.Flow, h.Prefetch, h.CGI}, err
	case "connect":
		var c ConnInfo
		err := Unmarshal(p, &c)
		return vConnect(c), err
	case "request", "request_cgi":
		var dec RequestDecoder
		var r Request
		decode := dec.Decode
		if kind == "request_cgi" {
			decode = DecodeRequestCGI
		}
		if err := decode(p, &r); err != nil {
			return nil, err
		}
		if r.Headers == nil {
			r.Headers = []string{}
		}
		return vRequest{r.Method, r.Target, r.Proto, r.Headers, r.ContentLength, hex.EncodeToString(r.Body), r.BodyFollows, r.Remote, r.Listener}, nil
	case "response":
		var v ResponseView
		if err := v.Decode(p); err != nil {
			return nil, err
		}
		hs := make([]string, len(v.Headers))
		for i, h := range v.Headers {
			hs[i] = string(h)
		}
		return vResponse{v.Status, hs, hex.EncodeToString(v.Body)}, nil
	case "window":
		return ParseWindow(p)
	case "bind":
		uid, err := ParseBind(p)
		return strconv.FormatUint(uid, 10), err
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// strictJSON decodes raw into v, refusing keys v does not have.
func strictJSON(raw json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc vectorFileDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", vectorFile, err)
	}
	kinds := map[Type]bool{}
	for _, c := range doc.Cases {
		t.Run(c.Name, func(t *testing.T) {
			frame, err := hex.DecodeString(c.Frame)
			if err != nil {
				t.Fatalf("frame hex: %v", err)
			}
			// Decode: the header's fields and the payload's value.
			h, payload, n, err := Next(frame, math.MaxInt32)
			if err != nil || n != len(frame) {
				t.Fatalf("Next: %d of %d bytes, %v", n, len(frame), err)
			}
			if id := strconv.FormatUint(h.ID, 10); h.Type != c.Type || h.Flags != c.Flags || id != c.ID || h.Type.String() != c.TypeName {
				t.Fatalf("header decodes to type %d (%s) flags %#x id %s; the vector says type %d (%s) flags %#x id %s",
					h.Type, h.Type, h.Flags, id, c.Type, c.TypeName, c.Flags, c.ID)
			}
			got, err := decodeVector(c.Kind, payload)
			if err != nil {
				t.Fatalf("decode %s payload: %v", c.Kind, err)
			}
			gotJSON, _ := json.Marshal(got)
			var want, have any
			_ = json.Unmarshal(c.Payload, &want)
			_ = json.Unmarshal(gotJSON, &have)
			if !reflect.DeepEqual(have, want) {
				t.Fatalf("payload decodes to\n%s\nthe vector says\n%s", gotJSON, c.Payload)
			}
			// Re-encode from the vector's values: the same bytes.
			p, err := encodeVector(c.Kind, c.Payload)
			if err != nil {
				t.Fatalf("encode %s payload: %v", c.Kind, err)
			}
			again := AppendFrame(nil, c.Type, c.Flags, h.ID, p)
			if !bytes.Equal(again, frame) {
				t.Fatalf("re-encoded frame differs from the vector at byte %d:\n got %x\nwant %x", firstDiff(again, frame), clip(again), clip(frame))
			}
		})
		kinds[c.Type] = true
	}
	for _, typ := range []Type{TypeHello, TypeStop, TypeConnect, TypeData, TypeClose, TypeSend, TypeCloseConn, TypeDone,
		TypeTask, TypeTaskResult, TypeMessage, TypeBind, TypeRetire,
		TypeRequest, TypeRequestBody, TypeResponse, TypeResponseBody, TypeCancel, TypeWindow} {
		if !kinds[typ] {
			t.Errorf("%s has no case in %s", typ, vectorFile)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// clip shortens a frame for a failure message.
func clip(b []byte) []byte {
	if len(b) > 96 {
		return b[:96]
	}
	return b
}

// writeVectors writes vectorFile from the cases below, encoded by the Go encoders.
func writeVectors(t *testing.T) {
	t.Helper()
	nul := []byte("\x00\x01\x02\xff\xfe\x00binary\x00\r\n\x00")
	var many []string // 100 headers: an array 16 of 200 strings
	for i := range 100 {
		many = append(many, fmt.Sprintf("X-Header-%d", i), strconv.Itoa(i*i))
	}
	eight := many[:16] // 8 headers: the smallest array 16
	fifteen := []string{"A", "1", "B", "2", "C", "3", "D", "4", "E", "5", "F", "6", "G", "7", "H"}
	big := make([]byte, MaxInlineBody) // the largest inline body: a bin 32
	for i := range big {
		big[i] = byte(i * 7)
	}
	str31, str32 := strings.Repeat("a", 31), strings.Repeat("b", 32)
	str255, str256 := strings.Repeat("c", 255), strings.Repeat("d", 256)
	str65536 := strings.Repeat("f", 65536) // a str 32
	get := vRequest{Method: "GET", Target: "/api/items?id=42&sort=desc", Proto: "HTTP/1.1",
		Headers: []string{"Host", "example.com", "User-Agent", "curl/8.5.0", "Accept", "*/*"}, Remote: "192.0.2.7:51234"}

	type c struct {
		name, dir string
		typ       Type
		flags     uint8
		id        uint64
		kind      string
		payload   any
	}
	cases := []c{
		{"hello go", "W→M", TypeHello, 0, 0, "hello", vHello{Version: 1, PID: 4242, Concurrency: 128, Role: RoleWorker, SDK: "go", Flow: true}},
		{"hello php", "W→M", TypeHello, 0, 0, "hello", vHello{Version: 1, PID: 4242, Concurrency: 1, Role: RoleWorker, SDK: "php", Flow: true, Prefetch: 1, CGI: true}},
		{"hello task worker, optional keys left out, large pid", "W→M", TypeHello, 0, 0, "hello", vHello{Version: 1, PID: 4194304, Concurrency: 1, Role: RoleTaskWorker}},
		{"hello max prefetch, concurrency uint16", "W→M", TypeHello, 0, 0, "hello", vHello{Version: 1, PID: 1, Concurrency: 65535, Role: RoleWorker, SDK: "python", Prefetch: MaxPrefetch}},
		{"stop", "M→W", TypeStop, 0, 0, "none", nil},
		{"connect", "M→W", TypeConnect, 0, 42, "connect", vConnect{Listener: 0, Remote: "192.0.2.7:51234", Local: "0.0.0.0:9501"}},
		{"connect unix socket, empty remote, listener 300", "M→W", TypeConnect, 0, 7, "connect", vConnect{Listener: 300, Remote: "", Local: "/run/drover.sock"}},
		{"data with length header", "M→W", TypeData, 0, 42, "raw", hex.EncodeToString([]byte("\x00\x00\x00\x05hello"))},
		{"data binary with NUL bytes", "M→W", TypeData, 0, 42, "raw", hex.EncodeToString(nul)},
		{"close with reason", "M→W", TypeClose, 0, 42, "text", "closed by client"},
		{"close empty reason", "M→W", TypeClose, 0, 42, "text", ""},
		{"send", "W→M", TypeSend, 0, 42, "raw", hex.EncodeToString([]byte("\x00\x00\x00\x05hello"))},
		{"send binary, max id", "W→M", TypeSend, 0, math.MaxUint64, "raw", hex.EncodeToString(nul)},
		{"close_conn", "W→M", TypeCloseConn, 0, 42, "none", nil},
		{"done", "W→M", TypeDone, 0, 42, "none", nil},
		{"done max id", "W→M", TypeDone, 0, math.MaxUint64, "none", nil},
		{"task", "both", TypeTask, 0, 7, "raw", hex.EncodeToString([]byte(`{"job":"resize","id":9}`))},
		{"task empty", "both", TypeTask, 0, 1 << 32, "raw", ""},
		{"task result", "both", TypeTaskResult, 0, 7, "raw", hex.EncodeToString(nul)},
		{"task result abort", "both", TypeTaskResult, FlagAbort, 7, "text", "task queue is full (task_queue_max 1024)"},
		{"message", "both", TypeMessage, 0, 3, "raw", hex.EncodeToString([]byte("ping"))},
		{"message non-ASCII", "both", TypeMessage, 0, 0, "raw", hex.EncodeToString([]byte("grüße, 世界 🚀"))},
		{"bind", "W→M", TypeBind, 0, 42, "bind", "12345"},
		{"bind max uid", "W→M", TypeBind, 0, 42, "bind", strconv.FormatUint(math.MaxUint64, 10)},
		{"retire", "W→M", TypeRetire, 0, 0, "text", "max_memory 128.0MiB would be passed"},
		{"retire now", "W→M", TypeRetire, FlagEnd, 0, "text", "PHP fatal error"},

		{"request GET", "M→W", TypeRequest, 0, 1, "request", get},
		{"request POST inline binary body", "M→W", TypeRequest, 0, 2, "request", vRequest{Method: "POST", Target: "/upload", Proto: "HTTP/1.1",
			Headers:       []string{"Host", "example.com", "Content-Type", "application/octet-stream", "Content-Length", strconv.Itoa(len(nul))},
			ContentLength: int64(len(nul)), BodyHex: hex.EncodeToString(nul), Remote: "[2001:db8::1]:443", Listener: 1}},
		{"request chunked, body follows", "M→W", TypeRequest, 0, 3, "request", vRequest{Method: "PUT", Target: "/stream", Proto: "HTTP/1.1",
			Headers: []string{"Host", "h", "Transfer-Encoding", "chunked"}, ContentLength: -1, BodyFollows: true, Remote: "127.0.0.1:9"}},
		{"request empty body, no headers, HTTP/1.0", "M→W", TypeRequest, 0, 4, "request", vRequest{Method: "GET", Target: "*", Proto: "HTTP/1.0",
			Headers: []string{}, Remote: "10.0.0.1:1"}},
		{"request non-ASCII header values", "M→W", TypeRequest, 0, 5, "request", vRequest{Method: "GET", Target: "/caf%C3%A9", Proto: "HTTP/1.1",
			Headers: []string{"Host", "example.com", "X-Name", "Grüße, 世界", "X-Emoji", "🚀", "X-Latin1", "caf\u00e9"}, Remote: "192.0.2.7:1"}},
		{"request 15 header strings (fixarray)", "M→W", TypeRequest, 0, 6, "request", vRequest{Method: "GET", Target: "/", Proto: "HTTP/1.1", Headers: fifteen, Remote: "1.2.3.4:5"}},
		{"request 8 headers (array 16)", "M→W", TypeRequest, 0, 6, "request", vRequest{Method: "GET", Target: "/", Proto: "HTTP/1.1", Headers: eight, Remote: "1.2.3.4:5"}},
		{"request 100 headers", "M→W", TypeRequest, 0, 6, "request", vRequest{Method: "GET", Target: "/", Proto: "HTTP/1.1", Headers: many, Remote: "1.2.3.4:5"}},
		{"request string length edges", "M→W", TypeRequest, 0, 7, "request", vRequest{Method: "PROPFIND", Target: "/" + str256, Proto: "HTTP/1.1",
			Headers: []string{"X-31", str31, "X-32", str32, "X-255", str255, "X-256", str256, "X-510", str255 + str255}, Remote: "1.2.3.4:5"}},
		{"request max inline body, max integers", "M→W", TypeRequest, 0, math.MaxUint64, "request", vRequest{Method: "POST", Target: "/big", Proto: "HTTP/1.1",
			Headers: []string{"Host", "h"}, ContentLength: math.MaxInt64, BodyHex: hex.EncodeToString(big), BodyFollows: true, Remote: "1.2.3.4:5", Listener: 70000}},
		{"request GET, CGI layout", "M→W", TypeRequest, 0, 1, "request_cgi", vRequest{Method: "GET", Target: "/search?q=drover&lang=en", Proto: "HTTP/1.1",
			Headers: []string{"Host", "example.com:8080", "User-Agent", "curl/8.0", "Accept", "*/*", "Cookie", "sid=abc"}, Remote: "192.0.2.7:51234"}},
		{"request POST inline binary body, CGI layout", "M→W", TypeRequest, 0, 2, "request_cgi", vRequest{Method: "POST", Target: "/upload", Proto: "HTTP/1.1",
			Headers:       []string{"Host", "example.com", "Content-Type", "application/octet-stream", "Content-Length", strconv.Itoa(len(nul))},
			ContentLength: int64(len(nul)), BodyHex: hex.EncodeToString(nul), Remote: "[2001:db8::1]:443", Listener: 1}},
		{"request chunked, body follows, CGI layout", "M→W", TypeRequest, 0, 3, "request_cgi", vRequest{Method: "PUT", Target: "http://h/stream", Proto: "HTTP/1.0",
			Headers: []string{"Transfer-Encoding", "chunked"}, ContentLength: -1, BodyFollows: true, Remote: "/run/drover.sock"}},
		{"request body piece", "M→W", TypeRequestBody, 0, 3, "raw", hex.EncodeToString([]byte("first piece,"))},
		{"request body last piece", "M→W", TypeRequestBody, FlagEnd, 3, "raw", hex.EncodeToString(nul)},
		{"request body empty last piece", "M→W", TypeRequestBody, FlagEnd, 3, "raw", ""},
		{"response complete", "W→M", TypeResponse, FlagEnd, 1, "response", vResponse{Status: 200,
			Headers: []string{"Content-Type", "text/plain; charset=utf-8", "Content-Length", "13"}, BodyHex: hex.EncodeToString([]byte("Hello, World!"))}},
		{"response head, body follows", "W→M", TypeResponse, 0, 1, "response", vResponse{Status: 200, Headers: []string{"Content-Type", "text/event-stream"}}},
		{"response 204 no headers", "W→M", TypeResponse, FlagEnd, 1, "response", vResponse{Status: 204, Headers: []string{}}},
		{"response binary body", "W→M", TypeResponse, FlagEnd, 2, "response", vResponse{Status: 201,
			Headers: []string{"Content-Type", "application/octet-stream"}, BodyHex: hex.EncodeToString(nul)}},
		{"response non-ASCII headers, status 599", "W→M", TypeResponse, FlagEnd, 5, "response", vResponse{Status: 599,
			Headers: []string{"X-Name", "Grüße, 世界", "Set-Cookie", "a=1", "Set-Cookie", "b=2"}, BodyHex: hex.EncodeToString([]byte("é"))}},
		{"response 100 headers", "W→M", TypeResponse, FlagEnd, 6, "response", vResponse{Status: 200, Headers: many}},
		{"response max inline body, string length edges", "W→M", TypeResponse, FlagEnd, math.MaxUint64, "response", vResponse{Status: 200,
			Headers: []string{"X-32", str32, "X-256", str256}, BodyHex: hex.EncodeToString(big)}},
		{"response header value of 64 KiB (str 32)", "W→M", TypeResponse, 0, 8, "response", vResponse{Status: 200, Headers: []string{"X-65536", str65536}}},
		{"response body 255 bytes (bin 8 edge)", "W→M", TypeResponse, FlagEnd, 8, "response", vResponse{Status: 200, Headers: []string{}, BodyHex: hex.EncodeToString(big[:255])}},
		{"response body 256 bytes (bin 16)", "W→M", TypeResponse, FlagEnd, 8, "response", vResponse{Status: 200, Headers: []string{}, BodyHex: hex.EncodeToString(big[:256])}},
		{"response retry", "W→M", TypeResponse, FlagEnd | FlagRetry, 9, "response", vResponse{Status: 503, Headers: []string{}}},
		{"response body piece", "W→M", TypeResponseBody, 0, 1, "raw", hex.EncodeToString([]byte("data: tick\n\n"))},
		{"response body last piece", "W→M", TypeResponseBody, FlagEnd, 1, "raw", hex.EncodeToString(nul)},
		{"response body empty end", "W→M", TypeResponseBody, FlagEnd, 1, "raw", ""},
		{"response body abort", "W→M", TypeResponseBody, FlagEnd | FlagAbort, 1, "raw", ""},
		{"cancel", "M→W", TypeCancel, 0, 1, "none", nil},
		{"cancel closed", "M→W", TypeCancel, FlagEnd, 1, "none", nil},
		{"window", "both", TypeWindow, 0, 1, "window", uint32(FlowWindow / 2)},
		{"window max", "both", TypeWindow, 0, 1, "window", uint32(math.MaxUint32)},
	}
	doc := vectorFileDoc{About: []string{
		"drover's frame protocol test vector (docs/protocol.md), written by `go test ./ipc -run TestVectors -update` from the Go encoders.",
		"A conforming codec decodes every frame to the fields and payload given, and encodes those back to the same bytes.",
		"frame: hex of the 16-byte header and the payload. id: decimal uint64. flags: 1 End, 2 Abort, 4 Retry.",
		"kind: none (empty payload), raw (payload as hex), text (payload as a UTF-8 string), window (uint32), bind (uid, decimal uint64),",
		"hello, connect, request, response: msgpack maps, keys written in the order given, integers and strings in their shortest encoding, body as bin (hex in body_hex).",
		"Optional keys (hello: sdk, flow, prefetch, cgi; request: body, body_follows; response: body) are left out of the map when empty, false or 0; the others are always written.",
		"request_cgi: a Request in the CGI layout (docs/protocol.md), which only the master writes: payload is the request it encodes, and what a reader gets back from $_SERVER's keys (header names in canonical form, remote as address:port).",
	}}
	for _, x := range cases {
		raw, err := json.Marshal(x.payload)
		if err != nil {
			t.Fatal(err)
		}
		p, err := encodeVector(x.kind, raw)
		if err != nil {
			t.Fatalf("%s: %v", x.name, err)
		}
		doc.Cases = append(doc.Cases, vectorCase{Name: x.name, Dir: x.dir, Type: x.typ, TypeName: x.typ.String(), Flags: x.flags,
			ID: strconv.FormatUint(x.id, 10), Kind: x.kind, Payload: raw, Frame: hex.EncodeToString(AppendFrame(nil, x.typ, x.flags, x.id, p))})
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorFile, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
