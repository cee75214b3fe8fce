// Command rxecho serves the length-prefixed echo protocol from the reactor
// alone, in one process: the floor of what the master's event loop costs,
// for comparison with drover (master + worker) and a net/http-style Go server.
//
//	rxecho -addr 127.0.0.1:9701 -loops 1
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/drover-dev/drover/reactor"
)

type echo struct{}

func (echo) OnOpen(c *reactor.Conn)               {}
func (echo) OnPacket(c *reactor.Conn, pkt []byte) { c.Write(pkt) }
func (echo) OnReadEOF(c *reactor.Conn)            { c.CloseWhenFlushed() }
func (echo) OnClose(c *reactor.Conn, err error)   {}

func main() {
	addr := flag.String("addr", "127.0.0.1:9701", "listen address")
	loops := flag.Int("loops", 1, "reactor loops")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	raw, _ := ln.(syscall.Conn).SyscallConn()
	var fd int
	raw.Control(func(f uintptr) { fd = int(f) })
	spec := reactor.LengthSpec{Type: 'N', BodyOffset: 4, Max: 1 << 20}
	r, err := reactor.New(reactor.Options{Loops: *loops}, []*reactor.Listener{{Name: *addr, FD: fd,
		Splitter: func() reactor.Splitter { return reactor.NewLengthSplitter(spec) }}}, echo{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r.Start()
	if err := r.StartAccepting(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	select {}
}
