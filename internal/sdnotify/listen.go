package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// errNotListening is why a passed descriptor is not used as a listener.
var errNotListening = errors.New("not a listening stream socket")

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// maxListenFDs bounds the descriptors read from $LISTEN_FDS.
const maxListenFDs = 1024

// passed returns the descriptors systemd passed to this process: none
// unless $LISTEN_PID is this process and $LISTEN_FDS a count. Each is
// marked close-on-exec (no child inherits them).
func passed() []int {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	fds := make([]int, 0, min(n, maxListenFDs))
	for fd := listenFDsStart; fd < listenFDsStart+min(n, maxListenFDs); fd++ {
		unix.CloseOnExec(fd)
		fds = append(fds, fd)
	}
	return fds
}

// ListenFunc returns the listen function the master's listeners are
// opened with (tableflip's ListenWithCallback): for a tcp address, a
// socket systemd passed that is bound to it, else a socket of its own
// (net.Listen). Each socket taken from systemd is logged.
func ListenFunc(log *logrus.Entry) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (net.Listener, error) {
		for _, fd := range passed() {
			ln, err := listenerFor(fd, network, addr)
			if err != nil {
				log.WithFields(logrus.Fields{"fd": fd, "listener": network + "://" + addr}).WithError(err).
					Warn("socket from systemd matches a listener but cannot be used; drover binds the address itself")
				break
			}
			if ln != nil {
				log.WithFields(logrus.Fields{"fd": fd, "listener": network + "://" + addr}).Info("listener taken from systemd (socket activation)")
				return ln, nil
			}
		}
		return net.Listen(network, addr)
	}
}

// listenerFor returns a listener on a duplicate of fd when fd is a
// listening stream socket bound to addr; nil, nil when it is not bound to
// addr. fd itself stays open and untouched.
func listenerFor(fd int, network, addr string) (net.Listener, error) {
	if network != "tcp" {
		return nil, nil // unix sockets: see docs/operations.md (socket activation)
	}
	want, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil || want.Port == 0 {
		return nil, nil
	}
	got, err := boundTCP(fd)
	if err != nil || !sameTCP(got, want) {
		return nil, nil
	}
	if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc == 0 {
		return nil, errNotListening
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), fmt.Sprintf("systemd:%d", fd))
	defer f.Close()
	return net.FileListener(f)
}

// boundTCP is the TCP address fd is bound to.
func boundTCP(fd int) (*net.TCPAddr, error) {
	if t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_STREAM {
		return nil, errNotListening
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	}
	return nil, errNotListening
}

// sameTCP: same port, and the same IP or both unspecified (systemd's
// ListenStream=8080 is [::]:8080, which serves 0.0.0.0:8080 too).
func sameTCP(a, b *net.TCPAddr) bool {
	if a.Port != b.Port {
		return false
	}
	if (a.IP == nil || a.IP.IsUnspecified()) && (b.IP == nil || b.IP.IsUnspecified()) {
		return true
	}
	return a.IP.Equal(b.IP)
}

// warnUnused logs each socket systemd passed that is bound to none of the
// addresses served: its clients would wait in its backlog for ever.
func warnUnused(log *logrus.Entry, bound []string) {
	for _, fd := range passed() {
		got, err := boundTCP(fd)
		desc := "a socket drover cannot use (only tcp:// listeners are taken from systemd)"
		if err == nil {
			if slices.ContainsFunc(bound, func(b string) bool {
				a, err := net.ResolveTCPAddr("tcp", trimScheme(b))
				return err == nil && sameTCP(got, a)
			}) {
				continue
			}
			desc = got.String() + ", which no listener of the config has"
		}
		log.WithFields(logrus.Fields{"fd": fd, "listeners": bound}).
			Warn("systemd passed " + desc + "; it is left unused (add its address to listeners:, or remove it from the .socket unit)")
	}
}

func trimScheme(a string) string {
	if len(a) > 6 && a[:6] == "tcp://" {
		return a[6:]
	}
	return "-"
}
