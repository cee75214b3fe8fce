package master

import (
	"strings"
	"testing"

	"github.com/drover-dev/drover/ipc"
)

// A PHP script that dies of an uncaught exception before it loads the SDK
// (its autoloader missing) ends its stderr with PHP's stack trace; the
// message is the line before "Stack trace:", not the trace's last line.
func TestDescribeExitQuotesPHPsMessageNotItsTrace(t *testing.T) {
	ev := ipc.WorkerEvent{ExitCode: 255, Stderr: []string{
		`PHP Fatal error:  Uncaught Error: Class "Drover\Symfony\Runtime" not found in /srv/app/vendor/autoload_runtime.php:22`,
		`Stack trace:`,
		`#0 /srv/app/public/index.php(5): require_once()`,
		`#1 {main}`,
		`  thrown in /srv/app/vendor/autoload_runtime.php on line 22`,
	}}
	want := `exited with code 255; last stderr: PHP Fatal error:  Uncaught Error: Class "Drover\Symfony\Runtime" not found in /srv/app/vendor/autoload_runtime.php:22`
	if got := describeExit(ev); got != want {
		t.Fatalf("describeExit:\n got %s\nwant %s", got, want)
	}
	ev.Stderr = []string{"cannot start: the test's failure switch is on"}
	if got, want := describeExit(ev), "exited with code 255; last stderr: cannot start: the test's failure switch is on"; got != want {
		t.Fatalf("describeExit of a one-line tail:\n got %s\nwant %s", got, want)
	}
}

// A program that exits 0 before it is ready ran to its end instead of
// serving (a PHP front controller under worker.cmd): the start failure says
// so and what to run instead.
func TestStartFailureExplainsACleanExit(t *testing.T) {
	ev := ipc.WorkerEvent{ExitCode: 0, Stderr: []string{"</html>"}}
	got := startFailure(ev)
	for _, want := range []string{"exited with code 0; last stderr: </html>", "ran to its end", "Worker::serve()", "laravel-worker.php", "APP_RUNTIME"} {
		if !strings.Contains(got, want) {
			t.Fatalf("startFailure = %q, want it to contain %q", got, want)
		}
	}
	ev.ExitCode = 78
	if got, want := startFailure(ev), describeExit(ev); got != want {
		t.Fatalf("startFailure of a boot failure = %q, want describeExit's %q", got, want)
	}
}
