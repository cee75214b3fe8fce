package worker

import (
	"fmt"
	"io"
	"testing"

	"github.com/drover-dev/drover/ipc"
	"golang.org/x/sys/unix"
)

// BenchmarkEchoRoundTrip measures one event through the SDK: the fake master
// writes a 64-byte Data frame, the worker echoes it, the master reads the
// Send and the Done. With concurrency 1 one event is in flight at a time
// (latency); with N, N connections each keep one event in flight
// (throughput, batching).
func BenchmarkEchoRoundTrip(b *testing.B) {
	packet := make([]byte, 64)
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			m := startWorker(b, echo, nil, WithConcurrency(conc))
			b.SetBytes(int64(len(packet)))
			b.ReportAllocs()
			b.ResetTimer()
			sent := 0
			for c := uint64(1); c <= uint64(conc) && sent < b.N; c++ {
				m.send(ipc.TypeData, c, packet)
				sent++
			}
			for done := 0; done < b.N; {
				h, _, err := m.r.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				if h.Type != ipc.TypeDone {
					continue
				}
				done++
				if sent < b.N {
					m.send(ipc.TypeData, h.ID, packet)
					sent++
				}
			}
			b.StopTimer()
			m.send(ipc.TypeStop, 0, nil)
			if err := m.expectEOF(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkSocketPairRoundTrip is the floor for BenchmarkEchoRoundTrip with
// concurrency 1: the same bytes (a Data frame out, Send and Done back)
// bounced by a goroutine that does nothing but read and write.
func BenchmarkSocketPairRoundTrip(b *testing.B) {
	mf, wf, err := ipc.SocketPair(unix.SOCK_STREAM)
	if err != nil {
		b.Fatal(err)
	}
	defer mf.Close()
	in, out := ipc.HeaderSize+64, 2*ipc.HeaderSize+64
	go func() {
		defer wf.Close()
		buf := make([]byte, out)
		for {
			if _, err := io.ReadFull(wf, buf[:in]); err != nil {
				return
			}
			if _, err := wf.Write(buf); err != nil {
				return
			}
		}
	}()
	req, resp := make([]byte, in), make([]byte, out)
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := mf.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(mf, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPEcho measures a large body through the SDK both ways, as
// examples/hello's POST /echo serves it under scripts/bench/http.sh: the
// fake master sends a request whose 1 MiB body follows in 64 KiB
// TypeRequestBody frames, never more than ipc.FlowWindow ahead of the
// worker's credit (as drover's master does), and credits the response's
// body frames as they arrive; the handler copies the body to the
// response (io.Copy). conns requests are in flight at once, each on its
// own connection.
func BenchmarkHTTPEcho(b *testing.B) {
	const size = 1 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i)
	}
	req, err := ipc.Marshal(ipc.Request{Method: "POST", Target: "/echo", Proto: "HTTP/1.1",
		Headers:       []string{"Host", "127.0.0.1:8080", "Content-Type", "application/octet-stream"},
		ContentLength: size, BodyFollows: true, Remote: "127.0.0.1:40000"})
	if err != nil {
		b.Fatal(err)
	}
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			m := startHTTP(b, echoBody)
			// The frames of each connection's request, built once; a
			// goroutine writes them so that the master reads while it
			// writes, as the real one does.
			frames := make([][][]byte, conns+1)
			for c := 1; c <= conns; c++ {
				frames[c] = append(frames[c], ipc.AppendFrame(nil, ipc.TypeRequest, 0, uint64(c), req))
				for off := 0; off < size; off += ipc.MaxInlineBody {
					var flags uint8
					if off+ipc.MaxInlineBody >= size {
						flags = ipc.FlagEnd
					}
					frames[c] = append(frames[c], ipc.AppendFrame(nil, ipc.TypeRequestBody, flags, uint64(c), body[off:off+ipc.MaxInlineBody]))
				}
			}
			out := make(chan []byte, 64*conns)
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				for f := range out {
					if _, err := m.f.Write(f); err != nil {
						return
					}
				}
			}()
			type state struct {
				next       int   // frames[c][next] is the next to send
				sent, cred int64 // body bytes sent and credited
				got        int   // response body bytes received
			}
			st := make([]state, conns+1)
			// pump sends c's frames within the window.
			pump := func(c int) {
				s := &st[c]
				for s.next < len(frames[c]) && (s.next == 0 || s.sent-s.cred < ipc.FlowWindow) {
					if s.next > 0 {
						s.sent += ipc.MaxInlineBody
					}
					out <- frames[c][s.next]
					s.next++
				}
			}
			started := 0
			start := func(c int) {
				st[c] = state{}
				started++
				pump(c)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for c := 1; c <= conns && started < b.N; c++ {
				start(c)
			}
			for done := 0; done < b.N; {
				h, p, err := m.r.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				c := int(h.ID)
				switch h.Type {
				case ipc.TypeWindow:
					n, _ := ipc.ParseWindow(p)
					st[c].cred += int64(n)
					pump(c)
					continue
				case ipc.TypeResponse:
					var v ipc.ResponseView
					if err := v.Decode(p); err != nil || v.Status != 200 {
						b.Fatalf("response: %v %d", err, v.Status)
					}
					p = v.Body
				case ipc.TypeResponseBody:
				default:
					b.Fatalf("got %s", h.Type)
				}
				st[c].got += len(p)
				if h.Flags&ipc.FlagEnd == 0 {
					if len(p) > 0 {
						out <- ipc.AppendFrame(nil, ipc.TypeWindow, 0, h.ID, ipc.AppendWindow(nil, uint32(len(p))))
					}
					continue
				}
				if st[c].got != size {
					b.Fatalf("conn %d: echoed %d bytes, want %d", c, st[c].got, size)
				}
				done++
				if started < b.N {
					start(c)
				}
			}
			b.StopTimer()
			// CPU time (this process: the SDK and the fake master) is
			// steadier than wall time on a machine shared with others.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			close(out)
			<-wrote
			m.stop()
		})
	}
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
