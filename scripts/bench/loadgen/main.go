// Command loadgen measures a length-prefixed echo server (4-byte big-endian
// length, body): round-trip latency percentiles and throughput with a closed
// loop of C connections, each sending one packet and waiting for its echo.
//
//	loadgen -addr 127.0.0.1:9501 -c 64 -d 10s -size 64
//	loadgen -serve 127.0.0.1:9601   # a single-process Go echo server, the baseline
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9501", "echo server address")
	conns := flag.Int("c", 1, "concurrent connections")
	dur := flag.Duration("d", 5*time.Second, "duration")
	size := flag.Int("size", 64, "packet body size in bytes")
	serve := flag.String("serve", "", "run a baseline Go echo server on this address instead")
	label := flag.String("label", "", "label for the result line")
	flag.Parse()
	if *serve != "" {
		baseline(*serve)
		return
	}
	lat, n, errs := run(*addr, *conns, *dur, *size)
	if len(lat) == 0 {
		fmt.Fprintf(os.Stderr, "loadgen: no round trip completed (%d errors)\n", errs)
		os.Exit(1)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("%-24s conns=%-4d size=%-6d req/s=%-10.0f p50=%-10s p99=%-10s errors=%d\n",
		*label, *conns, *size, float64(n)/dur.Seconds(), pct(0.50), pct(0.99), errs)
}

func run(addr string, conns int, dur time.Duration, size int) ([]time.Duration, int, int) {
	var mu sync.Mutex
	var all []time.Duration
	total, errs := 0, 0
	var wg sync.WaitGroup
	stop := time.Now().Add(dur)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, n, err := client(addr, size, stop)
			mu.Lock()
			all = append(all, lat...)
			total += n
			if err != nil {
				errs++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, total, errs
}

func client(addr string, size int, stop time.Time) ([]time.Duration, int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	pkt := make([]byte, 4+size)
	binary.BigEndian.PutUint32(pkt, uint32(size))
	buf := make([]byte, len(pkt))
	lat := make([]time.Duration, 0, 1<<16)
	n := 0
	for time.Now().Before(stop) {
		t0 := time.Now()
		if _, err := c.Write(pkt); err != nil {
			return lat, n, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return lat, n, err
		}
		lat = append(lat, time.Since(t0))
		n++
	}
	return lat, n, nil
}

// baseline is the single-process reference: a goroutine per connection.
func baseline(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			var hdr [4]byte
			for {
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					return
				}
				body := make([]byte, 4+binary.BigEndian.Uint32(hdr[:]))
				copy(body, hdr[:])
				if _, err := io.ReadFull(r, body[4:]); err != nil {
					return
				}
				if _, err := c.Write(body); err != nil {
					return
				}
			}
		}()
	}
}
