package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// EnvSocket names the socket systemd listens on for notifications.
const EnvSocket = "NOTIFY_SOCKET"

// sendTimeout bounds one notification: a service manager that does not
// read its socket must not hold the master's loop.
const sendTimeout = 500 * time.Millisecond

// Send sends state, newline-separated VAR=value lines, to $NOTIFY_SOCKET in
// one datagram. Without $NOTIFY_SOCKET it does nothing and returns nil.
func Send(state string) error {
	sock := os.Getenv(EnvSocket)
	if sock == "" {
		return nil
	}
	if !strings.HasPrefix(sock, "/") && !strings.HasPrefix(sock, "@") {
		return fmt.Errorf("%s=%q: want an absolute path or an @abstract name", EnvSocket, sock)
	}
	// Go's net package maps a leading '@' to Linux's abstract namespace.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(sendTimeout))
	_, err = c.Write([]byte(state))
	return err
}

// send is Send with the failure logged: what was sent, where, and that
// drover serves on.
func send(log *logrus.Entry, state string) {
	if err := Send(state); err != nil {
		log.WithFields(logrus.Fields{"notify_socket": os.Getenv(EnvSocket), "state": strings.ReplaceAll(state, "\n", " ")}).
			WithError(err).Warn("systemd notification not sent; drover serves on, but systemd may not know its state")
	}
}

// Serving tells systemd that this master serves: READY=1 with its pid as
// MAINPID (a new master after an upgrade takes over as the main process)
// and the listeners it serves in STATUS. The master calls it once, when its
// workers are ready and it accepts, before it tells an old master to drain:
// systemd then follows the new pid before the old one exits. It also warns
// about sockets systemd passed that no listener took (bound lists the
// addresses served, as network://host:port).
func Serving(log *logrus.Entry, bound []string) {
	send(log, fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=serving on %s", os.Getpid(), strings.Join(bound, ", ")))
	warnUnused(log, bound)
}

// Ready tells systemd that a reload is over (READY=1).
func Ready(log *logrus.Entry) { send(log, "READY=1\nSTATUS=serving") }

// Reloading tells systemd that a reload of the workers begins
// (RELOADING=1), with the CLOCK_MONOTONIC time systemd ≥ 253 needs to tell
// it from an earlier one (MONOTONIC_USEC). [Ready] must follow.
func Reloading(log *logrus.Entry) {
	send(log, fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading the workers", monotonicUsec()))
}

// Stopping tells systemd that the service stops (STOPPING=1). The master
// sends it only while it is the service's main process: not after it
// handed over to a new master, nor as a new master that never became ready.
func Stopping(log *logrus.Entry) { send(log, "STOPPING=1\nSTATUS=stopping") }

// HandBack makes the parent process the main process again (MAINPID=ppid):
// a master started by an upgrade calls it when it gives up after [Serving],
// so that systemd does not take its exit for the service's end while the
// old master serves on.
func HandBack(log *logrus.Entry) { send(log, fmt.Sprintf("MAINPID=%d", os.Getppid())) }

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC with.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// Watchdog sends WATCHDOG=1 at half of $WATCHDOG_USEC when systemd asked
// for it (WatchdogSec=). It has no goroutine: its owner's loop receives C
// and calls Ping, so a loop that is stuck stops the pings and systemd
// restarts the service, as the watchdog intends. C is nil (never ready)
// when the watchdog is off.
type Watchdog struct {
	C      <-chan time.Time
	ticker *time.Ticker
	log    *logrus.Entry
}

// NewWatchdog reads $WATCHDOG_USEC and $WATCHDOG_PID. The watchdog is on
// when WATCHDOG_USEC is a positive number and WATCHDOG_PID is unset, this
// process, or its parent: a master started by an upgrade inherits the
// variables of the master it replaces, whose pid is its parent's. It then
// sets WATCHDOG_PID to this process, for the master a later upgrade starts.
// A value that cannot be used is logged and leaves the watchdog off.
func NewWatchdog(log *logrus.Entry) *Watchdog {
	w := &Watchdog{log: log}
	v := os.Getenv("WATCHDOG_USEC")
	if v == "" {
		return w
	}
	usec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || usec <= 0 {
		log.WithField("WATCHDOG_USEC", v).Warn("systemd watchdog off: WATCHDOG_USEC is not a positive number of microseconds")
		return w
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) && p != strconv.Itoa(os.Getppid()) {
		return w // set for another process
	}
	os.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	every := time.Duration(usec) * time.Microsecond / 2
	w.ticker = time.NewTicker(every)
	w.C = w.ticker.C
	log.WithField("every", every.String()).Info("systemd watchdog on: pinging from the master's loop")
	w.Ping()
	return w
}

// Ping sends WATCHDOG=1.
func (w *Watchdog) Ping() { send(w.log, "WATCHDOG=1") }

// Stop stops the ticker; C never fires after it.
func (w *Watchdog) Stop() {
	if w.ticker != nil {
		w.ticker.Stop()
	}
}
