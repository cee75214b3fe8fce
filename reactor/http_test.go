package reactor_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/drover-dev/drover/reactor"
)

// httpOutcome is what a connection made of one request in a stream.
type httpOutcome struct {
	req      *reactor.HTTPRequest // a copy; nil until the head is complete
	body     []byte               // decoded body bytes received
	done     bool                 // head and body complete
	consumed int                  // bytes of the stream the request took
	err      error                // why the parser refused it
}

func (o httpOutcome) String() string {
	switch {
	case o.err != nil:
		return fmt.Sprintf("refused: %v", o.err)
	case !o.done:
		return fmt.Sprintf("incomplete after %d bytes (head %v)", o.consumed, o.req != nil)
	}
	return fmt.Sprintf("%+v body %q consumed %d", *o.req, o.body, o.consumed)
}

// httpFeed simulates a connection reading data through p. The stream arrives
// in pieces whose sizes cycle through sizes (nil: all at once); after each
// piece it calls ParseHead or Body until they need more bytes, consuming
// what they return by moving the unconsumed bytes to the front of a fresh
// buffer (so a parser that retained a slice would see garbage). It returns
// the outcome of at most max requests, stopping at the first error or
// incomplete request, and checks the invariants of every call through t.
func httpFeed(t testing.TB, p *reactor.HTTPParser, data []byte, sizes []int, max int) []httpOutcome {
	t.Helper()
	var out []httpOutcome
	var cur httpOutcome
	var buf []byte
	total := 0 // bytes consumed by finished requests
	pos := 0   // bytes of data delivered
	for piece := 0; ; piece++ {
		// Run the parser on what is buffered.
		for {
			if cur.req == nil {
				n, req, err := p.ParseHead(buf)
				if n < 0 || n > len(buf) || (err != nil || req == nil) && n != 0 || err == nil && (req == nil) != (n == 0) {
					t.Fatalf("ParseHead(%d bytes) = %d, %v, %v: inconsistent", len(buf), n, req != nil, err)
				}
				if err != nil {
					cur.err = err
					return append(out, cur)
				}
				if n == 0 {
					break
				}
				r := *req
				r.Headers = slices.Clone(req.Headers)
				cur.req = &r
				cur.consumed += n
				buf = append([]byte(nil), buf[n:]...)
				if !req.Chunked && req.ContentLength == 0 {
					// Body must say "done" at once for a bodiless request.
					if n, data, done, err := p.Body(buf); n != 0 || len(data) != 0 || !done || err != nil {
						t.Fatalf("Body without a body = %d, %q, %v, %v", n, data, done, err)
					}
				}
			}
			n, data, done, err := p.Body(buf)
			if n < 0 || n > len(buf) || len(data) > n || err != nil && (n != 0 || done) {
				t.Fatalf("Body(%d bytes) = %d, %d bytes, %v, %v: inconsistent", len(buf), n, len(data), done, err)
			}
			if err != nil {
				cur.err = err
				return append(out, cur)
			}
			if len(data) > 0 && !bytes.Contains(buf[:n], data) {
				t.Fatalf("Body data %q is not part of the consumed bytes %q", data, buf[:n])
			}
			cur.body = append(cur.body, data...)
			cur.consumed += n
			buf = append([]byte(nil), buf[n:]...)
			if done {
				cur.done = true
				total += cur.consumed
				out = append(out, cur)
				if len(out) == max {
					return out
				}
				cur = httpOutcome{}
				p.Reset()
				continue
			}
			if n == 0 {
				break
			}
		}
		if pos == len(data) {
			return append(out, cur)
		}
		size := len(data) - pos
		if len(sizes) > 0 {
			size = min(max1(sizes[piece%len(sizes)]), size)
		}
		buf = append(buf, data[pos:pos+size]...)
		pos += size
	}
}

func max1(n int) int { return max(n, 1) }

// httpSameOutcome reports how got differs from want.
func httpSameOutcome(want, got httpOutcome) error {
	switch {
	case (want.err == nil) != (got.err == nil) || want.err != nil && want.err != got.err:
		return fmt.Errorf("error %v, want %v", got.err, want.err)
	case want.err != nil:
		return nil
	case want.done != got.done || (want.req == nil) != (got.req == nil):
		return fmt.Errorf("got %v, want %v", got, want)
	case want.req != nil && !httpSameRequest(want.req, got.req):
		return fmt.Errorf("request %+v, want %+v", *got.req, *want.req)
	case !bytes.Equal(want.body, got.body) || want.consumed != got.consumed && want.done:
		return fmt.Errorf("got %v, want %v", got, want)
	}
	return nil
}

func httpSameRequest(a, b *reactor.HTTPRequest) bool {
	return a.Method == b.Method && a.Target == b.Target && a.Proto == b.Proto &&
		slices.Equal(a.Headers, b.Headers) && a.ContentLength == b.ContentLength &&
		a.Chunked == b.Chunked && a.KeepAlive == b.KeepAlive && a.Expect100 == b.Expect100 &&
		a.Host == b.Host
}

// httpChunkings are the read patterns every table case is replayed with.
var httpChunkings = [][]int{{1}, {2}, {3}, {7}, {1, 5, 2, 11}, {64}}

// httpParse runs data whole and in every chunking, checks they agree and
// returns the whole run's first outcome.
func httpParse(t *testing.T, lim reactor.HTTPLimits, data string) httpOutcome {
	t.Helper()
	whole := httpFeed(t, reactor.NewHTTPParser(lim), []byte(data), nil, 1)[0]
	for _, sizes := range httpChunkings {
		got := httpFeed(t, reactor.NewHTTPParser(lim), []byte(data), sizes, 1)[0]
		if err := httpSameOutcome(whole, got); err != nil {
			t.Fatalf("read in pieces of %v: %v", sizes, err)
		}
	}
	return whole
}

// Limits for table tests: small, to reach them with short inputs.
var httpTestLimits = reactor.HTTPLimits{MaxHeaderBytes: 256, MaxBodyBytes: 64}

// httpReq builds the HTTPRequest a table case expects.
func httpReq(method, target, proto, host string, cl int64, keepAlive bool, headers ...string) reactor.HTTPRequest {
	return reactor.HTTPRequest{Method: method, Target: target, Proto: proto, Headers: headers,
		ContentLength: cl, Chunked: cl == -1, KeepAlive: keepAlive, Host: host}
}

func TestHTTPValid(t *testing.T) {
	chunkedHead := "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name, in string
		want     reactor.HTTPRequest
		body     string
		rest     int // bytes after the request
	}{
		{"get", "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
			httpReq("GET", "/index.html?q=1", "HTTP/1.1", "example.com", 0, true, "Host", "example.com", "User-Agent", "t"), "", 0},
		{"names_as_sent_values_trimmed", "GET / HTTP/1.1\r\nhOsT:  \t a \t\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9 \"q\"\r\n\r\n",
			httpReq("GET", "/", "HTTP/1.1", "a", 0, true, "hOsT", "a", "X-Empty", "", "X-Obs", "caf\xc3\xa9 \"q\""), "", 0},
		{"post_length_then_next", "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n",
			httpReq("POST", "/f", "HTTP/1.1", "h", 5, true, "Host", "h", "Content-Length", "5"), "hello", len("GET / HTTP/1.1\r\n")},
		{"length_leading_zeros", "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n1234567",
			httpReq("PUT", "/f", "HTTP/1.1", "h", 7, true, "Host", "h", "Content-Length", "007"), "1234567", 0},
		{"length_zero", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
			httpReq("POST", "/", "HTTP/1.1", "h", 0, true, "Host", "h", "Content-Length", "0"), "", 0},
		{"length_duplicates_identical", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab",
			httpReq("POST", "/", "HTTP/1.1", "h", 2, true, "Host", "h", "Content-Length", "2", "content-length", "2"), "ab", 0},
		{"length_at_limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("b", 64),
			httpReq("POST", "/", "HTTP/1.1", "h", 64, true, "Host", "h", "Content-Length", "64"), strings.Repeat("b", 64), 0},
		{"chunked_ext_trailers", chunkedHead + "5;ext=1;q=\"a b\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nnext",
			httpReq("POST", "/up", "HTTP/1.1", "x", -1, true, "Host", "x", "Transfer-Encoding", "chunked"), "hello world", 4},
		{"chunked_hex_case_zeros_trailing_ws", chunkedHead + "0A \t\r\n0123456789\r\n000\r\n\r\n",
			httpReq("POST", "/up", "HTTP/1.1", "x", -1, true, "Host", "x", "Transfer-Encoding", "chunked"), "0123456789", 0},
		{"chunked_coding_case_and_trailer_header", "POST / HTTP/1.1\r\nHost: x\r\nTrailer: X-Sum\r\nTransfer-Encoding:  CHUNKED\r\n\r\n1\r\na\r\n0\r\nX-Sum: 9\r\n\r\n",
			httpReq("POST", "/", "HTTP/1.1", "x", -1, true, "Host", "x", "Trailer", "X-Sum", "Transfer-Encoding", "CHUNKED"), "a", 0},
		{"chunked_at_limit", chunkedHead + "40\r\n" + strings.Repeat("c", 64) + "\r\n0\r\n\r\n",
			httpReq("POST", "/up", "HTTP/1.1", "x", -1, true, "Host", "x", "Transfer-Encoding", "chunked"), strings.Repeat("c", 64), 0},
		{"head", "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n",
			httpReq("HEAD", "/x", "HTTP/1.1", "h", 0, true, "Host", "h"), "", 0},
		{"http10_closes", "GET / HTTP/1.0\r\n\r\n",
			httpReq("GET", "/", "HTTP/1.0", "", 0, false), "", 0},
		{"http10_keep_alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			httpReq("GET", "/", "HTTP/1.0", "", 0, true, "Connection", "Keep-Alive"), "", 0},
		{"http10_keep_alive_and_close", "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: x, Close\r\n\r\n",
			httpReq("GET", "/", "HTTP/1.0", "", 0, false, "Connection", "keep-alive", "Connection", "x, Close"), "", 0},
		{"http11_close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade ,\tclose \r\n\r\n",
			httpReq("GET", "/", "HTTP/1.1", "h", 0, false, "Host", "h", "Connection", "upgrade ,\tclose"), "", 0},
		{"http11_not_close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, x-close\r\n\r\n",
			httpReq("GET", "/", "HTTP/1.1", "h", 0, true, "Host", "h", "Connection", "closed, x-close"), "", 0},
		{"empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			httpReq("GET", "/", "HTTP/1.1", "", 0, true, "Host", ""), "", 0},
		{"absolute_form", "GET HTTP://Example.com:8080/p?q=%zz HTTP/1.1\r\nHost: other\r\n\r\n",
			httpReq("GET", "HTTP://Example.com:8080/p?q=%zz", "HTTP/1.1", "Example.com:8080", 0, true, "Host", "other"), "", 0},
		{"absolute_form_ipv6_query", "GET https://[::ffff:1.2.3.4]:443?x HTTP/1.1\r\nHost: h\r\n\r\n",
			httpReq("GET", "https://[::ffff:1.2.3.4]:443?x", "HTTP/1.1", "[::ffff:1.2.3.4]:443", 0, true, "Host", "h"), "", 0},
		{"asterisk_form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
			httpReq("OPTIONS", "*", "HTTP/1.1", "h", 0, true, "Host", "h"), "", 0},
		{"target_bytes_kept", "GET /a%20b/\xe2\x82\xac#frag?%x HTTP/1.1\r\nHost: h\r\n\r\n",
			httpReq("GET", "/a%20b/\xe2\x82\xac#frag?%x", "HTTP/1.1", "h", 0, true, "Host", "h"), "", 0},
		{"extension_method", "PURGE-IT! //x HTTP/1.1\r\nHost: h\r\n\r\n",
			httpReq("PURGE-IT!", "//x", "HTTP/1.1", "h", 0, true, "Host", "h"), "", 0},
		{"head_at_limit", "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("v", 256-len("GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n")) + "\r\n\r\n",
			httpReq("GET", "/", "HTTP/1.1", "h", 0, true, "Host", "h", "X", strings.Repeat("v", 256-len("GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n"))), "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := httpParse(t, httpTestLimits, tc.in)
			if o.err != nil || !o.done {
				t.Fatalf("got %v, want a request", o)
			}
			if !httpSameRequest(o.req, &tc.want) {
				t.Fatalf("request\n%+v, want\n%+v", *o.req, tc.want)
			}
			if string(o.body) != tc.body || o.consumed != len(tc.in)-tc.rest {
				t.Fatalf("body %q consumed %d, want %q and %d", o.body, o.consumed, tc.body, len(tc.in)-tc.rest)
			}
		})
	}
}

func TestHTTPExpect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool // Expect100
	}{
		{"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx", true},
		{"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", false},             // nothing to continue
		{"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", false}, // RFC 9110 §10.1.1: ignored
		{"POST / HTTP/1.1\r\nHost: h\r\nExpect:\r\nContent-Length: 1\r\n\r\nx", false},
	} {
		o := httpParse(t, httpTestLimits, tc.in)
		if o.err != nil || !o.done || o.req.Expect100 != tc.want {
			t.Errorf("%q: got %v, want Expect100 %v", tc.in, o, tc.want)
		}
	}
}

func TestHTTPRefused(t *testing.T) {
	chunked := "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	get := func(target string) string { return "GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n" }
	hdr := func(fields string) string { return "GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n" }
	for _, tc := range []struct {
		name, in string
		status   int
		reason   string // part of the Reason
	}{
		// Request line.
		{"http09", "GET /\r\n\r\n", 400, "request line"},
		{"double_space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "version"},
		{"trailing_space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "version"},
		{"lower_case_version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400, "version"},
		{"long_version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400, "version"},
		{"http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "version"},
		{"http12", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "version"},
		{"http09_version", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "version"},
		{"h2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "version"},
		{"method_not_token", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "method"},
		{"leading_space", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "version"},
		{"leading_empty_line", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request line"},
		{"connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501, "CONNECT"},
		{"bare_lf_request_line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "CRLF"},
		{"bare_cr_request_line", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request-target"},
		// Request target.
		{"target_ctl", get("/a\x01b"), 400, "request-target"},
		{"target_tab", get("/a\tb"), 400, "request-target"},
		{"target_del", get("/a\x7fb"), 400, "request-target"},
		{"target_bad_escape", get("/%zz"), 400, "request-target"},
		{"target_short_escape", get("/a%4?b"), 400, "request-target"},
		{"target_relative", get("x/y"), 400, "absolute-form"},
		{"target_digit", get("0:80"), 400, "request-target"},
		{"target_opaque", get("mailto:x@y"), 400, "absolute-form"},
		{"target_userinfo", get("http://u:p@h/"), 400, "absolute-form"},
		{"target_empty_host", get("http:///x"), 400, "absolute-form"},
		{"target_other_scheme", get("ftp://h/"), 400, "absolute-form"},
		{"target_host_escape", get("http://h%41/"), 400, "absolute-form"},
		{"target_ipv6_zone", get("http://[fe80::1%25eth0]/"), 400, "absolute-form"},
		{"target_bracketed_ipv4", get("http://[1.2.3.4]/"), 400, "absolute-form"},
		{"target_bad_port", get("http://h:8x/"), 400, "absolute-form"},
		{"target_two_colons", get("http://h:1:2/"), 400, "absolute-form"},
		{"target_path_escape", get("http://h/%g0"), 400, "request-target"},
		// Header fields.
		{"space_before_colon", hdr("X-A : b\r\n"), 400, "field name"},
		{"space_in_name", hdr("X A: b\r\n"), 400, "field name"},
		{"empty_name", hdr(": b\r\n"), 400, "field name"},
		{"no_colon", hdr("X-A b\r\n"), 400, "field name"},
		{"non_ascii_name", hdr("X-\xc3\xa9: b\r\n"), 400, "field name"},
		{"obs_fold", hdr("X-A: b\r\n  c\r\n"), 400, "folding"},
		{"obs_fold_tab", hdr("X-A: b\r\n\tc\r\n"), 400, "folding"},
		{"first_field_indented", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "folding"},
		{"nul_in_value", hdr("X-A: b\x00c\r\n"), 400, "field value"},
		{"del_in_value", hdr("X-A: b\x7fc\r\n"), 400, "field value"},
		{"cr_in_value", hdr("X-A: b\rc\r\n"), 400, "CR"},
		{"cr_before_crlf", hdr("X-A: b\r\r\n"), 400, "CR"},
		{"bare_lf_field", hdr("X-A: b\n"), 400, "CRLF"},
		{"bare_lf_end", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "CRLF"},
		{"lf_lf", "GET / HTTP/1.1\n\n", 400, "CRLF"},
		{"no_host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "missing Host"},
		{"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "more than one Host"},
		{"two_hosts_http10", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"},
		{"host_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "Host"},
		{"host_slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "Host"},
		{"absolute_form_no_host", "GET http://h/ HTTP/1.1\r\n\r\n", 400, "missing Host"},
		// Framing.
		{"length_and_chunked", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "both"},
		{"chunked_and_length", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400, "both"},
		{"lengths_differ", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, "conflicting"},
		{"lengths_same_value_other_text", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\nabc", 400, "conflicting"},
		{"length_plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400, "Content-Length"},
		{"length_minus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"},
		{"length_list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400, "Content-Length"},
		{"length_inner_space", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400, "Content-Length"},
		{"length_empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400, "Content-Length"},
		{"length_hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400, "Content-Length"},
		{"length_overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", 400, "Content-Length"},
		{"length_over_limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n", 413, "body"},
		{"length_max_int64", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", 413, "body"},
		{"coding_gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "coding"},
		{"coding_gzip_chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "coding"},
		{"coding_chunked_twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "coding"},
		{"coding_identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501, "coding"},
		{"coding_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0"},
		{"trailer_declares_length", "POST / HTTP/1.1\r\nHost: h\r\nTrailer: X, content-length\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Trailer"},
		{"expect_other", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417, "expectation"},
		{"expect_list", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\nContent-Length: 1\r\n\r\nx", 417, "expectation"},
		// Chunked bodies.
		{"chunk_size_not_hex", chunked + "g\r\n", 400, "chunk size"},
		{"chunk_size_0x", chunked + "0x5\r\nhello\r\n0\r\n\r\n", 400, "chunk size"},
		{"chunk_size_sign", chunked + "+5\r\nhello\r\n0\r\n\r\n", 400, "chunk size"},
		{"chunk_size_empty", chunked + "\r\n", 400, "chunk size"},
		{"chunk_size_bws_before_ext", chunked + "5 ;x\r\nhello\r\n0\r\n\r\n", 400, "chunk size"},
		{"chunk_size_17_digits", chunked + "00000000000000001\r\nx\r\n0\r\n\r\n", 400, "chunk size"},
		{"chunk_size_huge", chunked + "ffffffffffffffff\r\n", 413, "body"},
		{"chunk_over_limit", chunked + "41\r\n", 413, "body"},
		{"chunks_over_limit", chunked + "40\r\n" + strings.Repeat("c", 64) + "\r\n1\r\n", 413, "body"},
		{"chunk_no_crlf_after_data", chunked + "5\r\nhelloX\r\n0\r\n\r\n", 400, "CRLF"},
		{"chunk_lf_after_data", chunked + "5\r\nhello\n0\r\n\r\n", 400, "CRLF"},
		{"chunk_bare_lf_size", chunked + "5\nhello\r\n0\r\n\r\n", 400, "CRLF"},
		{"chunk_bare_cr_size", chunked + "5\r;x\r\nhello\r\n0\r\n\r\n", 400, "CR"},
		{"chunk_line_too_long", chunked + "1;" + strings.Repeat("e", 4093) + "\r\nx\r\n0\r\n\r\n", 400, "too long"},
		{"chunk_extension_flood", chunked + strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n", 400, "non-data"},
		{"trailer_space_before_colon", chunked + "0\r\nX : y\r\n\r\n", 400, "trailer field name"},
		{"trailer_fold", chunked + "0\r\nX: y\r\n z\r\n\r\n", 400, "folding"},
		{"trailer_bare_lf", chunked + "0\r\nX: y\n\r\n", 400, "CRLF"},
		{"trailer_bare_lf_end", chunked + "0\r\n\n", 400, "CRLF"},
		{"trailer_nul", chunked + "0\r\nX: \x00\r\n\r\n", 400, "trailer field value"},
		{"trailer_too_large", chunked + "0\r\nX: " + strings.Repeat("t", 300) + "\r\n\r\n", 431, "trailer"},
		// Limits.
		{"head_over_limit", hdr("X: " + strings.Repeat("v", 256) + "\r\n"), 431, "head"},
		{"head_one_over_limit", "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("v", 257-len("GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n")) + "\r\n\r\n", 431, "head"},
		{"request_line_over_limit", "GET /" + strings.Repeat("a", 300), 414, "request line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := httpParse(t, httpTestLimits, tc.in)
			var he *reactor.HTTPError
			if !errors.As(o.err, &he) {
				t.Fatalf("got %v, want status %d", o, tc.status)
			}
			if he.Status != tc.status || !strings.Contains(he.Reason, tc.reason) {
				t.Fatalf("got %d %q, want %d and a reason with %q", he.Status, he.Reason, tc.status, tc.reason)
			}
		})
	}
}

// TestHTTPIncomplete: every proper prefix of a valid request is "need more
// bytes", never an error or a request.
func TestHTTPIncomplete(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n",
	} {
		for k := 0; k < len(in); k++ {
			o := httpFeed(t, reactor.NewHTTPParser(httpTestLimits), []byte(in[:k]), nil, 1)[0]
			if o.err != nil || o.done {
				t.Fatalf("prefix %q: %v, want incomplete", in[:k], o)
			}
		}
	}
}

// TestHTTPEverySplit: a request (or refusal) arriving in two pieces, split
// at every index, gives the same outcome as arriving whole.
func TestHTTPEverySplit(t *testing.T) {
	for _, in := range []string{
		"GET /index.html HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n1\r\n!\r\n0\r\nX: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
	} {
		whole := httpFeed(t, reactor.NewHTTPParser(httpTestLimits), []byte(in), nil, 1)[0]
		for k := 1; k < len(in); k++ {
			got := httpFeed(t, reactor.NewHTTPParser(httpTestLimits), []byte(in), []int{k, len(in)}, 1)[0]
			if err := httpSameOutcome(whole, got); err != nil {
				t.Fatalf("%q split at %d: %v", in, k, err)
			}
		}
	}
}

// TestHTTPPipelined: ten requests in one buffer come out in order, whole
// and in every chunking; a stray CRLF after a POST body is skipped.
func TestHTTPPipelined(t *testing.T) {
	reqs := []string{
		"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\r\n",
		"HEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /4 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n\r\n\r\n",
		"GET /5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"PUT /6 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"DELETE /8 HTTP/1.1\r\nHost: h\r\nX: 1\r\nX: 2\r\n\r\n",
		"POST /9 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nf\r\n1\r\ng\r\n0\r\nT: 1\r\n\r\n",
		"GET /10 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
	}
	stream := []byte(strings.Join(reqs, ""))
	bodies := []string{"", "abc", "", "de", "", "", "", "", "fg", ""}
	for _, sizes := range append(httpChunkings, nil) {
		out := httpFeed(t, reactor.NewHTTPParser(httpTestLimits), stream, sizes, 100)
		if len(out) != 11 || out[10].req != nil || out[10].err != nil {
			t.Fatalf("sizes %v: %d outcomes, want 10 requests and nothing after: %v", sizes, len(out), out[len(out)-1])
		}
		consumed := 0
		for i, o := range out[:10] {
			if !o.done || o.req.Target != strings.Fields(reqs[i])[1] || string(o.body) != bodies[i] {
				t.Fatalf("sizes %v: request %d: %v", sizes, i, o)
			}
			consumed += o.consumed
		}
		if consumed != len(stream) {
			t.Fatalf("sizes %v: consumed %d of %d bytes", sizes, consumed, len(stream))
		}
	}
	// The stray CRLF is tolerated only after a POST.
	bad := "GET / HTTP/1.1\r\nHost: h\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
	out := httpFeed(t, reactor.NewHTTPParser(httpTestLimits), []byte(bad), nil, 2)
	if len(out) != 2 || !errors.Is(out[1].err, reactor.ErrBadRequest) {
		t.Fatalf("CRLF after GET: %v", out)
	}
}

// TestHTTPAllocs: a parser reused across requests allocates once per head
// (the string the request's strings are cut from) and never for a body.
func TestHTTPAllocs(t *testing.T) {
	req := []byte("POST /submit?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: y\r\n\r\n")
	p := reactor.NewHTTPParser(reactor.HTTPLimits{})
	allocs := testing.AllocsPerRun(100, func() {
		n, _, err := p.ParseHead(req)
		if err != nil || n == 0 {
			t.Fatalf("ParseHead: %d, %v", n, err)
		}
		for rest := req[n:]; ; {
			k, _, done, err := p.Body(rest)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				break
			}
			rest = rest[k:]
		}
		p.Reset()
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per request, want 1", allocs)
	}
}

// TestHTTPMisuse: the parser panics rather than guess when called out of
// order, and Reset revives it after an error.
func TestHTTPMisuse(t *testing.T) {
	p := reactor.NewHTTPParser(reactor.HTTPLimits{})
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("Body before ParseHead", func() { p.Body(nil) })
	if _, _, err := p.ParseHead([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	mustPanic("ParseHead before Reset", func() { p.ParseHead(nil) })
	p.Reset()
	if _, _, err := p.ParseHead([]byte("BAD\r\n")); err == nil {
		t.Fatal("no error")
	}
	p.Reset()
	if n, _, err := p.ParseHead([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")); n == 0 || err != nil {
		t.Fatalf("after Reset: %d, %v", n, err)
	}
}

// TestHTTPShorterBuffer: a buffer shorter than the part already scanned
// restarts the scan instead of trusting stale offsets.
func TestHTTPShorterBuffer(t *testing.T) {
	p := reactor.NewHTTPParser(reactor.HTTPLimits{})
	if n, _, err := p.ParseHead([]byte("GET / HTTP/1.1\r\nHost: h\r\nX: y")); n != 0 || err != nil {
		t.Fatalf("%d, %v", n, err)
	}
	n, req, err := p.ParseHead([]byte("GET /b HTTP/1.0\r\n\r\n"))
	if err != nil || n == 0 || req.Target != "/b" || req.Proto != "HTTP/1.0" {
		t.Fatalf("%d, %+v, %v", n, req, err)
	}
}

func TestHTTPErrorIs(t *testing.T) {
	o := httpParse(t, httpTestLimits, "GET / HTTP/1.1\r\nHost : x\r\n\r\n")
	if !errors.Is(o.err, reactor.ErrBadRequest) || errors.Is(o.err, reactor.ErrHeaderTooLarge) {
		t.Fatalf("errors.Is(%v): want ErrBadRequest only", o.err)
	}
	var he *reactor.HTTPError
	if !errors.As(o.err, &he) || he.Status != 400 || !strings.Contains(he.Error(), "field name") {
		t.Fatalf("error %#v", o.err)
	}
}
