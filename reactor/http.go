package reactor

// An incremental, strict HTTP/1.1 request parser for the reactor loops
// (RFC 9112). It follows the calling convention of Splitter: the connection
// passes its unconsumed bytes, starting at the request, extended by new bytes
// only; the parser remembers how far it has looked, so a head that arrives a
// byte at a time is scanned once. Requests that RFC 9112 lets a server refuse,
// and that front-end/back-end disagreement turns into request smuggling, are
// refused: the error says which status to answer before closing.
//
// A connection's life with an HTTPParser p:
//
//	n, req, err := p.ParseHead(buf) // n == 0: read more; err: answer err's Status, close
//	buf = buf[n:]                   // send req to a worker
//	for done := false; !done; {     // Body reports done at once without a body
//		n, data, done, err = p.Body(buf) // n == 0 && !done: read more
//		forward(data); buf = buf[n:]
//	}
//	p.Reset() // the next pipelined request starts at buf
//
// The parser is differentially fuzzed against net/http's request reader
// (FuzzHTTPRequest); where it is deliberately stricter, the test says so.

import (
	"bytes"
	"math"
	"net/netip"
	"strconv"
)

// Defaults for HTTPLimits fields left at 0.
const (
	// HTTPDefaultMaxHeaderBytes bounds a request head (request line, header
	// fields and the empty line). 16 KiB is the limit of Node.js and of
	// HAProxy's default buffer: it admits real browser traffic with large
	// cookies (nginx allows 8 KiB per line), while Go's 1 MiB would let
	// 10,000 slow clients pin 10 GiB of master memory before any of them is
	// refused.
	HTTPDefaultMaxHeaderBytes = 16 << 10
	// HTTPDefaultMaxBodyBytes bounds a request body: Swoole's default
	// package_max_length (2 MiB).
	HTTPDefaultMaxBodyBytes = 2 << 20
)

// httpMaxChunkLine bounds a chunk-size line, CRLF included: net/http's limit
// (its bufio buffer), so both refuse the same chunk extensions.
const httpMaxChunkLine = 4096

// HTTPLimits bounds what one request may make the master buffer or forward.
type HTTPLimits struct {
	// MaxHeaderBytes bounds the head, from the first byte of the request
	// line to the end of the empty line, and separately the trailer section
	// of a chunked body. Over it: 414 while the request line is still
	// incomplete, 431 otherwise. 0 or less selects
	// HTTPDefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxBodyBytes bounds the decoded body (package_max_length). A larger
	// Content-Length is refused with 413 before any body byte is read; a
	// chunked body with 413 as soon as a chunk size would exceed it. 0 or
	// less selects HTTPDefaultMaxBodyBytes.
	MaxBodyBytes int64
}

func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = HTTPDefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = HTTPDefaultMaxBodyBytes
	}
	return l
}

// HTTPError is a request the parser refuses: Status is the response the
// master should send (400, 413, 414, 417, 431, 501 or 505) before it closes
// the connection, Reason a short stable text for the log. The parser returns
// preallocated values, so refusing a request does not allocate.
//
// errors.Is(err, ErrBadRequest) (or any other sentinel below) matches every
// HTTPError with the sentinel's Status; errors.Is on an HTTPError with a
// Reason matches only that Status and Reason.
type HTTPError struct {
	Status int
	Reason string
}

func (e *HTTPError) Error() string {
	if e.Reason == "" {
		return "http: status " + strconv.Itoa(e.Status)
	}
	return "http: " + e.Reason + " (status " + strconv.Itoa(e.Status) + ")"
}

// Is reports whether target is an *HTTPError with e's Status and either no
// Reason (a sentinel) or e's Reason.
func (e *HTTPError) Is(target error) bool {
	t, ok := target.(*HTTPError)
	return ok && t.Status == e.Status && (t.Reason == "" || t.Reason == e.Reason)
}

// Sentinels for errors.Is: one per status the parser answers with.
var (
	// ErrBadRequest (400): malformed or ambiguous request.
	ErrBadRequest = &HTTPError{Status: 400}
	// ErrBodyTooLarge (413): the body exceeds HTTPLimits.MaxBodyBytes.
	ErrBodyTooLarge = &HTTPError{Status: 413}
	// ErrURITooLong (414): the request line alone exceeds
	// HTTPLimits.MaxHeaderBytes.
	ErrURITooLong = &HTTPError{Status: 414}
	// ErrExpectationFailed (417): an Expect other than 100-continue.
	ErrExpectationFailed = &HTTPError{Status: 417}
	// ErrHeaderTooLarge (431): the head or the trailer section exceeds
	// HTTPLimits.MaxHeaderBytes.
	ErrHeaderTooLarge = &HTTPError{Status: 431}
	// ErrNotImplemented (501): a transfer coding other than chunked, or
	// CONNECT.
	ErrNotImplemented = &HTTPError{Status: 501}
	// ErrVersionNotSupported (505): a well-formed HTTP version other than
	// HTTP/1.0 and HTTP/1.1.
	ErrVersionNotSupported = &HTTPError{Status: 505}
)

// The errors the parser returns; Reason texts are stable (tests and logs
// match them).
var (
	errHTTPBareLF        = &HTTPError{400, "line not ended by CRLF"}
	errHTTPBareCR        = &HTTPError{400, "CR not followed by LF"}
	errHTTPRequestLine   = &HTTPError{400, "malformed request line"}
	errHTTPMethod        = &HTTPError{400, "invalid method"}
	errHTTPTarget        = &HTTPError{400, "invalid request-target"}
	errHTTPAbsoluteForm  = &HTTPError{400, "unsupported absolute-form request-target"}
	errHTTPVersion       = &HTTPError{400, "malformed HTTP version"}
	errHTTPFold          = &HTTPError{400, "obsolete line folding or leading whitespace"}
	errHTTPFieldName     = &HTTPError{400, "invalid header field name"}
	errHTTPFieldValue    = &HTTPError{400, "invalid header field value"}
	errHTTPNoHost        = &HTTPError{400, "missing Host header"}
	errHTTPManyHost      = &HTTPError{400, "more than one Host header"}
	errHTTPBadHost       = &HTTPError{400, "invalid Host header"}
	errHTTPContentLength = &HTTPError{400, "invalid Content-Length"}
	errHTTPManyLength    = &HTTPError{400, "conflicting Content-Length headers"}
	errHTTPLengthAndTE   = &HTTPError{400, "both Transfer-Encoding and Content-Length"}
	errHTTP10TE          = &HTTPError{400, "Transfer-Encoding in an HTTP/1.0 request"}
	errHTTPTrailerKey    = &HTTPError{400, "forbidden field name in Trailer header"}
	errHTTPChunkSize     = &HTTPError{400, "invalid chunk size"}
	errHTTPChunkLine     = &HTTPError{400, "chunk line too long"}
	errHTTPChunkEnd      = &HTTPError{400, "chunk data not followed by CRLF"}
	errHTTPChunkOverhead = &HTTPError{400, "chunked encoding contains too much non-data"}
	errHTTPTrailerName   = &HTTPError{400, "invalid trailer field name"}
	errHTTPTrailerValue  = &HTTPError{400, "invalid trailer field value"}
	errHTTPTrailerFold   = &HTTPError{400, "obsolete line folding in trailer"}
	errHTTPBodyTooLarge  = &HTTPError{413, "body exceeds the limit"}
	errHTTPTargetTooLong = &HTTPError{414, "request line exceeds the header limit"}
	errHTTPExpect        = &HTTPError{417, "unsupported expectation"}
	errHTTPHeadTooLarge  = &HTTPError{431, "request head exceeds the header limit"}
	errHTTPTrailerLarge  = &HTTPError{431, "trailer section exceeds the header limit"}
	errHTTPConnect       = &HTTPError{501, "CONNECT not supported"}
	errHTTPCoding        = &HTTPError{501, "unsupported transfer coding"}
	errHTTPVersionNotSup = &HTTPError{505, "unsupported HTTP version"}
)

// HTTPRequest is a parsed request head. The parser owns it: it stays valid
// until Reset, which clears the struct; the next ParseHead reuses the
// Headers slice's storage (clone Headers to keep it longer). The strings
// themselves are immutable and may be kept: they share one allocation, the
// head.
type HTTPRequest struct {
	// Method is the method token as sent (case-sensitive): "GET", "POST"….
	Method string
	// Target is the request-target as sent: "/path?q" (origin-form), "*"
	// (asterisk-form) or "http://host/path" (absolute-form).
	Target string
	// Proto is "HTTP/1.1" or "HTTP/1.0".
	Proto string
	// Headers are name, value, name, value… in the order received; names
	// as sent (compare case-insensitively), values without surrounding
	// spaces and tabs. Host, Content-Length, Transfer-Encoding, Connection
	// and Expect are included as sent.
	Headers []string
	// ContentLength is the body length: -1 when chunked, 0 when there is
	// no body.
	ContentLength int64
	// Chunked reports Transfer-Encoding: chunked (then ContentLength is
	// -1).
	Chunked bool
	// KeepAlive reports whether the connection may carry another request
	// after this one: HTTP/1.1 unless Connection lists "close", HTTP/1.0
	// only when Connection lists "keep-alive" and not "close".
	KeepAlive bool
	// Expect100 reports Expect: 100-continue on an HTTP/1.1 request with a
	// body: the master should answer "100 Continue" before the body comes.
	// (On HTTP/1.0, or without a body, the expectation is ignored.)
	Expect100 bool
	// Host is the authority of an absolute-form target, otherwise the Host
	// header's value ("" when absent, as HTTP/1.0 allows).
	Host string
}

// Parser states.
const (
	httpHead       = iota // ParseHead may be called
	httpBodyLength        // Content-Length body: remaining bytes
	httpChunkSize         // chunked: expecting a chunk-size line
	httpChunkData         // chunked: remaining bytes of the chunk
	httpChunkCRLF         // chunked: the CRLF after chunk data
	httpTrailer           // chunked: trailer fields until the empty line
	httpDone              // body complete; Reset before the next head
	httpFailed            // an error was returned; Reset to reuse
)

// HTTPParser parses the requests of one connection, one at a time. The zero
// value uses the default limits; NewHTTPParser sets others. It keeps state
// between calls (how far it has scanned), so one HTTPParser serves one
// connection and must not be used by two goroutines at once.
type HTTPParser struct {
	lim   HTTPLimits
	req   HTTPRequest
	state uint8

	// Head scanning, as offsets into the buffer passed to ParseHead (they
	// stay valid because the caller only extends that buffer).
	skipCRLF bool // the previous request was a POST: ignore a stray CRLF
	start    int  // first byte of the request line (after a stray CRLF)
	line     int  // first byte of the line being scanned
	scan     int  // the search for LF resumes here
	lines    int  // complete lines seen; 0: the request line is pending

	// From the request line.
	http10             bool
	absHost, absHostTo int // authority of an absolute-form target (absHostTo > 0)
	methodEnd          int // start + len(method)
	targetEnd          int

	// From the header fields.
	fields             int
	lengths            int // Content-Length fields
	length0, length0To int // the first one's value
	lengthConflict     bool
	codings            int // Transfer-Encoding fields
	chunked            bool
	hosts              int
	host0, host0To     int
	connClose          bool
	connKeepAlive      bool
	expectContinue     bool
	expectOther        bool
	trailerForbidden   bool

	// Body.
	remaining int64 // of the Content-Length body or of the current chunk
	decoded   int64 // chunked: bytes of data so far
	excess    int64 // chunked: overhead beyond what the data justifies
	trailer   int   // chunked: bytes of trailer section consumed
}

// NewHTTPParser returns a parser for one connection with limits lim (fields
// at 0 select the defaults).
func NewHTTPParser(lim HTTPLimits) *HTTPParser {
	p := &HTTPParser{}
	p.SetLimits(lim)
	return p
}

// SetLimits changes the limits (fields at 0 select the defaults). It takes
// effect for the next request; call it between requests only.
func (p *HTTPParser) SetLimits(lim HTTPLimits) { p.lim = lim.withDefaults() }

// Reset prepares the parser for the next request on the same connection:
// call it after Body reported done, or after ParseHead returned a request
// without a body when Body is not called. It also revives a parser that
// returned an error. The limits and the Headers slice's storage are kept.
//
// As net/http does, after a POST the next ParseHead ignores up to two CRLF
// that old clients send after a body (RFC 9112 §2.2).
func (p *HTTPParser) Reset() {
	post := p.state != httpHead && p.state != httpFailed && p.req.Method == "POST"
	lim, hdrs := p.lim, p.req.Headers
	for i := range hdrs {
		hdrs[i] = "" // do not pin the previous head's string
	}
	*p = HTTPParser{lim: lim, skipCRLF: post}
	p.req.Headers = hdrs[:0]
}

func (p *HTTPParser) fail(err *HTTPError) (int, *HTTPRequest, error) {
	p.state = httpFailed
	return 0, nil, err
}

// ParseHead parses the request head at the start of buf, the connection's
// unconsumed bytes. It returns
//
//   - n > 0 and the request when buf[:n] is a complete, valid head (n
//     includes the empty line; the body, if any, starts at buf[n]);
//   - n == 0, nil, nil when more bytes are needed;
//   - an *HTTPError when the request must be refused: answer its Status and
//     close the connection. Errors are found as early as possible: each line
//     is checked when its CRLF arrives, and a head that outgrows
//     MaxHeaderBytes is refused without waiting for more.
//
// While ParseHead needs more bytes, the next call must pass a buffer that
// starts at the same byte and holds the same bytes, extended by new ones
// only (it may be a different slice): lines already checked are not scanned
// again, so a head arriving slowly costs O(len) in total. A shorter buffer
// restarts the scan. ParseHead does not modify or retain buf; it allocates
// one string holding the head, from which all the request's strings are cut.
//
// After ParseHead returns a request, call Body (unless the request has no
// body) and then Reset; calling ParseHead again before Reset panics.
func (p *HTTPParser) ParseHead(buf []byte) (n int, req *HTTPRequest, err error) {
	if p.state != httpHead {
		panic("reactor: HTTPParser.ParseHead called before Reset")
	}
	if p.lim.MaxHeaderBytes == 0 {
		p.lim = p.lim.withDefaults()
	}
	if len(buf) < p.scan {
		p.restartHead()
	}
	for p.skipCRLF {
		switch {
		case p.start == 4 || len(buf) > p.start && buf[p.start] != '\r' ||
			len(buf) > p.start+1 && buf[p.start+1] != '\n':
			p.skipCRLF = false
		case len(buf) < p.start+2:
			return 0, nil, nil // maybe a stray CRLF
		default:
			p.start += 2
		}
		p.line, p.scan = p.start, p.start
	}
	// Never look past the limit: the work per head is bounded by it.
	limit := min(len(buf), p.start+p.lim.MaxHeaderBytes)
	for {
		i := bytes.IndexByte(buf[p.scan:limit], '\n')
		if i < 0 {
			p.scan = limit
			if limit-p.start >= p.lim.MaxHeaderBytes {
				if p.lines == 0 {
					return p.fail(errHTTPTargetTooLong)
				}
				return p.fail(errHTTPHeadTooLarge)
			}
			return 0, nil, nil
		}
		lf := p.scan + i
		if lf == p.line || buf[lf-1] != '\r' {
			return p.fail(errHTTPBareLF)
		}
		line := buf[p.line : lf-1]
		if p.lines == 0 {
			if e := p.requestLine(buf, line); e != nil {
				return p.fail(e)
			}
		} else if len(line) == 0 {
			if e := p.endOfHead(buf); e != nil {
				return p.fail(e)
			}
			return lf + 1, p.build(buf[:lf+1]), nil
		} else if e := p.headerLine(buf, p.line, line); e != nil {
			return p.fail(e)
		}
		p.lines++
		p.line, p.scan = lf+1, lf+1
	}
}

// restartHead forgets a partial scan (the caller passed a shorter buffer).
func (p *HTTPParser) restartHead() {
	lim, hdrs, skip := p.lim, p.req.Headers, p.skipCRLF || p.start > 0
	*p = HTTPParser{lim: lim, skipCRLF: skip}
	p.req.Headers = hdrs
}

// requestLine checks request-line = method SP request-target SP
// HTTP-version (line without its CRLF).
func (p *HTTPParser) requestLine(buf, line []byte) *HTTPError {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return errHTTPRequestLine // includes HTTP/0.9's "GET /"
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return errHTTPRequestLine
	}
	sp2 += sp1 + 1
	method, target, version := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	switch {
	case string(version) == "HTTP/1.1":
	case string(version) == "HTTP/1.0":
		p.http10 = true
	case len(version) == 8 && string(version[:5]) == "HTTP/" && isDigit(version[5]) &&
		version[6] == '.' && isDigit(version[7]):
		return errHTTPVersionNotSup
	default:
		return errHTTPVersion
	}
	if !isToken(method) {
		return errHTTPMethod
	}
	if string(method) == "CONNECT" {
		// A tunnel cannot be handed to a worker as a request.
		return errHTTPConnect
	}
	if e := p.requestTarget(target, p.start+sp1+1); e != nil {
		return e
	}
	p.methodEnd = p.start + sp1
	p.targetEnd = p.start + sp2
	return nil
}

// requestTarget accepts origin-form ("/path?query"), asterisk-form ("*") and
// absolute-form with an http or https scheme and a host. Like net/url it
// refuses control bytes anywhere and malformed %-escapes in the path, and
// keeps bytes above 0x7f and the query as they are.
func (p *HTTPParser) requestTarget(t []byte, at int) *HTTPError {
	if len(t) == 0 {
		return errHTTPTarget
	}
	for _, c := range t {
		if c < ' ' || c == 0x7f {
			return errHTTPTarget
		}
	}
	if t[0] == '/' {
		if !validPathEscapes(t) {
			return errHTTPTarget
		}
		return nil
	}
	if len(t) == 1 && t[0] == '*' {
		return nil
	}
	// absolute-form: scheme "://" authority path-abempty [ "?" query ].
	// Anything else net/url would accept ("mailto:x", "http:/x",
	// userinfo, an empty host) cannot name a resource of this server.
	var skip int
	switch {
	case len(t) >= 7 && asciiEqualFold(t[:7], "http://"):
		skip = 7
	case len(t) >= 8 && asciiEqualFold(t[:8], "https://"):
		skip = 8
	default:
		if isAlpha(t[0]) {
			return errHTTPAbsoluteForm
		}
		return errHTTPTarget
	}
	rest := t[skip:]
	end := len(rest)
	if i := bytes.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	if !validAuthority(rest[:end]) {
		return errHTTPAbsoluteForm
	}
	if !validPathEscapes(rest[end:]) {
		return errHTTPTarget
	}
	p.absHost, p.absHostTo = at+skip, at+skip+end
	return nil
}

// validPathEscapes reports whether every '%' before the first '?' of t
// starts a %XX escape, as net/url requires of a path.
func validPathEscapes(t []byte) bool {
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		t = t[:q]
	}
	for {
		i := bytes.IndexByte(t, '%')
		if i < 0 {
			return true
		}
		if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
			return false
		}
		t = t[i+3:]
	}
}

// validAuthority accepts host [ ":" port ] where host is a non-empty
// reg-name of unreserved and sub-delims characters (no %-escapes) or a
// bracketed IPv6 address without zone, and port is digits.
func validAuthority(a []byte) bool {
	if len(a) == 0 {
		return false
	}
	host, port := a, []byte(nil)
	if a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		host, port = a[:end+1], a[end+1:]
		inner := host[1:end]
		if bytes.IndexByte(inner, '%') >= 0 || bytes.IndexByte(inner, '[') >= 0 {
			return false
		}
		ip, err := netip.ParseAddr(string(inner))
		if err != nil || !ip.Is6() {
			return false
		}
	} else {
		if i := bytes.IndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i:]
		}
		if len(host) == 0 {
			return false
		}
		for _, c := range host {
			if !httpRegName[c] {
				return false
			}
		}
	}
	if len(port) > 0 {
		if port[0] != ':' {
			return false
		}
		for _, c := range port[1:] {
			if !isDigit(c) {
				return false
			}
		}
	}
	return true
}

// headerLine checks field-line = field-name ":" OWS field-value OWS (line
// without its CRLF, starting at buf[at]) and records what framing and
// connection handling depend on.
func (p *HTTPParser) headerLine(buf []byte, at int, line []byte) *HTTPError {
	name, value, vstart, e := splitField(line, errHTTPFold, errHTTPFieldName, errHTTPFieldValue)
	if e != nil {
		return e
	}
	p.fields++
	vstart += at
	switch len(name) {
	case 4:
		if asciiEqualFold(name, "host") {
			p.hosts++
			if p.hosts == 1 {
				p.host0, p.host0To = vstart, vstart+len(value)
			}
			for _, c := range value {
				if !httpHostByte[c] {
					return errHTTPBadHost
				}
			}
		}
	case 6:
		if asciiEqualFold(name, "expect") {
			switch {
			case len(value) == 0:
			case asciiEqualFold(value, "100-continue"):
				p.expectContinue = true
			default:
				p.expectOther = true
			}
		}
	case 7:
		if asciiEqualFold(name, "trailer") && listHasToken(value, "transfer-encoding", "trailer", "content-length") {
			p.trailerForbidden = true
		}
	case 10:
		if asciiEqualFold(name, "connection") {
			if listHasToken(value, "close", "", "") {
				p.connClose = true
			}
			if listHasToken(value, "keep-alive", "", "") {
				p.connKeepAlive = true
			}
		}
	case 14:
		if asciiEqualFold(name, "content-length") {
			p.lengths++
			if p.lengths == 1 {
				p.length0, p.length0To = vstart, vstart+len(value)
			} else if !bytes.Equal(value, buf[p.length0:p.length0To]) {
				p.lengthConflict = true
			}
		}
	case 17:
		if asciiEqualFold(name, "transfer-encoding") {
			p.codings++
			p.chunked = asciiEqualFold(value, "chunked")
		}
	}
	return nil
}

// splitField splits a header or trailer field line into its name and its
// value without surrounding whitespace, at offset vstart of line, checking
// both.
func splitField(line []byte, fold, badName, badValue *HTTPError) (name, value []byte, vstart int, e *HTTPError) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, 0, fold
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return nil, nil, 0, badName
	}
	name = line[:colon]
	if !isToken(name) {
		return nil, nil, 0, badName // includes a space before the colon
	}
	vstart = colon + 1
	end := len(line)
	for vstart < end && (line[vstart] == ' ' || line[vstart] == '\t') {
		vstart++
	}
	for end > vstart && (line[end-1] == ' ' || line[end-1] == '\t') {
		end--
	}
	value = line[vstart:end]
	for _, c := range value {
		if !httpValueByte[c] {
			if c == '\r' {
				return nil, nil, 0, errHTTPBareCR
			}
			return nil, nil, 0, badValue
		}
	}
	return name, value, vstart, nil
}

// endOfHead applies the rules that need the whole head: Host, framing and
// expectations.
func (p *HTTPParser) endOfHead(buf []byte) *HTTPError {
	switch {
	case p.hosts > 1:
		return errHTTPManyHost
	case p.hosts == 0 && !p.http10:
		return errHTTPNoHost
	}
	if p.codings > 0 {
		switch {
		case p.http10:
			// RFC 9112 §6.1: framing is faulty; net/http ignores the field.
			return errHTTP10TE
		case p.lengths > 0:
			// RFC 9112 §6.1 allows refusing; it is the classic smuggling pair.
			return errHTTPLengthAndTE
		case p.codings > 1 || !p.chunked:
			return errHTTPCoding
		case p.trailerForbidden:
			return errHTTPTrailerKey
		}
	}
	if p.lengths > 0 {
		if p.lengthConflict {
			return errHTTPManyLength
		}
		n, ok := parseContentLength(buf[p.length0:p.length0To])
		if !ok {
			return errHTTPContentLength
		}
		if n > p.lim.MaxBodyBytes {
			return errHTTPBodyTooLarge
		}
		p.remaining = n
	}
	if p.expectOther {
		return errHTTPExpect
	}
	return nil
}

// parseContentLength parses 1*DIGIT up to 2^63-1.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		d := int64(c - '0')
		if !isDigit(c) || n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// build cuts the request's strings from one copy of the head and fills
// p.req.
func (p *HTTPParser) build(head []byte) *HTTPRequest {
	s := string(head)
	r := &p.req
	hdrs := r.Headers[:0]
	*r = HTTPRequest{
		Method:    s[p.start:p.methodEnd],
		Target:    s[p.methodEnd+1 : p.targetEnd],
		Proto:     "HTTP/1.1",
		KeepAlive: !p.connClose,
	}
	if p.http10 {
		r.Proto = "HTTP/1.0"
		r.KeepAlive = !p.connClose && p.connKeepAlive
	}
	if p.hosts == 1 {
		r.Host = s[p.host0:p.host0To]
	}
	if p.absHostTo > 0 {
		r.Host = s[p.absHost:p.absHostTo]
	}
	// The lines were checked while scanning; here they are only cut.
	if cap(hdrs) < 2*p.fields {
		hdrs = make([]string, 0, 2*p.fields)
	}
	i := p.targetEnd + len(" HTTP/1.1\r\n")
	for range p.fields {
		eol := i + bytes.IndexByte(head[i:], '\r')
		colon := i + bytes.IndexByte(head[i:eol], ':')
		vs, ve := colon+1, eol
		for head[vs] == ' ' || head[vs] == '\t' {
			vs++
		}
		for ve > vs && (head[ve-1] == ' ' || head[ve-1] == '\t') {
			ve--
		}
		hdrs = append(hdrs, s[i:colon], s[vs:ve])
		i = eol + 2
	}
	r.Headers = hdrs
	p.scan = 0 // from now on relative to the line Body is looking at
	switch {
	case p.chunked:
		r.Chunked, r.ContentLength = true, -1
		r.Expect100 = p.expectContinue && !p.http10
		p.state = httpChunkSize
	case p.remaining > 0:
		r.ContentLength = p.remaining
		r.Expect100 = p.expectContinue && !p.http10
		p.state = httpBodyLength
	default:
		p.state = httpDone
	}
	return r
}

// Body decodes the body of the request ParseHead returned. buf holds the
// bytes that follow what was consumed so far (the first call: the bytes
// after the head), under the same convention as ParseHead. It returns
//
//   - n, the bytes of buf consumed (framing included), and data, decoded
//     body bytes: always a sub-slice of buf (valid while buf is), never a
//     copy. For Content-Length bodies data is buf[:n]; for chunked bodies
//     each call returns at most one chunk's (part of) data and consumes the
//     chunk framing around it, so data may be empty while n > 0;
//   - done once the body (and for chunked bodies, the trailer section) has
//     been consumed; the next request starts at buf[n]. Trailer fields are
//     checked like header fields and then discarded;
//   - n == 0 and !done when more bytes are needed;
//   - an *HTTPError when the body is malformed or exceeds MaxBodyBytes
//     (413): answer its Status (the response may already be under way:
//     then just close) and close.
//
// Call Body until it reports done, then Reset. For a request without a body
// Body returns (0, nil, true, nil). Body does not modify or retain buf and
// does not allocate. Calling it before ParseHead returned a request panics.
func (p *HTTPParser) Body(buf []byte) (n int, data []byte, done bool, err error) {
	switch p.state {
	case httpDone:
		return 0, nil, true, nil
	case httpHead, httpFailed:
		panic("reactor: HTTPParser.Body called without a parsed head")
	case httpBodyLength:
		k := int(min(int64(len(buf)), p.remaining))
		p.remaining -= int64(k)
		if p.remaining == 0 {
			p.state = httpDone
		}
		return k, buf[:k], p.state == httpDone, nil
	}
	for {
		switch p.state {
		case httpChunkSize:
			k, e := p.chunkSize(buf[n:])
			if e != nil {
				p.state = httpFailed
				return 0, nil, false, e
			}
			if k == 0 {
				return n, nil, false, nil
			}
			n += k
		case httpChunkData:
			k := int(min(int64(len(buf)-n), p.remaining))
			if k == 0 {
				return n, nil, false, nil
			}
			p.remaining -= int64(k)
			if p.remaining == 0 {
				p.state = httpChunkCRLF
			}
			return n + k, buf[n : n+k], false, nil
		case httpChunkCRLF:
			if len(buf)-n < 2 {
				return n, nil, false, nil
			}
			if buf[n] != '\r' || buf[n+1] != '\n' {
				p.state = httpFailed
				return 0, nil, false, errHTTPChunkEnd
			}
			n += 2
			p.state = httpChunkSize
		case httpTrailer:
			k, e := p.trailerLine(buf[n:])
			if e != nil {
				p.state = httpFailed
				return 0, nil, false, e
			}
			if k == 0 {
				return n, nil, false, nil
			}
			n += k
			if p.state == httpDone {
				return n, nil, true, nil
			}
		}
	}
}

// LengthRemaining is how many bytes of a Content-Length body Body has yet
// to consume: 0 when the parser is not in one (a chunked body, no body,
// done). A caller may read that many bytes into a buffer of its own and
// pass them to Body, which then returns them in place.
func (p *HTTPParser) LengthRemaining() int64 {
	if p.state != httpBodyLength {
		return 0
	}
	return p.remaining
}

// crlfLine finds the next line of buf that ends within limit bytes,
// resuming the scan where the previous call stopped. It returns the index
// of the line's LF (the line is buf[:lf-1]), or -1 with a nil error when
// more bytes are needed, or -1 with tooLong when limit bytes hold no LF, or
// with errHTTPBareLF when the LF is not preceded by CR.
func (p *HTTPParser) crlfLine(buf []byte, limit int, tooLong *HTTPError) (int, *HTTPError) {
	end := min(len(buf), limit)
	i := bytes.IndexByte(buf[min(p.scan, end):end], '\n')
	if i < 0 {
		if end == limit {
			return -1, tooLong
		}
		p.scan = end
		return -1, nil
	}
	lf := min(p.scan, end) + i
	p.scan = 0
	if lf == 0 || buf[lf-1] != '\r' {
		return -1, errHTTPBareLF
	}
	return lf, nil
}

// chunkSize consumes a chunk-size line: chunk-size [ chunk-ext ] CRLF. As
// net/http it ignores extensions (anything up to the CRLF but a CR) and
// trailing whitespace, bounds the line to 4096 bytes and refuses a body whose
// extensions outweigh its data. It returns 0 when the line is incomplete.
func (p *HTTPParser) chunkSize(buf []byte) (int, *HTTPError) {
	lf, err := p.crlfLine(buf, httpMaxChunkLine, errHTTPChunkLine)
	if lf < 0 {
		return 0, err
	}
	line := buf[:lf-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return 0, errHTTPBareCR
	}
	p.excess += int64(len(line)) + 2
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if semi := bytes.IndexByte(line, ';'); semi >= 0 {
		line = line[:semi]
	}
	if len(line) == 0 || len(line) > 16 {
		return 0, errHTTPChunkSize
	}
	var size uint64
	for _, c := range line {
		v := unhex(c)
		if v > 15 {
			return 0, errHTTPChunkSize
		}
		size = size<<4 | uint64(v)
	}
	if size > uint64(p.lim.MaxBodyBytes-p.decoded) {
		return 0, errHTTPBodyTooLarge
	}
	// net/http's rule: 16 bytes of overhead per chunk plus twice the data
	// are fair; more than 16 KiB beyond that is an attack on our CPU.
	p.excess = max(p.excess-16-2*min(int64(size), 1<<40), 0)
	if p.excess > 16<<10 {
		return 0, errHTTPChunkOverhead
	}
	p.decoded += int64(size)
	if size == 0 {
		p.state = httpTrailer
	} else {
		p.remaining = int64(size)
		p.state = httpChunkData
	}
	return lf + 1, nil
}

// trailerLine consumes one line of the trailer section: a field line,
// checked as in the head, or the empty line that ends the body. It returns
// 0 when the line is incomplete.
func (p *HTTPParser) trailerLine(buf []byte) (int, *HTTPError) {
	lf, err := p.crlfLine(buf, p.lim.MaxHeaderBytes-p.trailer, errHTTPTrailerLarge)
	if lf < 0 {
		return 0, err
	}
	p.trailer += lf + 1
	if lf == 1 {
		p.state = httpDone
		return 2, nil
	}
	if _, _, _, e := splitField(buf[:lf-1], errHTTPTrailerFold, errHTTPTrailerName, errHTTPTrailerValue); e != nil {
		return 0, e
	}
	return lf + 1, nil
}

// listHasToken reports whether the comma-separated list v holds a, b or c
// (non-empty ones), compared ASCII case-insensitively after trimming spaces
// and tabs, as net/http's httpguts.HeaderValuesContainsToken does.
func listHasToken(v []byte, a, b, c string) bool {
	for {
		item, rest, more := bytes.Cut(v, []byte{','})
		v = rest
		for len(item) > 0 && (item[0] == ' ' || item[0] == '\t') {
			item = item[1:]
		}
		for len(item) > 0 && (item[len(item)-1] == ' ' || item[len(item)-1] == '\t') {
			item = item[:len(item)-1]
		}
		if asciiEqualFold(item, a) || b != "" && asciiEqualFold(item, b) || c != "" && asciiEqualFold(item, c) {
			return true
		}
		if !more {
			return false
		}
	}
}

// asciiEqualFold reports whether b equals the lower-case ASCII string s,
// ignoring the case of b's ASCII letters.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !httpTchar[c] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isHex(c byte) bool   { return unhex(c) < 16 }

// unhex returns the value of hex digit c, or 255.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// byteSet returns a table with true for the bytes in s and, when alnum is
// set, for ASCII letters and digits.
func byteSet(alnum bool, s string) (t [256]bool) {
	for i := range s {
		t[s[i]] = true
	}
	if alnum {
		for c := '0'; c <= '9'; c++ {
			t[c] = true
		}
		for c := 'a'; c <= 'z'; c++ {
			t[c], t[c-'a'+'A'] = true, true
		}
	}
	return t
}

var (
	// httpTchar: token characters (RFC 9110 §5.6.2).
	httpTchar = byteSet(true, "!#$%&'*+-.^_`|~")
	// httpRegName: unreserved and sub-delims (RFC 3986 §3.2.2), for the
	// host of an absolute-form target.
	httpRegName = byteSet(true, "-._~!$&'()*+,;=")
	// httpHostByte: the bytes net/http accepts in a Host header
	// (httpguts.ValidHostHeader).
	httpHostByte = byteSet(true, "!$%&()*+,-.:;=[']_~")
	// httpValueByte: field-vchar, SP and HTAB (RFC 9110 §5.5); obs-text
	// (0x80-0xff) included.
	httpValueByte = func() (t [256]bool) {
		for c := 0x20; c < 0x7f; c++ {
			t[c] = true
		}
		for c := 0x80; c <= 0xff; c++ {
			t[c] = true
		}
		t['\t'] = true
		return t
	}()
)
