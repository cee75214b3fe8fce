package reactor_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"strings"
	"testing"
	_ "unsafe" // go:linkname, for net/http's request reader

	"github.com/drover-dev/drover/reactor"
)

// httpReadRequest is the request reader of net/http's server, before
// http.ReadRequest deletes the Host header (the server's checks below need
// it). net/http marks it for linkname ("Do not remove or change the type
// signature", go.dev/issue/67401).
//
//go:linkname httpReadRequest net/http.readRequest
func httpReadRequest(b *bufio.Reader) (*http.Request, error)

// Limits of the differential test: the head limit equals net/http's 4 KiB
// bufio buffer, which bounds its trailer section and chunk lines the same
// way; bodies are practically unbounded (inputs are small).
var httpFuzzLimits = reactor.HTTPLimits{MaxHeaderBytes: 4096, MaxBodyBytes: 1 << 40}

// stdKind is net/http's verdict on the first request of a stream.
type stdKind int

const (
	stdAccept     stdKind = iota
	stdReject             // an error other than running out of input
	stdIncomplete         // io.EOF or io.ErrUnexpectedEOF: wants more input
	stdAmbiguous          // "suspiciously long trailer": EOF or over 4 KiB
)

type stdOutcome struct {
	kind     stdKind
	err      error
	req      *http.Request
	body     []byte
	consumed int
}

// stdRead reads the first request of data as net/http's server does:
// readRequest, then the checks of (*conn).readRequest (version, Host, field
// names and values), then the whole body.
func stdRead(data []byte) stdOutcome {
	r := bytes.NewReader(data)
	br := bufio.NewReader(r)
	verdict := func(err error) stdOutcome {
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			err.Error() == "http: unexpected EOF reading trailer":
			return stdOutcome{kind: stdIncomplete, err: err}
		case strings.Contains(err.Error(), "suspiciously long trailer"):
			return stdOutcome{kind: stdAmbiguous, err: err}
		}
		return stdOutcome{kind: stdReject, err: err}
	}
	req, err := httpReadRequest(br)
	if err != nil {
		return verdict(err)
	}
	isH2Upgrade := req.Method == "PRI" && len(req.Header) == 0 && req.URL.Path == "*" && req.Proto == "HTTP/2.0"
	if req.ProtoMajor != 1 && !(req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*") {
		return stdOutcome{kind: stdReject, err: errors.New("unsupported protocol version"), req: req}
	}
	hosts, haveHost := req.Header["Host"]
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && !isH2Upgrade && req.Method != "CONNECT" {
		return stdOutcome{kind: stdReject, err: errors.New("missing required Host header"), req: req}
	}
	if len(hosts) == 1 && !stdValidHost(hosts[0]) {
		return stdOutcome{kind: stdReject, err: errors.New("malformed Host header"), req: req}
	}
	for k, vv := range req.Header {
		if !stdValidName(k) {
			return stdOutcome{kind: stdReject, err: errors.New("invalid header name"), req: req}
		}
		for _, v := range vv {
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				return stdOutcome{kind: stdReject, err: errors.New("invalid header value"), req: req}
			}
		}
	}
	delete(req.Header, "Host")
	body, err := io.ReadAll(req.Body)
	if err != nil {
		o := verdict(err)
		o.req = req
		return o
	}
	return stdOutcome{kind: stdAccept, req: req, body: body, consumed: len(data) - r.Len() - br.Buffered()}
}

// stdValidHost is httpguts.ValidHostHeader.
func stdValidHost(h string) bool {
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			strings.IndexByte("!$%&()*+,-.:;=[']_~", c) >= 0) {
			return false
		}
	}
	return true
}

// stdValidName is httpguts.ValidHeaderFieldName.
func stdValidName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// httpHasBareLF reports whether data holds a LF not preceded by CR.
func httpHasBareLF(data []byte) bool {
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			return true
		}
	}
	return false
}

// httpDivergence names the deliberate difference from net/http that
// explains ours refusing a request net/http accepts (or reads on), or ""
// when there is none. Each class is detected narrowly: our parser's reason
// and a fact of the input or of net/http's parse must both point at it.
//
// Where drover is stricter than net/http, on purpose:
//
//  1. Bare LF line endings in the head and trailers: net/http accepts them
//     (RFC 9112 §2.2 allows it), drover refuses (400) so that it never
//     frames a request differently from a proxy in front of it.
//  2. Obsolete line folding: net/http joins folded lines; RFC 9112 §5.2 lets
//     a server refuse them (400), which drover does.
//  3. Transfer-Encoding with Content-Length: net/http drops Content-Length;
//     drover refuses (400, RFC 9112 §6.1 allows it): the classic smuggling
//     pair.
//  4. Transfer-Encoding in an HTTP/1.0 request: net/http ignores the field;
//     RFC 9112 §6.1 calls the framing faulty, and drover refuses (400).
//  5. CONNECT: a tunnel cannot be handed to a worker (501).
//  6. Absolute-form targets other than http(s)://host[:port]…: net/url
//     also accepts other schemes, opaque forms, userinfo, an empty host,
//     %-escapes and more characters in the host; drover refuses them (400).
//  7. Versions HTTP/1.2 to HTTP/1.9 and the h2c preface "PRI * HTTP/2.0":
//     net/http takes them as HTTP/1.x or an upgrade; drover answers 505.
//  8. Expect: net/http's request reader ignores it (its server answers 417
//     later, for more cases than RFC 9110 §10.1.1 allows); drover answers
//     417 to expectations other than 100-continue.
//  9. Limits: drover's head limit (431/414 here, over 4 KiB) where net/http
//     has 1 MiB; and 413 for a body over MaxBodyBytes, which net/http only
//     notices by running out of input.
//  10. Trailer field names with a space: net/http's MIME reader keeps them
//     (its server checks names only in the head); drover checks trailer
//     fields as it checks header fields (400).
func httpDivergence(ours httpOutcome, std stdOutcome, data []byte) string {
	var he *reactor.HTTPError
	if !errors.As(ours.err, &he) {
		return ""
	}
	lower := bytes.ToLower(data)
	req := std.req
	switch {
	case he.Reason == "line not ended by CRLF" && httpHasBareLF(data):
		return "bare LF"
	case (he.Reason == "obsolete line folding or leading whitespace" || he.Reason == "obsolete line folding in trailer") &&
		(bytes.Contains(data, []byte("\n ")) || bytes.Contains(data, []byte("\n\t"))):
		return "obs-fold"
	case he.Reason == "both Transfer-Encoding and Content-Length" && req != nil &&
		slices.Equal(req.TransferEncoding, []string{"chunked"}) && bytes.Contains(lower, []byte("content-length")):
		return "Transfer-Encoding with Content-Length"
	case he.Reason == "Transfer-Encoding in an HTTP/1.0 request" && req != nil && req.ProtoMinor == 0 &&
		bytes.Contains(lower, []byte("transfer-encoding")):
		return "Transfer-Encoding in HTTP/1.0"
	case he.Status == 501 && req != nil && req.Method == "CONNECT":
		return "CONNECT"
	case he.Reason == "unsupported absolute-form request-target" && req != nil &&
		!strings.HasPrefix(req.RequestURI, "/") && req.RequestURI != "*":
		return "absolute-form"
	case he.Status == 505 && req != nil && (req.ProtoMajor == 1 || req.Proto == "HTTP/2.0" && req.Method == "PRI"):
		return "HTTP version"
	case he.Status == 417 && req != nil && len(req.Header["Expect"]) > 0:
		return "Expect"
	case (he.Status == 431 || he.Status == 414) && len(data) > httpFuzzLimits.MaxHeaderBytes:
		return "head limit"
	case he.Status == 413 && std.kind == stdIncomplete:
		return "body limit"
	case he.Reason == "invalid trailer field name" && req != nil &&
		slices.ContainsFunc(slices.Collect(maps.Keys(req.Trailer)), func(k string) bool { return strings.Contains(k, " ") }):
		return "trailer name with space"
	}
	return ""
}

// httpCompare checks our outcome for the first request of data against
// net/http's.
func httpCompare(t *testing.T, data []byte, ours httpOutcome, std stdOutcome) {
	t.Helper()
	switch {
	case std.kind == stdAmbiguous && (ours.err != nil || !ours.done):
		return
	case std.kind == stdAccept && ours.err == nil && ours.done:
		httpCompareRequests(t, ours, std)
		return
	case std.kind == stdReject && ours.err != nil:
		return
	case std.kind == stdIncomplete && ours.err == nil && !ours.done:
		return
	case std.kind == stdIncomplete && ours.err != nil:
		// We judge each line when its CRLF arrives; net/http judges the
		// request line and the Host after the whole head. Complete the
		// head: then net/http must refuse too.
		std = stdRead(append(bytes.Clone(data), "\r\n\r\n"...))
		if std.kind == stdReject || std.kind == stdAmbiguous {
			return
		}
	case std.kind == stdReject && ours.err == nil && !ours.done:
		// net/http judges a last line cut by EOF; we wait for its CRLF.
		// Once it arrives, we must refuse too.
		more := httpFeed(t, reactor.NewHTTPParser(httpFuzzLimits), append(bytes.Clone(data), "\r\n"...), nil, 1)[0]
		if more.err != nil {
			return
		}
	}
	if d := httpDivergence(ours, std, data); d != "" {
		return
	}
	t.Fatalf("input %q:\nours:     %v\nnet/http: kind %d, err %v", data, ours, std.kind, std.err)
}

// httpCompareRequests checks what both accepted: method, target, version,
// host, framing, connection handling, the header fields (as net/http's
// reader rearranges them), the body and the bytes consumed.
func httpCompareRequests(t *testing.T, ours httpOutcome, std stdOutcome) {
	t.Helper()
	o, s := ours.req, std.req
	if o.Method != s.Method || o.Target != s.RequestURI || o.Proto != s.Proto || o.Host != s.Host ||
		o.ContentLength != s.ContentLength || o.KeepAlive == s.Close {
		t.Fatalf("request %+v\nnet/http: %s %q %s host %q length %d close %v",
			*o, s.Method, s.RequestURI, s.Proto, s.Host, s.ContentLength, s.Close)
	}
	h := http.Header{}
	for i := 0; i < len(o.Headers); i += 2 {
		h[textproto.CanonicalMIMEHeaderKey(o.Headers[i])] = append(h[textproto.CanonicalMIMEHeaderKey(o.Headers[i])], o.Headers[i+1])
	}
	// What net/http's reader does to the fields: Host and
	// Transfer-Encoding become fields of the Request, identical
	// Content-Length fields are merged, a chunked request's Trailer field
	// becomes Request.Trailer, and Pragma: no-cache implies Cache-Control.
	delete(h, "Host")
	delete(h, "Transfer-Encoding")
	if cl := h["Content-Length"]; len(cl) > 1 {
		h["Content-Length"] = cl[:1]
	}
	if o.Chunked {
		delete(h, "Trailer")
	}
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
	if !reflect.DeepEqual(h, s.Header) {
		t.Fatalf("headers %q\nnet/http: %q", h, s.Header)
	}
	if !bytes.Equal(ours.body, std.body) || ours.consumed != std.consumed {
		t.Fatalf("body %q (%d bytes consumed)\nnet/http: %q (%d)", ours.body, ours.consumed, std.body, std.consumed)
	}
}

// FuzzHTTPRequest is the differential test of the HTTP parser against
// net/http's server-side request reader: the same verdict on the first
// request of data (accepted, refused or waiting for more input), and when
// both accept, the same method, target, version, host, framing, header
// fields, body and consumed length. Deliberate differences are listed at
// httpDivergence. The parser must also reach the same outcome when data
// arrives in two pieces split at split, or a byte at a time.
func FuzzHTTPRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), uint16(5))
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: v\r\n\r\n"), uint16(60))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole := httpFeed(t, reactor.NewHTTPParser(httpFuzzLimits), data, nil, 1)[0]
		k := int(split) % (len(data) + 1)
		for _, sizes := range [][]int{{max(k, 1), len(data)}, {1}} {
			if err := httpSameOutcome(whole, httpFeed(t, reactor.NewHTTPParser(httpFuzzLimits), data, sizes, 1)[0]); err != nil {
				t.Fatalf("input %q in pieces of %v: %v", data, sizes, err)
			}
		}
		httpCompare(t, data, whole, stdRead(data))
	})
}
