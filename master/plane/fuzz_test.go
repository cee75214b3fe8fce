package plane

import (
	"net"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
)

// fuzzConnID is the id of the first connection of a fresh one-loop reactor.
const fuzzConnID = 1 << 8

// fuzzStreamValid says whether a worker that said hello and has two events
// of connection fuzzConnID in flight may write data: every complete frame
// is a Send or a CloseConn (to any connection) or a Done answering an event
// of its connection; an incomplete frame at the end is not a violation.
// It is the protocol as docs/protocol.md states it, written independently
// of the master's code.
func fuzzStreamValid(data []byte, maxFrame int) bool {
	owed := map[uint64]int{fuzzConnID: 2}
	for {
		h, _, n, err := ipc.Next(data, maxFrame)
		if err != nil {
			return false
		}
		if n == 0 {
			return true
		}
		data = data[n:]
		switch h.Type {
		case ipc.TypeSend, ipc.TypeCloseConn:
		case ipc.TypeDone:
			if owed[h.ID] == 0 {
				return false
			}
			owed[h.ID]--
		default:
			return false
		}
	}
}

// FuzzWorkerStream feeds arbitrary bytes from a ready worker to the master,
// in two writes cut at split, then closes the worker's end. The master must
// not panic or hang, must kill the worker exactly when the stream breaks
// the protocol (otherwise the worker stays ready until it leaves at EOF),
// and must end with nothing outstanding and the worker's pair closed.
func FuzzWorkerStream(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		h := newHarness(t, harnessOpts{workers: 1})
		tw := h.readyWorker(0, 2)
		c := h.dial()
		c.send("a")
		c.send("b")
		if hd, _ := tw.expect(ipc.TypeData, 0); hd.ID != fuzzConnID {
			t.Fatalf("first connection has id %d, want %d", hd.ID, fuzzConnID)
		}
		tw.expect(ipc.TypeData, fuzzConnID)

		cut := int(split) % (len(data) + 1)
		for _, part := range [][]byte{data[:cut], data[cut:]} {
			if len(part) == 0 {
				continue
			}
			tw.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
			if _, err := tw.conn.Write(part); err != nil {
				// The master closes the pair once it killed the worker.
				break
			}
		}
		tw.conn.(*net.UnixConn).CloseWrite()

		e := tw.gone()
		valid := fuzzStreamValid(data, h.p.maxFrame)
		killed := e.Level == logrus.ErrorLevel
		if killed == valid {
			t.Fatalf("valid stream %v, but the master removed the worker with %s %q (reason %v)",
				valid, e.Level, e.Msg, e.Data["reason"])
		}
		tw.waitEOF()
		if n := h.p.disp.outstanding(); n != 0 {
			t.Fatalf("outstanding %d after the worker was removed, want 0", n)
		}
		select {
		case <-h.p.disp.idleCh():
		default:
			t.Fatal("idleCh not closed after the worker was removed")
		}
	})
}
