package master

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/internal/logtest"
)

// The admin listener serves a bounded number of connections at once: the
// next waits in the backlog, unaccepted, until one closes, and the wait is
// logged.
func TestAdminConnectionLimit(t *testing.T) {
	logger, hook := logtest.New()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &limitListener{Listener: raw, sem: make(chan struct{}, 2), log: logrus.NewEntry(logger)}
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	hook.Wait(t, waitTimeout, "the limit's log line", func(e logtest.Entry) bool {
		return strings.Contains(e.Msg, "connection limit is reached") && e.Data["admin_max_conns"] == 2
	})
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open")
	default:
	}
	first.Close()
	select {
	case third := <-accepted:
		third.Close()
	case <-time.After(waitTimeout):
		t.Fatal("the third connection not accepted after one closed")
	}
	second.Close()
}
