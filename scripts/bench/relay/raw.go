package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
)

// rawWorker is the floor of a worker (-worker raw): one thread reads
// frames into one buffer and answers from it with writev, so a body costs
// the worker one copy in (read) and one out (write), as it costs a
// net/http handler. It answers GET /64k with 64 KiB, echoes POST /echo
// piece by piece (each body frame's payload goes back as it is), and
// anything else with "Hello, World!". It grants request body credit at
// once and sends answers without waiting for credit.
func rawWorker() {
	fd := ipc.WorkerFD
	hello, err := ipc.Marshal(ipc.Hello{Version: ipc.ProtocolVersion, PID: os.Getpid(), Concurrency: 1 << 16,
		Role: ipc.RoleWorker, SDK: "relay-raw", Flow: true})
	if err != nil {
		fatal(err)
	}
	if err := writeAll(fd, [][]byte{ipc.AppendFrame(nil, ipc.TypeHello, 0, 0, hello)}); err != nil {
		fatal(err)
	}
	big := []byte(strings.Repeat(strings.Repeat("x", 63)+"\n", 1024))
	textPairs := []string{"Content-Type", "text/plain; charset=utf-8"}
	binPairs := []string{"Content-Type", "application/octet-stream"}
	// shm (RELAY_SHM=slot,slots): request bodies in fd 4 (read-only),
	// answers' bodies written to fd 5, at the request's slot.
	var reqs, resps []byte
	slot := 0
	if v := os.Getenv("RELAY_SHM"); v != "" {
		var slots int
		if _, err := fmt.Sscanf(v, "%d,%d", &slot, &slots); err != nil {
			fatal(fmt.Errorf("RELAY_SHM=%q: %w", v, err))
		}
		if reqs, err = unix.Mmap(ipc.WorkerFD+1, 0, slot*slots, unix.PROT_READ, unix.MAP_SHARED); err != nil {
			fatal(fmt.Errorf("map the request memfd: %w", err))
		}
		if resps, err = unix.Mmap(ipc.WorkerFD+2, 0, slot*slots, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
			fatal(fmt.Errorf("map the answer memfd: %w", err))
		}
	}
	buf := make([]byte, 4<<20)
	beg, end := 0, 0
	var dec ipc.RequestDecoder
	var req ipc.Request
	started := map[uint64]bool{} // echo requests whose TypeResponse went out
	var iov [][]byte
	var hdrs []byte
	for {
		if beg == end {
			beg, end = 0, 0
		} else if len(buf)-end < 64<<10+ipc.HeaderSize {
			end = copy(buf, buf[beg:end])
			beg = 0
		}
		n, err := unix.Read(fd, buf[end:])
		if n <= 0 {
			if err == unix.EINTR {
				continue
			}
			os.Exit(0) // the relay went away
		}
		end += n
		iov, hdrs = iov[:0], hdrs[:0]
		for {
			h, payload, k, err := ipc.Next(buf[beg:end], len(buf)-ipc.HeaderSize)
			if err != nil {
				fatal(err)
			}
			if k == 0 {
				break
			}
			beg += k
			switch h.Type {
			case ipc.TypeRequest:
				if err := dec.Decode(payload, &req); err != nil {
					fatal(err)
				}
				if h.Flags&FlagShm != 0 {
					// The body at the slot; the answer's body to the slot of
					// the answer memfd (a handler's copy), then the frame.
					at := req.Listener * slot
					var n int
					pairs := textPairs
					switch {
					case req.Method == "POST" && req.Target == "/echo":
						n = copy(resps[at:at+slot], reqs[at:at+int(req.ContentLength)])
						pairs = binPairs
					case req.Target == "/64k":
						n = copy(resps[at:at+slot], big)
					default:
						n = copy(resps[at:at+slot], "Hello, World!")
					}
					p := binary.BigEndian.AppendUint32(nil, uint32(n))
					p = ipc.AppendResponseHead(p, 200, pairs, nil, 0)
					iov = append(iov, ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd|FlagShm, h.ID, p))
					continue
				}
				switch {
				case req.Method == "POST" && req.Target == "/echo" && req.BodyFollows:
					started[h.ID] = false
				case req.Method == "POST" && req.Target == "/echo":
					head := ipc.AppendResponseHead(nil, 200, binPairs, nil, len(req.Body))
					hdrs = ipc.AppendHeader(hdrs, ipc.TypeResponse, ipc.FlagEnd, h.ID, len(head)+len(req.Body))
					iov = append(iov, hdrs[len(hdrs)-ipc.HeaderSize:], head, req.Body)
				case req.Target == "/64k":
					head := ipc.AppendResponseHead(nil, 200, textPairs, nil, len(big))
					hdrs = ipc.AppendHeader(hdrs, ipc.TypeResponse, ipc.FlagEnd, h.ID, len(head)+len(big))
					iov = append(iov, hdrs[len(hdrs)-ipc.HeaderSize:], head, big)
				default:
					p := ipc.AppendResponse(nil, 200, textPairs, nil, []byte("Hello, World!"))
					iov = append(iov, ipc.AppendFrame(nil, ipc.TypeResponse, ipc.FlagEnd, h.ID, p))
				}
			case ipc.TypeRequestBody:
				s, ok := started[h.ID]
				if !ok {
					continue
				}
				var flags uint8
				if h.Flags&ipc.FlagEnd != 0 {
					flags = ipc.FlagEnd
					delete(started, h.ID)
				}
				if len(payload) > 0 {
					var w [4]byte
					iov = append(iov, ipc.AppendFrame(nil, ipc.TypeWindow, 0, h.ID, ipc.AppendWindow(w[:0], uint32(len(payload)))))
				}
				if !s {
					started[h.ID] = true
					head := ipc.AppendResponseHead(nil, 200, binPairs, nil, len(payload))
					hdrs = ipc.AppendHeader(hdrs, ipc.TypeResponse, flags, h.ID, len(head)+len(payload))
					iov = append(iov, hdrs[len(hdrs)-ipc.HeaderSize:], head, payload)
				} else {
					hdrs = ipc.AppendHeader(hdrs, ipc.TypeResponseBody, flags, h.ID, len(payload))
					iov = append(iov, hdrs[len(hdrs)-ipc.HeaderSize:], payload)
				}
			case ipc.TypeCancel:
				if _, ok := started[h.ID]; ok {
					delete(started, h.ID)
					iov = append(iov, ipc.AppendFrame(nil, ipc.TypeResponseBody, ipc.FlagEnd|ipc.FlagAbort, h.ID, nil))
				}
			}
		}
		// The answers alias buf: out before the next read.
		if err := writeAll(fd, iov); err != nil {
			os.Exit(0)
		}
	}
}

// writeAll writes bufs to the blocking descriptor fd.
func writeAll(fd int, bufs [][]byte) error {
	for len(bufs) > 0 {
		n, err := unix.Writev(fd, bufs[:min(len(bufs), 1024)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for n > 0 {
			k := min(n, len(bufs[0]))
			bufs[0], n = bufs[0][k:], n-k
			if len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "relay raw worker:", err)
	os.Exit(1)
}
