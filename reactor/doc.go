// Package reactor runs the master's event loops: reactor_num loops on
// epoll, each owning the connections it accepted for their whole lifetime,
// as Swoole's reactor threads do. A loop accepts on every listener
// (EPOLLEXCLUSIVE spreads accepts across loops), reads without blocking,
// cuts the byte stream into packets with the listener's Splitter, hands each
// packet to a Handler, and writes back buffered output, arming EPOLLOUT only
// when the socket is full. Output written during one loop iteration is
// flushed once at its end, so many small writes cost one system call.
//
// The reactor knows nothing of processes: the master implements Handler and
// registers its worker sockets with Watch; everything that crosses loops
// goes through Post, the only way to touch a loop from another goroutine.
package reactor
