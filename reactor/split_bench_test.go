package reactor_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/drover-dev/drover/reactor"
)

// splitBenchDrain splits a buffer of complete packets to the end, as a
// connection does after a read that brought many requests.
func splitBenchDrain(b *testing.B, sp reactor.Splitter, buf []byte, packets int) {
	b.Helper()
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		rest, got := buf, 0
		for {
			n, _, err := sp.Split(rest)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			rest = rest[n:]
			got++
		}
		if got != packets {
			b.Fatalf("%d packets, want %d", got, packets)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*packets), "ns/packet")
}

// BenchmarkLengthSplit: 1024 packets of 64 bytes (4-byte big-endian length
// and 60 bytes of body) in one buffer.
func BenchmarkLengthSplit(b *testing.B) {
	const packets = 1024
	var buf []byte
	body := bytes.Repeat([]byte("x"), 60)
	for range packets {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(body)))
		buf = append(buf, body...)
	}
	sp := reactor.NewLengthSplitter(reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 2 << 20})
	splitBenchDrain(b, sp, buf, packets)
}

// BenchmarkEOFSplit: 1024 lines of 64 bytes in one buffer, and one 64 KiB
// packet arriving in 1 KiB reads. The second is linear in the packet size
// because the splitter resumes its scan; "rescan" is the same work done by
// searching from the packet start on every read, for comparison.
func BenchmarkEOFSplit(b *testing.B) {
	eof := []byte("\r\n")
	b.Run("lines64", func(b *testing.B) {
		const packets = 1024
		line := append(bytes.Repeat([]byte("x"), 62), eof...)
		buf := bytes.Repeat(line, packets)
		splitBenchDrain(b, reactor.NewEOFSplitter(eof, 2<<20), buf, packets)
	})

	const size, chunk = 64 << 10, 1 << 10
	packet := append(bytes.Repeat([]byte("x"), size-len(eof)), eof...)
	b.Run("64KiB_in_1KiB_reads", func(b *testing.B) {
		sp := reactor.NewEOFSplitter(eof, 2<<20)
		splitBenchGrowing(b, packet, chunk, sp.Split)
	})
	b.Run("64KiB_in_1KiB_reads_rescan", func(b *testing.B) {
		splitBenchGrowing(b, packet, chunk, func(buf []byte) (int, int, error) {
			if i := bytes.Index(buf, eof); i >= 0 {
				return i + len(eof), 0, nil
			}
			return 0, 0, nil
		})
	})
}

// splitBenchGrowing offers split the packet as it grows by chunk bytes per
// read, and checks the packet is found once, at the end.
func splitBenchGrowing(b *testing.B, packet []byte, chunk int, split func([]byte) (int, int, error)) {
	b.Helper()
	b.SetBytes(int64(len(packet)))
	b.ReportAllocs()
	for b.Loop() {
		for end := chunk; end <= len(packet); end += chunk {
			n, _, err := split(packet[:end])
			if err != nil || (n != 0) != (end == len(packet)) {
				b.Fatalf("Split(%d bytes) = %d, %v", end, n, err)
			}
		}
	}
}
