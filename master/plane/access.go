package plane

import "github.com/drover-dev/drover/reactor"

// The access log: one line per HTTP request and per stream connection
// closed, formatted on the loop and written off it in batches.
// (Being built: issue 18.)

// logRequest writes the access log line of an HTTP request that is over.
// Runs on its loop.
func (p *Plane) logRequest(hc *reactor.HTTPConn, status int, bytes int64) {}

// logClose writes the access log line of a stream connection that closed.
// Runs on its loop.
func (p *Plane) logClose(c *reactor.Conn, st *connState, err error) {}
