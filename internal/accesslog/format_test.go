package accesslog

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

var (
	at   = time.Date(2026, 12, 6, 22, 19, 38, 123456789, time.FixedZone("", 3600))
	full = Request{Time: at, Remote: "127.0.0.1:54321", Listener: "tcp://127.0.0.1:8080", Method: "GET", Target: "/a?b=c",
		Proto: "HTTP/1.1", Status: 200, Bytes: 154, Duration: 512 * time.Microsecond, Worker: 1, PID: 4242,
		Referer: "http://ref.example/", UserAgent: "curl/8.5.0"}
)

// line formats one record with a Buffer of a Writer that is never
// started: the bytes stay in the buffer.
func line(t testing.TB, jsonFormat bool, rec any) string {
	t.Helper()
	w := &Writer{json: jsonFormat, size: DefaultBufferSize, queue: make(chan chunk, 1), free: make(chan []byte, 1), dropSig: make(chan struct{}, 1)}
	b := w.NewBuffer()
	switch r := rec.(type) {
	case Request:
		b.Request(&r)
	case Stream:
		b.Stream(&r)
	}
	return string(b.b)
}

func TestFormat(t *testing.T) {
	refused := Request{Time: at.In(time.UTC), Remote: "[::1]:80", Listener: "tcp://[::1]:80", Status: 414, Bytes: 120, Worker: -1}
	hostile := full
	hostile.Target = "/\"q\"\\\x01\xff\u00e9"
	hostile.UserAgent = "a\"b\nc"
	hostile.Remote = ""
	stream := Stream{Time: at, Remote: "10.0.0.1:999", Listener: "tcp://0.0.0.0:9501", Duration: 1500 * time.Millisecond,
		BytesIn: 12, BytesOut: 34, Worker: 0, PID: 7, Reason: "closed by client"}
	for _, c := range []struct {
		name string
		json bool
		rec  any
		want string
	}{
		{"json", true, full, `{"time":"2026-12-06T22:19:38.123+01:00","type":"http","remote":"127.0.0.1:54321","listener":"tcp://127.0.0.1:8080",` +
			`"method":"GET","target":"/a?b=c","proto":"HTTP/1.1","status":200,"bytes":154,"duration":0.000512,"worker":1,"pid":4242,` +
			`"referer":"http://ref.example/","user_agent":"curl/8.5.0"}` + "\n"},
		{"combined", false, full, `127.0.0.1 - - [06/Dec/2026:22:19:38 +0100] "GET /a?b=c HTTP/1.1" 200 154 "http://ref.example/" "curl/8.5.0" ` +
			`rt=0.000512 worker=1 pid=4242` + "\n"},
		{"json refused", true, refused, `{"time":"2026-12-06T21:19:38.123Z","type":"http","remote":"[::1]:80","listener":"tcp://[::1]:80",` +
			`"method":"","target":"","proto":"","status":414,"bytes":120,"duration":0.000000,"worker":null,"pid":null,"referer":"","user_agent":""}` + "\n"},
		{"combined refused", false, refused, `::1 - - [06/Dec/2026:21:19:38 +0000] "-" 414 120 "-" "-" rt=0.000000 worker=- pid=-` + "\n"},
		{"json hostile", true, hostile, `{"time":"2026-12-06T22:19:38.123+01:00","type":"http","remote":"","listener":"tcp://127.0.0.1:8080",` +
			`"method":"GET","target":"/\"q\"\\\u0001\ufffdé","proto":"HTTP/1.1","status":200,"bytes":154,"duration":0.000512,"worker":1,"pid":4242,` +
			`"referer":"http://ref.example/","user_agent":"a\"b\nc"}` + "\n"},
		{"combined hostile", false, hostile, `- - - [06/Dec/2026:22:19:38 +0100] "GET /\"q\"\\\x01\xff\xc3\xa9 HTTP/1.1" 200 154 "http://ref.example/" "a\"b\x0ac" ` +
			`rt=0.000512 worker=1 pid=4242` + "\n"},
		{"json stream", true, stream, `{"time":"2026-12-06T22:19:38.123+01:00","type":"stream","remote":"10.0.0.1:999","listener":"tcp://0.0.0.0:9501",` +
			`"duration":1.500000,"bytes_in":12,"bytes_out":34,"worker":0,"pid":7,"reason":"closed by client"}` + "\n"},
		{"combined stream", false, stream, `10.0.0.1 - - [06/Dec/2026:22:19:38 +0100] "STREAM tcp://0.0.0.0:9501" - 34 "-" "-" rt=1.500000 worker=0 pid=7 ` +
			`in=12 reason="closed by client"` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := line(t, c.json, c.rec)
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			if c.json {
				var m map[string]any
				if err := json.Unmarshal([]byte(got), &m); err != nil {
					t.Errorf("not JSON: %v", err)
				}
			}
		})
	}
}

// FuzzJSONLine: whatever a client sends, the JSON line parses and gives
// back the target (invalid UTF-8 replaced).
func FuzzJSONLine(f *testing.F) {
	f.Add("/", "curl/8")
	f.Add("/\"\\\x00\xff", "\xc3")
	f.Fuzz(func(t *testing.T, target, agent string) {
		r := full
		r.Target, r.UserAgent = target, agent
		got := line(t, true, r)
		var m map[string]any
		if err := json.Unmarshal([]byte(got), &m); err != nil {
			t.Fatalf("%q: %v", got, err)
		}
		if want := strings.ToValidUTF8(target, "\ufffd"); m["target"] != want {
			// ToValidUTF8 replaces a run of bad bytes with one U+FFFD; the
			// line replaces each.
			if strings.ReplaceAll(m["target"].(string), "\ufffd", "") != strings.ReplaceAll(want, "\ufffd", "") {
				t.Fatalf("target %q came back %q", target, m["target"])
			}
		}
		if strings.Count(got, "\n") != 1 {
			t.Fatalf("not one line: %q", got)
		}
	})
}

// FuzzCombinedLine: a combined line is one line of printable ASCII with
// every quoted field closed.
func FuzzCombinedLine(f *testing.F) {
	f.Add("/", "curl/8")
	f.Add("/\"\\\x00\xff\n", "\"")
	f.Fuzz(func(t *testing.T, target, agent string) {
		r := full
		r.Target, r.UserAgent = target, agent
		got := line(t, false, r)
		body := strings.TrimSuffix(got, "\n")
		for i := 0; i < len(body); i++ {
			if c := body[i]; c < 0x20 || c >= 0x7f {
				t.Fatalf("byte %#x in %q", c, got)
			}
		}
		if n := strings.Count(body, `"`) - strings.Count(body, `\"`); n != 6 {
			t.Fatalf("%d unescaped quotes in %q, want 6", n, got)
		}
	})
}

// TestFormatAllocs holds what BenchmarkFormat shows: formatting a line
// allocates nothing once the buffer exists.
func TestFormatAllocs(t *testing.T) {
	for _, j := range []bool{false, true} {
		w := &Writer{json: j, size: DefaultBufferSize, queue: make(chan chunk, 1), free: make(chan []byte, 1), dropSig: make(chan struct{}, 1)}
		b := w.NewBuffer()
		r, s := full, Stream{Time: at, Remote: "1.2.3.4:5", Listener: "tcp://x", Reason: "closed by client"}
		n := testing.AllocsPerRun(1000, func() {
			r.Time = r.Time.Add(time.Millisecond) // a new second now and then
			b.Request(&r)
			b.Stream(&s)
			b.b, b.lines = b.b[:0], 0
		})
		if n != 0 {
			t.Errorf("json %v: %v allocations a line", j, n)
		}
	}
}

// BenchmarkFormat is the cost on a reactor loop of one access log line:
// formatting into the loop's buffer (handing the buffer over, once per
// about 200 lines, is not included: see BenchmarkLines).
func BenchmarkFormat(b *testing.B) {
	for _, c := range []struct {
		name string
		json bool
	}{{"combined", false}, {"json", true}} {
		b.Run(c.name, func(b *testing.B) {
			w := &Writer{json: c.json, size: DefaultBufferSize, queue: make(chan chunk, 1), free: make(chan []byte, 1), dropSig: make(chan struct{}, 1)}
			buf := w.NewBuffer()
			r := full
			b.ReportAllocs()
			for b.Loop() {
				r.Time = r.Time.Add(time.Microsecond)
				if cap(buf.b)-len(buf.b) < 4096 {
					buf.b, buf.lines = buf.b[:0], 0
				}
				buf.Request(&r)
			}
		})
	}
}

// BenchmarkLines is a loop writing lines as fast as it can through a
// Writer to io.Discard: formatting, handovers and the writer goroutine
// (on a busy machine the writer may fall behind such a loop and drop).
func BenchmarkLines(b *testing.B) {
	w, err := Open(Options{Path: "bench", JSON: true, Out: io.Discard, Log: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	buf := w.NewBuffer()
	r := full
	b.ReportAllocs()
	for b.Loop() {
		r.Time = r.Time.Add(time.Microsecond)
		buf.Request(&r)
	}
	w.Close([]*Buffer{buf})
	b.ReportMetric(float64(w.Dropped())/float64(b.N), "dropped/op")
}
