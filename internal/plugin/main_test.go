package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// roleEnv selects the helper-process role of the test binary.
const roleEnv = "DROVER_PLUGIN_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// report is what the "worker" role tells the test over fd 3.
type report struct {
	FD3IsSocket bool   `json:"fd3_is_socket"`
	Cwd         string `json:"cwd"`
	Mark        string `json:"mark"`
	Pid         int    `json:"pid"`
	Pgid        int    `json:"pgid"`
	CookieLeft  bool   `json:"cookie_left"`
}

// runRole plays a handler and returns its exit code.
func runRole(role string) int {
	switch role {
	case "worker":
		// Before Serve: Start must take this for output, not a broken
		// handshake.
		fmt.Println("early stdout")
		stop := make(chan struct{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := Serve(ctx, func() { close(stop) }); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			return 3
		}
		pair := os.NewFile(3, "pair")
		var st syscall.Stat_t
		isSock := syscall.Fstat(3, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFSOCK
		cwd, _ := os.Getwd()
		pgid, _ := syscall.Getpgid(0)
		b, _ := json.Marshal(report{
			FD3IsSocket: isSock, Cwd: cwd, Mark: os.Getenv("DROVER_TEST_MARK"),
			Pid: os.Getpid(), Pgid: pgid, CookieLeft: IsPluginLaunch(),
		})
		if _, err := pair.Write(append(b, '\n')); err != nil {
			return 4
		}
		// After Serve: must reach the logs, not the handshake channel.
		fmt.Println("late stdout")
		var one [1]byte
		if _, err := io.ReadFull(pair, one[:]); err != nil {
			return 5
		}
		if _, err := pair.Write(one[:]); err != nil {
			return 6
		}
		fmt.Fprintln(os.Stderr, "level=warning msg=careful")
		for i := range 25 {
			fmt.Fprintf(os.Stderr, "stderr line %d\n", i)
		}
		<-stop
		return 0
	case "silent":
		// Never says anything; Start must time out and kill it.
		time.Sleep(time.Hour)
		return 0
	case "crash":
		fmt.Fprintln(os.Stderr, "boot failed: missing config")
		return 78
	case "nocookie":
		err := Serve(context.Background(), nil)
		fmt.Println(errors.Is(err, ErrNotPluginLaunch))
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}
