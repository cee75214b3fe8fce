package worker

import (
	"os/exec"
	"testing"

	"github.com/drover-dev/drover/ipc"
)

// The Python echo worker (examples/python) is written from docs/protocol.md
// without an SDK; these tests hold it to the same fake master as the Go SDK.

const pythonWorker = "../examples/python/echo_worker.py"

func python(t *testing.T) []string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: cannot run the Python worker (CI has it)")
	}
	return []string{py, pythonWorker}
}

func TestPythonWorkerEcho(t *testing.T) {
	c := startChild(t, python(t), true, "DROVER_ROLE=worker", "DROVER_WORKER_ID=0", "DROVER_FD=3", "DROVER_LAUNCH=exec")
	h := c.readHello(t)
	want := ipc.Hello{Version: ipc.ProtocolVersion, PID: c.cmd.Process.Pid, Concurrency: 1, Role: ipc.RoleWorker, SDK: "python"}
	if h != want {
		t.Fatalf("hello %+v, want %+v", h, want)
	}
	c.m.connect(4)
	c.m.send(ipc.TypeData, 4, []byte("\x00\x00\x00\x05hello"))
	c.m.send(0x41, 4, []byte("unknown type: no done"))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i)
	}
	c.m.send(ipc.TypeData, 4, big)
	c.m.send(ipc.TypeClose, 4, []byte("reset by peer"))
	c.m.expect(doneF(4), sendF(4, "\x00\x00\x00\x05hello"), doneF(4), sendF(4, string(big)), doneF(4), doneF(4))
	c.m.send(ipc.TypeStop, 0, nil)
	if f, err := c.m.next(); err == nil {
		t.Fatalf("got %v after stop, want EOF", f)
	}
	c.wait(t, 0, "")
}

func TestPythonWorkerMasterGone(t *testing.T) {
	c := startChild(t, python(t), true, "DROVER_ROLE=worker")
	c.readHello(t)
	c.m.f.Close()
	c.wait(t, 1, "master closed the channel")
}

func TestPythonWorkerRunByHand(t *testing.T) {
	c := startChild(t, python(t), false)
	c.wait(t, 1, "this program is a drover worker: start it with `drover start -c drover.yaml` (worker.cmd), not by hand")
}
