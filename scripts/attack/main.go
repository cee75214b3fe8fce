// Command attack runs the client-side hostile-client attacks against a
// running HTTP server (drover, or anything else) for a bounded time and
// prints what it saw: the latency of plain GETs during the attack, and how
// and when the server closed each kind of attacker. Point it at your own
// instance and config (docs/operations.md, "Limits and hostile clients");
// run it through scripts/attack.sh.
//
//	attack [flags] host:port
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

type opts struct {
	addr                                   string
	dur                                    time.Duration
	tricklers, nonReaders, headers, idlers int
	get, post, big                         string
}

// outcome is how one attacker's connection ended.
type outcome struct {
	kind   string
	what   string // first line of the answer, "closed", "reset", "still open" …
	after  time.Duration
	closed bool
}

func main() {
	var o opts
	flag.DurationVar(&o.dur, "duration", 30*time.Second, "how long the attack lasts (attackers still open then are reported and dropped)")
	flag.IntVar(&o.tricklers, "tricklers", 50, "clients sending a POST body one byte a second")
	flag.IntVar(&o.nonReaders, "nonreaders", 50, "clients asking for -big and never reading it")
	flag.IntVar(&o.headers, "headers", 50, "clients sending their request headers one byte a second (slowloris)")
	flag.IntVar(&o.idlers, "idle", 200, "connections that open and send nothing")
	flag.StringVar(&o.get, "get", "/", "target of the plain GETs timed during the attack")
	flag.StringVar(&o.post, "post", "/", "target the tricklers POST to")
	flag.StringVar(&o.big, "big", "/", "target with a large answer (a few MiB) for the non-readers")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: attack [flags] host:port\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	o.addr = flag.Arg(0)
	if _, err := get(o.addr, o.get, 5*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "attack: the server does not answer GET %s before the attack: %v\n", o.get, err)
		os.Exit(1)
	}
	fmt.Printf("attacking %s for %s: %d tricklers, %d non-readers, %d header tricklers, %d idle connections\n",
		o.addr, o.dur, o.tricklers, o.nonReaders, o.headers, o.idlers)
	run(o)
}

func run(o opts) {
	end := time.Now().Add(o.dur)
	results := make(chan outcome, o.tricklers+o.nonReaders+o.headers+o.idlers)
	var wg sync.WaitGroup
	start := func(n int, kind string, fn func(c net.Conn) outcome) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dial(o.addr, kind == "non-reader")
				if err != nil {
					results <- outcome{kind: kind, what: "connect failed: " + err.Error()}
					return
				}
				defer c.Close()
				c.SetDeadline(end)
				results <- fn(c)
			}()
		}
	}
	t0 := time.Now()
	start(o.tricklers, "trickler", func(c net.Conn) outcome {
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: attack\r\nContent-Type: text/plain\r\nContent-Length: 1048576\r\n\r\n", o.post)
		go trickle(c, end)
		return answer(c, "trickler", t0)
	})
	start(o.headers, "header trickler", func(c net.Conn) outcome {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: attack\r\n", o.get)
		go trickle(c, end)
		return answer(c, "header trickler", t0)
	})
	start(o.idlers, "idle", func(c net.Conn) outcome { return answer(c, "idle", t0) })
	start(o.nonReaders, "non-reader", func(c net.Conn) outcome {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: attack\r\n\r\n", o.big)
		<-time.After(time.Until(end))
		// Only now read, to see whether the server had closed it.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if err == nil {
			return outcome{kind: "non-reader", what: fmt.Sprintf("closed by the server (%d bytes of the answer were waiting)", n), closed: true}
		}
		return outcome{kind: "non-reader", what: "still open", after: o.dur}
	})

	// Plain GETs, one after another, each on a new connection.
	var lat []time.Duration
	failed := map[string]int{}
	for time.Now().Before(end) {
		d, err := get(o.addr, o.get, 5*time.Second)
		if err != nil {
			failed[err.Error()]++
			continue
		}
		lat = append(lat, d)
		time.Sleep(50 * time.Millisecond) // the probe's pace
	}
	wg.Wait()
	close(results)
	report(o, lat, failed, results)
	d, err := get(o.addr, o.get, 5*time.Second)
	fmt.Printf("\nafter the attack: GET %s in %s (error: %v)\n", o.get, d.Round(time.Microsecond), err)
}

// dial connects; a non-reader gets a small receive buffer, so that the
// answer waits at the server rather than in this machine's kernel.
func dial(addr string, small bool) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if small {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}
	}
	return d.Dial("tcp", addr)
}

// trickle writes one byte a second until a write fails or the attack ends.
func trickle(c net.Conn, end time.Time) {
	for time.Now().Add(time.Second).Before(end) {
		time.Sleep(time.Second) // the attack's pace
		if _, err := c.Write([]byte("x")); err != nil {
			return
		}
	}
}

// answer waits for the server to answer or close c.
func answer(c net.Conn, kind string, t0 time.Time) outcome {
	line, err := bufio.NewReader(c).ReadString('\n')
	o := outcome{kind: kind, after: time.Since(t0), closed: true}
	var ne net.Error
	switch {
	case line != "":
		o.what = strings.TrimSpace(line)
	case err == io.EOF:
		o.what = "closed without an answer"
	case errors.As(err, &ne) && ne.Timeout():
		o.what, o.closed = "still open", false
	default:
		o.what = "reset (" + err.Error() + ")"
	}
	return o
}

// get times one GET on a new connection, read to its end.
func get(addr, target string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(start.Add(timeout))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: attack\r\nConnection: close\r\n\r\n", target)
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, err
	}
	if line, _, _ := strings.Cut(string(b), "\r\n"); !strings.HasPrefix(line, "HTTP/1.1 2") {
		return 0, fmt.Errorf("answered %q", line)
	}
	return time.Since(start), nil
}

func report(o opts, lat []time.Duration, failed map[string]int, results <-chan outcome) {
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p/100))].Round(time.Microsecond)
	}
	fmt.Printf("\nplain GET %s during the attack: %d answered, p50 %s, p99 %s, max %s\n", o.get, len(lat), pct(50), pct(99), pct(100))
	for e, n := range failed {
		fmt.Printf("  %d failed: %s\n", n, e)
	}
	type key struct{ kind, what string }
	count := map[key]int{}
	first, last := map[key]time.Duration{}, map[key]time.Duration{}
	for r := range results {
		k := key{r.kind, r.what}
		if count[k] == 0 || r.after < first[k] {
			first[k] = r.after
		}
		last[k] = max(last[k], r.after)
		count[k]++
	}
	keys := make([]key, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.kind+a.what, b.kind+b.what) })
	fmt.Println("\nattackers:")
	for _, k := range keys {
		when := ""
		if k.kind != "non-reader" && !strings.HasPrefix(k.what, "still open") {
			when = fmt.Sprintf(" after %s–%s", first[k].Round(time.Millisecond), last[k].Round(time.Millisecond))
		}
		fmt.Printf("  %4d %-16s %s%s\n", count[k], k.kind, k.what, when)
	}
}
