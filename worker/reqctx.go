package worker

import (
	"context"
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

// Value implements context.Context: a request context carries no values
// of drover's.
func (x *exchange) Value(any) any { return nil }

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
