package plane

import "github.com/drover-dev/drover/reactor"

// The data plane's counters for /metrics: kept per reactor loop, written
// without a lock or an allocation on the request path, summed on scrape.
// (Being built: issue 18.)

// countRequest counts an HTTP request that is over. Runs on its loop.
func (p *Plane) countRequest(hc *reactor.HTTPConn, status int, bytes int64) {}

// countClose counts a connection that closed. Runs on its loop.
func (p *Plane) countClose(c *reactor.Conn, st *connState, err error) {}
