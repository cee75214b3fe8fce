// Command shmhost runs a command with a fresh region of shared tables and
// atomics, as drover's workers get one: its memfd at fd 3, named by
// DROVER_SHM_FD. The PHP SDK's tests run under it (make test-php), and so
// can a script that wants a table outside drover.
//
//	shmhost -table 'cache:1000:value=string(256),hits=int,updated=float' -atomic requests -- phpunit
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/drover-dev/drover/shm"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, " ") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var tables, atomics list
	flag.Var(&tables, "table", "a table: name:size:col=type,col=type (types: int, float, string(N)); repeatable")
	flag.Var(&atomics, "atomic", "an atomic's name; repeatable")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: shmhost [-table name:size:col=type,...] [-atomic name] -- command [args]")
		os.Exit(2)
	}
	spec := shm.Spec{Atomics: atomics}
	for _, t := range tables {
		parts := strings.SplitN(t, ":", 3)
		if len(parts) != 3 {
			fail("-table %q: want name:size:col=type,...", t)
		}
		size, err := strconv.Atoi(parts[1])
		if err != nil {
			fail("-table %q: size %q", t, parts[1])
		}
		ts := shm.TableSpec{Name: parts[0], Size: size}
		for _, col := range strings.Split(parts[2], ",") {
			name, typ, _ := strings.Cut(col, "=")
			ct, n, err := shm.ParseType(typ)
			if err != nil {
				fail("-table %q: column %s: %v", t, name, err)
			}
			ts.Columns = append(ts.Columns, shm.ColumnSpec{Name: name, Type: ct, Size: n})
		}
		spec.Tables = append(spec.Tables, ts)
	}
	r, err := shm.Create(spec)
	if err != nil {
		fail("%v", err)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r.File()}
	cmd.Env = append(os.Environ(), shm.EnvFD+"=3")
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "shmhost: "+format+"\n", args...)
	os.Exit(2)
}
