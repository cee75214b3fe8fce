package reactor_test

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/drover-dev/drover/reactor"
)

// httpBenchWrk is what wrk sends by default (~40 bytes plus a path).
var httpBenchWrk = []byte("GET /hello/world/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")

// httpBenchBrowser is a browser-like request: 12 header fields, ~600 bytes.
var httpBenchBrowser = []byte("GET /search?q=drover+application+server&lang=en&page=2 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.com/search?q=drover\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=1; _ga=GA1.2.1234567890.1700000000\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Priority: u=0, i\r\n\r\n")

// BenchmarkParseHead parses one head per op with a reused parser, as a
// keep-alive connection does; "net/http" is http.ReadRequest on the same
// bytes for scale.
func BenchmarkParseHead(b *testing.B) {
	for _, c := range []struct {
		name string
		req  []byte
	}{{"wrk", httpBenchWrk}, {"browser", httpBenchBrowser}} {
		b.Run(c.name, func(b *testing.B) {
			p := reactor.NewHTTPParser(reactor.HTTPLimits{})
			b.SetBytes(int64(len(c.req)))
			b.ReportAllocs()
			for b.Loop() {
				n, _, err := p.ParseHead(c.req)
				if n != len(c.req) || err != nil {
					b.Fatalf("ParseHead = %d, %v", n, err)
				}
				p.Reset()
			}
		})
		b.Run(c.name+"/net_http", func(b *testing.B) {
			r := bytes.NewReader(c.req)
			br := bufio.NewReader(r)
			b.SetBytes(int64(len(c.req)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(c.req)
				br.Reset(r)
				if _, err := http.ReadRequest(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseHeadSlow: an 8 KiB head arriving in 64-byte reads. The
// parser resumes where it stopped, so the cost is linear in the head size.
func BenchmarkParseHeadSlow(b *testing.B) {
	head := []byte("GET / HTTP/1.1\r\nHost: h\r\n" +
		strings.Repeat("X-Filler: "+strings.Repeat("f", 52)+"\r\n", 127) + "\r\n")
	p := reactor.NewHTTPParser(reactor.HTTPLimits{})
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		for end := 64; ; end += 64 {
			end = min(end, len(head))
			n, _, err := p.ParseHead(head[:end])
			if err != nil || (n != 0) != (end == len(head)) {
				b.Fatalf("ParseHead(%d bytes) = %d, %v", end, n, err)
			}
			if n != 0 {
				break
			}
		}
		p.Reset()
	}
}

// BenchmarkBodyChunked decodes a 64 KiB body sent as 1 KiB chunks.
func BenchmarkBodyChunked(b *testing.B) {
	var body []byte
	chunk := bytes.Repeat([]byte("d"), 1024)
	for range 64 {
		body = append(body, "400\r\n"...)
		body = append(body, chunk...)
		body = append(body, "\r\n"...)
	}
	body = append(body, "0\r\n\r\n"...)
	head := []byte("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	p := reactor.NewHTTPParser(reactor.HTTPLimits{})
	b.SetBytes(64 << 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.ParseHead(head); err != nil {
			b.Fatal(err)
		}
		got := 0
		for rest := body; ; {
			n, data, done, err := p.Body(rest)
			if err != nil {
				b.Fatal(err)
			}
			got += len(data)
			rest = rest[n:]
			if done {
				break
			}
		}
		if got != 64<<10 {
			b.Fatalf("%d bytes decoded", got)
		}
		p.Reset()
	}
}
