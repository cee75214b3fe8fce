package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ProtocolVersion is the frame protocol version a worker announces in its
// hello. The master refuses a hello with another major version.
const ProtocolVersion = 1

// HeaderSize is the size of a frame header in bytes.
const HeaderSize = 16

// DefaultMaxPayload bounds a frame's payload when the caller has no better
// bound (the master uses package_max_length plus room for metadata).
const DefaultMaxPayload = 64 << 20

// Type identifies what a frame carries. Types below 0x80 travel on a
// worker's socket pair and are specified in docs/protocol.md; types from
// 0x80 are control messages between master and manager.
type Type uint8

// Frames between master and worker. "M→W" is master to worker.
const (
	// TypeHello (W→M, msgpack Hello) is the first frame a worker writes.
	TypeHello Type = 1
	// TypeStop (M→W, no payload) asks the worker to finish its in-flight
	// events, answer them, and exit with code 0.
	TypeStop Type = 2
	// TypeConnect (M→W, msgpack ConnInfo) opens connection id.
	TypeConnect Type = 3
	// TypeData (M→W, raw bytes) carries one packet received on connection
	// id, framed as it arrived (length header or EOF bytes included).
	TypeData Type = 4
	// TypeClose (M→W, raw UTF-8 reason, may be empty) says connection id is
	// closed; the worker can no longer send to it.
	TypeClose Type = 5
	// TypeSend (W→M, raw bytes) writes bytes to connection id.
	TypeSend Type = 6
	// TypeCloseConn (W→M, no payload) closes connection id once everything
	// sent before it has been written.
	TypeCloseConn Type = 7
	// TypeDone (W→M, no payload) says the worker finished handling one
	// event (Connect, Data or Close) of connection id. Every event gets
	// exactly one Done; the master counts them against the worker's
	// declared concurrency.
	TypeDone Type = 8
)

// Control messages between master and manager (SOCK_SEQPACKET, one frame a
// message). They are internal to drover and may change between releases.
const (
	// CtlInit (master→manager, JSON config) is the manager's first message.
	CtlInit Type = 0x80 + iota
	// CtlWorkerStarted (manager→master, msgpack WorkerEvent, one fd: the
	// master's end of the worker's socket pair).
	CtlWorkerStarted
	// CtlWorkerExited (manager→master, msgpack WorkerEvent).
	CtlWorkerExited
	// CtlWorkerReady (master→manager, msgpack WorkerEvent): the worker said
	// hello; the manager counts the start as successful.
	CtlWorkerReady
	// CtlShutdown (master→manager, no payload): stop every child within
	// max_wait_time and exit.
	CtlShutdown
	// CtlRetire (master→manager, msgpack WorkerEvent): the master asked the
	// worker to stop and will send it nothing more; the manager escalates
	// to signals after max_wait_time and does not respawn the incarnation.
	CtlRetire
	// CtlKill (master→manager, msgpack WorkerEvent with Cause): the worker
	// broke the protocol; kill it at once and start a successor.
	CtlKill
	// CtlStats (master→manager, no payload, id = request id): report the Go
	// runtime figures of plugin-launched workers.
	CtlStats
	// CtlStatsReply (manager→master, msgpack map of gen to RuntimeStats,
	// id = the request's id).
	CtlStatsReply
	// CtlReplace (master→manager, msgpack WorkerEvent with Role, Slot and
	// Cause): start a successor for the slot next to its running worker
	// (reload, recycling). The master retires the predecessor once the
	// successor said hello; a successor that exits before its hello is
	// reported as exited and not restarted while its predecessor serves.
	CtlReplace
	// CtlOverMemory (manager→master, msgpack WorkerEvent with RSS): a
	// ready worker's resident set is over its max_memory
	// (worker.max_memory, task_worker.max_memory); the master replaces it
	// the graceful way. Sent at each sample while it stays over.
	CtlOverMemory
	// CtlAddSlot (master→manager, msgpack WorkerEvent with Role and Slot):
	// the pool grew; supervise that slot from now on (the master drops it
	// again if its first incarnation exits before its hello).
	CtlAddSlot
	// CtlDropSlot (master→manager, msgpack WorkerEvent with Role, Slot and
	// Cause): the pool shrank; the master sent the slot's worker its stop
	// frame. The manager starts nothing more there, kills an incarnation
	// that has not said hello, escalates to signals after max_wait_time as
	// for CtlRetire, and reports CtlSlotGone once the slot's last
	// incarnation exited.
	CtlDropSlot
	// CtlSlotGone (manager→master, msgpack WorkerEvent with Role and
	// Slot): a dropped slot's last incarnation exited (after its
	// CtlWorkerExited); the slot may be added again.
	CtlSlotGone
)

// String names t for logs.
func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeStop:
		return "stop"
	case TypeConnect:
		return "connect"
	case TypeData:
		return "data"
	case TypeClose:
		return "close"
	case TypeSend:
		return "send"
	case TypeCloseConn:
		return "close_conn"
	case TypeDone:
		return "done"
	case TypeRequest:
		return "request"
	case TypeRequestBody:
		return "request_body"
	case TypeResponse:
		return "response"
	case TypeResponseBody:
		return "response_body"
	case TypeCancel:
		return "cancel"
	case TypeWindow:
		return "window"
	case TypeRelease:
		return "release"
	case TypeTask:
		return "task"
	case TypeTaskResult:
		return "task_result"
	case TypeMessage:
		return "message"
	case TypeBind:
		return "bind"
	case TypeRetire:
		return "retire"
	case CtlInit:
		return "ctl_init"
	case CtlWorkerStarted:
		return "ctl_worker_started"
	case CtlWorkerExited:
		return "ctl_worker_exited"
	case CtlWorkerReady:
		return "ctl_worker_ready"
	case CtlShutdown:
		return "ctl_shutdown"
	case CtlRetire:
		return "ctl_retire"
	case CtlKill:
		return "ctl_kill"
	case CtlStats:
		return "ctl_stats"
	case CtlStatsReply:
		return "ctl_stats_reply"
	case CtlReplace:
		return "ctl_replace"
	case CtlOverMemory:
		return "ctl_over_memory"
	case CtlAddSlot:
		return "ctl_add_slot"
	case CtlDropSlot:
		return "ctl_drop_slot"
	case CtlSlotGone:
		return "ctl_slot_gone"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ErrFrameTooLarge is returned for a frame whose payload exceeds the reader's bound.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrBadFrame is returned for a header that cannot be valid (reserved bits set).
var ErrBadFrame = errors.New("malformed frame")

// Header is a decoded frame header.
type Header struct {
	Length uint32 // payload length
	Type   Type
	Flags  uint8
	ID     uint64
}

// ParseHeader decodes the header at the start of b and checks it against
// maxPayload. b must hold at least HeaderSize bytes.
func ParseHeader(b []byte, maxPayload int) (Header, error) {
	h := Header{
		Length: binary.BigEndian.Uint32(b[0:4]),
		Type:   Type(b[4]),
		Flags:  b[5],
		ID:     binary.BigEndian.Uint64(b[8:16]),
	}
	if b[6] != 0 || b[7] != 0 {
		return h, fmt.Errorf("%w: reserved bytes %#x %#x in %s frame header", ErrBadFrame, b[6], b[7], h.Type)
	}
	if h.Type == 0 {
		return h, fmt.Errorf("%w: frame type 0", ErrBadFrame)
	}
	if int64(h.Length) > int64(maxPayload) {
		return h, fmt.Errorf("%w: %s frame of %d bytes exceeds %d", ErrFrameTooLarge, h.Type, h.Length, maxPayload)
	}
	return h, nil
}

// AppendHeader appends a header for a payload of n bytes to dst.
func AppendHeader(dst []byte, t Type, flags uint8, id uint64, n int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, byte(t), flags, 0, 0)
	return binary.BigEndian.AppendUint64(dst, id)
}

// SetLength sets the payload length in the frame header at the start of
// hdr: a frame whose payload was encoded in place after AppendHeader(…, 0).
func SetLength(hdr []byte, n int) { binary.BigEndian.PutUint32(hdr, uint32(n)) }

// AppendFrame appends a whole frame to dst and returns the extended slice.
func AppendFrame(dst []byte, t Type, flags uint8, id uint64, payload []byte) []byte {
	dst = AppendHeader(dst, t, flags, id, len(payload))
	return append(dst, payload...)
}

// Next finds the first complete frame in buf. It returns the frame's header,
// its payload (aliasing buf) and n, the number of bytes it occupies; n == 0
// means buf holds no complete frame yet. An error means the stream is
// corrupt and must be abandoned.
func Next(buf []byte, maxPayload int) (h Header, payload []byte, n int, err error) {
	if len(buf) < HeaderSize {
		return h, nil, 0, nil
	}
	h, err = ParseHeader(buf, maxPayload)
	if err != nil {
		return h, nil, 0, err
	}
	end := HeaderSize + int(h.Length)
	if len(buf) < end {
		return h, nil, 0, nil
	}
	return h, buf[HeaderSize:end:end], end, nil
}
