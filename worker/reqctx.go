package worker

import (
	"context"
	"errors"
	"time"
)

// An exchange is its request's context.Context: cancelled when the client
// goes away, the channel to the master ends, or the handler returns, as
// net/http's request contexts are. It costs nothing per request until a
// handler calls Done (or derives a context, which goes through AfterFunc
// rather than a goroutine per context).

// Deadline implements context.Context: none.
func (x *exchange) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (x *exchange) Done() <-chan struct{} {
	x.cmu.Lock()
	defer x.cmu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.cerr != nil {
			close(x.done)
		}
	}
	return x.done
}

// Err implements context.Context.
func (x *exchange) Err() error {
	x.cmu.Lock()
	defer x.cmu.Unlock()
	return x.cerr
}

// Value implements context.Context: the only value a request context
// carries is its exchange, for Bind, under a key no other package can name.
func (x *exchange) Value(key any) any {
	if key == (exchangeKey{}) {
		return x
	}
	return nil
}

// exchangeKey is the context key of a request's exchange.
type exchangeKey struct{}

// Bind binds the client connection of an HTTP request to uid for
// dispatch_mode 5, as Server.Bind does for a stream connection (Swoole's
// bind): from the connection's next request on, its requests go to worker
// uid % worker_num, while that worker is ready. Before it, the connection's
// requests go to one worker as in dispatch_mode 2. ctx is the request's
// context (r.Context()) or one derived from it; call Bind before the
// handler returns. The bind is in effect by the time the client reads this
// request's answer. Each new connection of the user binds again, as in
// Swoole.
func Bind(ctx context.Context, uid uint64) error {
	x, ok := ctx.Value(exchangeKey{}).(*exchange)
	if !ok {
		return errors.New("worker: bind: the context is not an HTTP request's (pass r.Context() of a request this worker serves)")
	}
	if x.Err() != nil {
		return errors.New("worker: bind: the request is over (its handler returned or its client went away)")
	}
	return x.s.Bind(x.conn, uid)
}

// afterFunc is one registration of AfterFunc.
type afterFunc struct{ f func() }

// AfterFunc runs f on its own goroutine once the context is cancelled
// (at once if it is); stop unregisters it. The context package uses it to
// propagate cancellation to derived contexts without a goroutine each.
func (x *exchange) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	x.cmu.Lock()
	if x.cerr != nil {
		x.cmu.Unlock()
		go f()
		return func() bool { return false }
	}
	if x.after == nil {
		x.after = make(map[*afterFunc]struct{})
	}
	x.after[a] = struct{}{}
	x.cmu.Unlock()
	return func() bool {
		x.cmu.Lock()
		defer x.cmu.Unlock()
		_, ok := x.after[a]
		delete(x.after, a)
		return ok
	}
}

// cancel cancels the request's context; later calls do nothing.
func (x *exchange) cancel() {
	x.cmu.Lock()
	if x.cerr != nil {
		x.cmu.Unlock()
		return
	}
	x.cerr = context.Canceled
	if x.done != nil {
		close(x.done)
	}
	after := x.after
	x.after = nil
	x.cmu.Unlock()
	for a := range after {
		go a.f()
	}
}
