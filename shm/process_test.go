package shm

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// Multi-process tests: the test binary doubles as the other processes
// (os/exec's helper-process pattern). A helper maps the region passed as
// its fd 3 (DROVER_SHM_FD=3), as drover's workers do.

const helperEnv = "SHM_TEST_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	os.Exit(m.Run())
}

// mixedSpec: 1,000 rows are used; room for them with a spare.
var mixedSpec = Spec{Tables: []TableSpec{{Name: "t", Size: 1024, Columns: []ColumnSpec{
	{Name: "hits", Type: Int}, {Name: "value", Type: String, Size: 40}, {Name: "check", Type: Int}}}}}

const mixedKeys = 1000

func runHelper(role string) int {
	r, err := Inherited()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	switch role {
	case "mixed":
		return helperMixed(r)
	case "hold":
		return helperHold(r, os.Getenv("SHM_STATE"))
	}
	fmt.Fprintln(os.Stderr, "helper: unknown role", role)
	return 2
}

// helperMixed does SHM_OPS random operations on the keys k0..k999 of
// table t: incr of hits (each one logged, one byte appended to SHM_LOG
// once it returned), sets of value with check = its CRC-32, and gets that
// verify check against value (a torn read would not match). It prints
// "half" halfway and "incr N" at the end.
func helperMixed(r *Region) int {
	tb, _ := r.Table("t")
	hits, _ := tb.Column("hits")
	value, _ := tb.Column("value")
	check, _ := tb.Column("check")
	ops, _ := strconv.Atoi(os.Getenv("SHM_OPS"))
	seed, _ := strconv.ParseUint(os.Getenv("SHM_SEED"), 10, 64)
	logf, err := os.OpenFile(os.Getenv("SHM_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	row := tb.NewRow()
	buf := make([]byte, 0, 64)
	one := []byte{'+'}
	incrs := 0
	for i := range ops {
		if i == ops/2 {
			fmt.Println("half")
		}
		k := "k" + strconv.Itoa(rng.IntN(mixedKeys))
		switch n := rng.IntN(10); {
		case n < 4:
			if _, err := tb.Incr(k, hits, 1); err != nil {
				fmt.Fprintln(os.Stderr, "incr:", err)
				return 1
			}
			logf.Write(one)
			incrs++
		case n < 6:
			row.Reset()
			v := fmt.Sprintf("%d:%d:%x", os.Getpid(), i, rng.Uint64())
			row.SetString(value, v)
			row.SetInt(check, int64(crc32.ChecksumIEEE([]byte(v))))
			if err := tb.Set(k, row); err != nil {
				fmt.Fprintln(os.Stderr, "set:", err)
				return 1
			}
		case n < 9:
			if tb.Get(k, row) && !consistent(row.Bytes(value), row.Int(check)) {
				fmt.Fprintf(os.Stderr, "torn read of %s: value %q, check %d\n", k, row.Bytes(value), row.Int(check))
				return 1
			}
		default:
			if b, ok := tb.GetString(k, value, buf); ok {
				buf = b
			}
		}
	}
	fmt.Printf("incr %d\n", incrs)
	return 0
}

// consistent: check is the CRC-32 of value, or both are zero (never set,
// or reset by the repair of a set its writer died in).
func consistent(value []byte, check int64) bool {
	if len(value) == 0 {
		return check == 0 || check == int64(crc32.ChecksumIEEE(nil))
	}
	return check == int64(crc32.ChecksumIEEE(value))
}

// helper is a helper process started by a test.
type helper struct {
	cmd  *exec.Cmd
	out  *bufio.Scanner
	log  string
	done chan error
}

func startHelper(t *testing.T, r *Region, role string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, EnvFD+"=3")
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = []*os.File{r.File()}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A pipe of our own: Wait (on its goroutine below) must not close
	// what we read, as StdoutPipe's would.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		stdout.Close()
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, out: bufio.NewScanner(stdout), done: make(chan error, 1)}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-h.done
		stdout.Close()
	})
	go func() { h.done <- cmd.Wait() }()
	return h
}

// line waits for the helper's next output line.
func (h *helper) line(t *testing.T) string {
	t.Helper()
	if !h.out.Scan() {
		t.Fatalf("helper %d ended its output without the line expected (%v)", h.cmd.Process.Pid, h.out.Err())
	}
	return h.out.Text()
}

// runMixed runs 8 helpers doing 1 M mixed operations (125,000 each) on
// 1,000 rows; with victim >= 0 that helper is killed -9 at its half. It
// returns the increments made, per helper: what each printed, or for
// the victim what it logged (one byte per increment that returned).
func runMixed(t *testing.T, r *Region, victim int) (logged []int, victimPID int) {
	const procs, total = 8, 1_000_000
	dir := t.TempDir()
	hs := make([]*helper, procs)
	for i := range hs {
		hs[i] = startHelper(t, r, "mixed", "SHM_OPS="+strconv.Itoa(total/procs), "SHM_SEED="+strconv.Itoa(i+1),
			"SHM_LOG="+filepath.Join(dir, fmt.Sprint(i)))
		hs[i].log = filepath.Join(dir, fmt.Sprint(i))
	}
	logged = make([]int, procs)
	if victim >= 0 {
		if l := hs[victim].line(t); l != "half" {
			t.Fatalf("victim said %q, want half", l)
		}
		victimPID = hs[victim].cmd.Process.Pid
		// Killed while it holds a lock, if we catch it at one within a
		// second (the memory says who holds what), else where it is.
		tb, _ := r.Table("t")
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && !holds(tb, victimPID); {
		}
		syscall.Kill(victimPID, syscall.SIGKILL)
		<-hs[victim].done
		hs[victim].done <- nil // for the cleanup
		b, _ := os.ReadFile(hs[victim].log)
		logged[victim] = len(b)
		t.Logf("victim pid %d killed after %d increments", victimPID, logged[victim])
	}
	// No process stuck: every other one finishes. The bound is far above
	// the run's time (a few seconds with -race on two cores).
	deadline := time.After(3 * time.Minute)
	for i, h := range hs {
		if i == victim {
			continue
		}
		got := make(chan string, 1)
		go func() {
			var last string
			for h.out.Scan() {
				last = h.out.Text()
			}
			got <- last
		}()
		select {
		case last := <-got:
			err := <-h.done
			h.done <- err
			if err != nil {
				t.Fatalf("helper %d (pid %d): %v", i, h.cmd.Process.Pid, err)
			}
			n, err := strconv.Atoi(strings.TrimPrefix(last, "incr "))
			if err != nil {
				t.Fatalf("helper %d ended with %q", i, last)
			}
			logged[i] = n
		case <-deadline:
			t.Fatalf("helper %d (pid %d) stuck: not done after 3 minutes", i, h.cmd.Process.Pid)
		}
	}
	return logged, victimPID
}

// holds reports whether pid holds a lock of tb.
func holds(tb *Table, pid int) bool {
	if uint32(atomic.LoadUint64(tb.alloc)) == uint32(pid) {
		return true
	}
	for bi := uint32(0); bi < tb.nb; bi++ {
		if uint32(atomic.LoadUint64(&tb.bucket(bi).lock)) == uint32(pid) {
			return true
		}
	}
	return false
}

// checkTable verifies what the helpers left: no lock held, no odd
// sequence, the count matching the rows, every row consistent; it
// returns the sum of the hits counters.
func checkTable(t *testing.T, tb *Table) int64 {
	t.Helper()
	hits, _ := tb.Column("hits")
	value, _ := tb.Column("value")
	check, _ := tb.Column("check")
	for bi := uint32(0); bi < tb.nb; bi++ {
		b := tb.bucket(bi)
		if b.lock != 0 && !holderGone(b.lock) || b.seq&1 != 0 && !holderGone(b.lock) {
			t.Fatalf("bucket %d: lock %x seq %d after the run", bi, b.lock, b.seq)
		}
	}
	var sum int64
	rows := 0
	tb.Range(tb.NewRow(), func(key string, row *Row) bool {
		rows++
		sum += row.Int(hits)
		if !consistent(row.Bytes(value), row.Int(check)) {
			t.Errorf("row %s: value %q check %d", key, row.Bytes(value), row.Int(check))
		}
		return true
	})
	if rows != tb.Count() || rows > mixedKeys {
		t.Fatalf("%d rows, count says %d", rows, tb.Count())
	}
	return sum
}

// 8 processes, 1 M mixed get/set/incr on 1,000 rows: the counters add up
// to the increments made, and no read saw a row half written.
func TestProcessesMixed(t *testing.T) {
	r := newRegion(t, mixedSpec)
	start := time.Now()
	logged, _ := runMixed(t, r, -1)
	took := time.Since(start)
	tb, _ := r.Table("t")
	sum := checkTable(t, tb)
	want := 0
	for _, n := range logged {
		want += n
	}
	if sum != int64(want) {
		t.Fatalf("counters sum to %d, the processes made %d increments", sum, want)
	}
	t.Logf("1M operations by 8 processes in %s; %d increments, all counted", took, want)
}

// The same with one process killed -9 in the middle: the others finish
// (none stuck on a lock it held), and the counters add up to the
// increments made, the victim's counted by its own log (the one it may
// have made without logging it yet included).
func TestProcessesMixedKill(t *testing.T) {
	r := newRegion(t, mixedSpec)
	logged, pid := runMixed(t, r, 3)
	tb, _ := r.Table("t")
	sum := checkTable(t, tb)
	want := 0
	for _, n := range logged {
		want += n
	}
	if sum != int64(want) && sum != int64(want)+1 {
		t.Fatalf("counters sum to %d, the processes made %d increments (victim pid %d logged %d)", sum, want, pid, logged[3])
	}
	st := tb.Stats()
	t.Logf("sum %d, logged %d; locks recovered %d, torn sets %d", sum, want, st.Recovered, st.Torn)
}

// helperHold leaves the region as a writer of table t dies in the middle
// of an operation (state), prints "holding" and waits to be killed.
func helperHold(r *Region, state string) int {
	tb, _ := r.Table("t")
	hits, _ := tb.Column("hits")
	me := ownerWord()
	bucketOf := func(key string) (uint32, *bucket) {
		bi := tb.bucketOf(key)
		return bi, tb.bucket(bi)
	}
	switch state {
	case "set": // mid-set of value and check of row a: sequence odd
		bi, b := bucketOf("a")
		mustLock(&b.lock, me)
		idx, _ := tb.findLocked(b, "a")
		value, _ := tb.Column("value")
		check, _ := tb.Column("check")
		atomic.StoreUint64(&b.cols, 1<<value.idx|1<<check.idx)
		store32(&b.intent, opSet<<opShift|idx)
		store32(&b.seq, load32(&b.seq)+1)
		storeString(unsafe.Add(tb.row(idx-1), value.off), "half writ")
		_ = bi
	case "incr": // mid-incr of row a: one word
		_, b := bucketOf("a")
		mustLock(&b.lock, me)
		idx, _ := tb.findLocked(b, "a")
		store32(&b.intent, opIncr<<opShift|idx)
		store32(&b.seq, load32(&b.seq)+1)
		_ = hits
	case "alloc": // took a row for key n, died before recording which
		bi, b := bucketOf("n")
		mustLock(&b.lock, me)
		store32(&b.intent, opAlloc<<opShift)
		if _, err := tb.allocRow(bi); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "delete": // unlinked row a, died before freeing it
		bi, b := bucketOf("a")
		mustLock(&b.lock, me)
		idx, prev := tb.findLocked(b, "a")
		store32(&b.intent, opDelete<<opShift|idx)
		seq := load32(&b.seq)
		store32(&b.seq, seq+1)
		tb.unlinkAfter(b, idx, prev)
		store32(&b.seq, seq+2)
		_ = bi
	case "allocator": // died holding the allocator's lock, mid-pop
		mustLock(tb.alloc, me)
		store32(tb.count, load32(tb.count)+5) // the words disagree
	default:
		fmt.Fprintln(os.Stderr, "unknown state", state)
		return 2
	}
	fmt.Println("holding")
	select {}
}

func mustLock(p *uint64, me uint64) {
	if !atomic.CompareAndSwapUint64(p, 0, me) {
		panic("lock busy")
	}
}

// A writer killed -9 in each state of an operation: the next process to
// need its bucket (or the allocator) takes the lock over and repairs it;
// nobody waits for the dead.
func TestKilledHolder(t *testing.T) {
	for _, tt := range []struct {
		state string
		check func(t *testing.T, tb *Table, c map[string]Column)
	}{
		{"set", func(t *testing.T, tb *Table, c map[string]Column) {
			row := tb.NewRow()
			if !tb.Get("a", row) {
				t.Fatal("row a gone: a torn set resets its columns, it keeps the row")
			}
			if row.Int(c["hits"]) != 7 || len(row.Bytes(c["value"])) != 0 || row.Int(c["check"]) != 0 {
				t.Fatalf("row a after the repair: hits %d value %q check %d; want 7, its set columns reset",
					row.Int(c["hits"]), row.Bytes(c["value"]), row.Int(c["check"]))
			}
			if tb.Stats().Torn != 1 {
				t.Fatalf("torn %d, want 1", tb.Stats().Torn)
			}
		}},
		{"incr", func(t *testing.T, tb *Table, c map[string]Column) {
			if n, err := tb.Incr("a", c["hits"], 1); err != nil || n != 8 {
				t.Fatalf("incr after the repair: %d %v", n, err)
			}
		}},
		{"alloc", func(t *testing.T, tb *Table, c map[string]Column) {
			if tb.Count() != 2 {
				t.Fatalf("count %d, want 2 (a and n): the row the dead took for n is freed by the repair", tb.Count())
			}
		}},
		{"delete", func(t *testing.T, tb *Table, c map[string]Column) {
			if v, ok := tb.GetInt("a", c["hits"]); !ok || v != 1 || tb.Count() != 1 {
				t.Fatalf("a %d %v, count %d: want a new row a and the deleted one freed", v, ok, tb.Count())
			}
		}},
		{"allocator", func(t *testing.T, tb *Table, c map[string]Column) {
			if err := tb.SetInt("b", c["hits"], 1); err != nil || tb.Count() != 2 {
				t.Fatalf("insert after a dead allocator: %v, count %d", err, tb.Count())
			}
		}},
	} {
		t.Run(tt.state, func(t *testing.T) {
			r := newRegion(t, mixedSpec)
			tb, _ := r.Table("t")
			c := map[string]Column{}
			for _, col := range tb.Columns() {
				c[col.Name()] = col
			}
			tb.SetInt("a", c["hits"], 7)
			h := startHelper(t, r, "hold", "SHM_STATE="+tt.state)
			if l := h.line(t); l != "holding" {
				t.Fatalf("helper said %q", l)
			}
			syscall.Kill(h.cmd.Process.Pid, syscall.SIGKILL)
			err := <-h.done
			h.done <- err
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("helper: %v", err)
			}
			// A read goes past a dead writer whose sequence is odd (set,
			// incr); a write to its bucket takes its lock over and
			// repairs (alloc, delete: the sequence is even, readers were
			// never held up).
			done := make(chan struct{})
			go func() {
				defer close(done)
				switch tt.state {
				case "alloc":
					tb.SetInt("n", c["hits"], 1)
				case "delete":
					tb.SetInt("a", c["hits"], 1)
				case "allocator":
				default:
					tb.Exists("a")
				}
				tt.check(t, tb, c)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("stuck behind the dead holder's lock")
			}
			if tt.state != "allocator" && tb.Stats().Recovered == 0 {
				t.Fatal("no lock recovered")
			}
		})
	}
}

// Recover (what the master runs when a worker exits) releases the locks
// of a dead pid that nobody waited for.
func TestRecoverPID(t *testing.T) {
	r := newRegion(t, mixedSpec)
	tb, _ := r.Table("t")
	hits, _ := tb.Column("hits")
	tb.SetInt("a", hits, 1)
	h := startHelper(t, r, "hold", "SHM_STATE=incr")
	h.line(t)
	pid := h.cmd.Process.Pid
	if n := r.Recover(pid); n != 0 {
		t.Fatalf("recovered %d locks of a live process", n)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	err := <-h.done
	h.done <- err
	if n := r.Recover(pid); n != 1 {
		t.Fatalf("recovered %d locks of the dead process, want 1", n)
	}
	b := tb.bucket(tb.bucketOf("a"))
	if b.lock != 0 || b.seq&1 != 0 {
		t.Fatalf("bucket after Recover: lock %x seq %d", b.lock, b.seq)
	}
}
