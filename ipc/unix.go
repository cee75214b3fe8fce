package ipc

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// SocketBufferSize is the SO_SNDBUF/SO_RCVBUF asked for on worker socket
// pairs, so that a burst of frames rarely meets a full buffer.
const SocketBufferSize = 1 << 20

// SocketPair returns the two ends of a new close-on-exec AF_UNIX socket
// pair of the given type (unix.SOCK_STREAM for worker pairs,
// unix.SOCK_SEQPACKET for control channels). The caller owns both files.
func SocketPair(typ int) (a, b *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	for _, fd := range fds {
		// Best effort: the kernel caps the size at net.core.wmem_max.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, SocketBufferSize)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, SocketBufferSize)
	}
	return os.NewFile(uintptr(fds[0]), "socketpair"), os.NewFile(uintptr(fds[1]), "socketpair"), nil
}

// Control is one end of a master–manager control channel: a SOCK_SEQPACKET
// socket on which every message is one frame, optionally with file
// descriptors attached. Send and Recv may be called from different
// goroutines; concurrent Sends are safe (each is one system call).
type Control struct {
	c *net.UnixConn
}

// NewControl wraps f, a SOCK_SEQPACKET socket; f is duplicated, so the
// caller closes its own copy.
func NewControl(f *os.File) (*Control, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("control channel: %T is not a unix socket", c)
	}
	return &Control{c: uc}, nil
}

// maxControl bounds a control message (payload and header).
const maxControl = 128 << 10

// Send writes one control message with v (msgpack, or raw when v is a
// []byte) and passes files along with it. The files stay open in the sender.
func (c *Control) Send(t Type, id uint64, v any, files ...*os.File) error {
	var payload []byte
	switch p := v.(type) {
	case nil:
	case []byte:
		payload = p
	default:
		b, err := Marshal(v)
		if err != nil {
			return err
		}
		payload = b
	}
	if len(payload)+HeaderSize > maxControl {
		return fmt.Errorf("%w: %s message of %d bytes", ErrFrameTooLarge, t, len(payload))
	}
	msg := AppendFrame(make([]byte, 0, HeaderSize+len(payload)), t, 0, id, payload)
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.c.WriteMsgUnix(msg, oob, nil); err != nil {
		return fmt.Errorf("send %s: %w", t, err)
	}
	return nil
}

// Recv reads one control message. Received descriptors are returned as
// close-on-exec files the caller owns. The payload is freshly allocated.
func (c *Control) Recv() (Header, []byte, []*os.File, error) {
	buf := make([]byte, maxControl)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return Header{}, nil, nil, err
	}
	files, ferr := parseRights(oob[:oobn])
	if n == 0 {
		closeAll(files)
		return Header{}, nil, nil, net.ErrClosed
	}
	if ferr != nil {
		return Header{}, nil, nil, ferr
	}
	h, payload, m, err := Next(buf[:n], maxControl)
	if err == nil && m != n {
		err = fmt.Errorf("%w: control message of %d bytes holds a frame of %d", ErrBadFrame, n, m)
	}
	if err != nil {
		closeAll(files)
		return h, nil, nil, err
	}
	return h, append([]byte(nil), payload...), files, nil
}

// Close closes the channel; a pending Recv returns an error.
func (c *Control) Close() error { return c.c.Close() }

func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: control message: %v", ErrBadFrame, err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "passed-fd"))
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
