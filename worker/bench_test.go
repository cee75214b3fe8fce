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
