package plane

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/reactor"
)

// The slow-request log (worker.slow_request_log, php-fpm's
// request_slowlog_timeout): a request, or a stream event, that has been at
// its worker longer than the bound is logged once, with the worker's slot
// and pid, and goes on; nothing is stopped (worker.request_timeout does
// that). OnTick's once-a-second sweep checks each connection, so a request
// is reported between the bound and a second after it.

// slowMsg is the slow-request line's message.
const slowMsg = "slow request: at its worker longer than worker.slow_request_log (it goes on)"

// checkSlow logs c's request or oldest stream event if it has been at its
// worker longer than worker.slow_request_log and was not logged yet. Runs
// on c's loop.
func (p *Plane) checkSlow(c *reactor.Conn, st *connState, now time.Time) {
	bound := p.cfg.Worker.SlowRequestLog.D()
	if bound <= 0 {
		return
	}
	if h := st.http; h != nil {
		o := &h.obs
		if h.w == nil || o.w != h.w || o.slowSaid {
			return
		}
		since := o.sentAt
		if w := o.w; w.prefetch > 0 {
			// Sent ahead, it waited for the event before it to end.
			if end := time.Unix(0, w.lastEnd.Load()); end.After(since) {
				since = end
			}
		}
		if now.Sub(since) <= bound {
			return
		}
		o.slowSaid = true
		f := h.hc.Fields()
		f["listener"], f["worker_id"], f["pid"] = c.Listener().Name, o.w.slot, o.w.pid
		f["running"], f["slow_request_log"] = now.Sub(since).Round(time.Millisecond).String(), bound.String()
		p.log.WithFields(f).Warn(slowMsg)
		return
	}
	// A stream connection: busySince is when its oldest unanswered event
	// went to the worker (or the worker last answered one of several);
	// slowAt remembers the one logged.
	if st.busySince.IsZero() || st.slowAt.Equal(st.busySince) || now.Sub(st.busySince) <= bound {
		return
	}
	st.slowAt = st.busySince
	f := logrus.Fields{"conn": c.ID(), "remote": c.RemoteAddr(), "listener": c.Listener().Name,
		"running": now.Sub(st.busySince).Round(time.Millisecond).String(), "slow_request_log": bound.String()}
	if w := p.disp.owing(c.ID()); w != nil {
		f["worker_id"], f["pid"] = w.slot, w.pid
	}
	p.log.WithFields(f).Warn(slowMsg)
}
