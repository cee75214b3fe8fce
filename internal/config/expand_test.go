package config

import (
	"errors"
	"strings"
	"testing"
)

func TestExpandString(t *testing.T) {
	env := map[string]string{"HOST": "10.0.0.7", "PORT": "9000", "EMPTY": ""}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	for _, tc := range []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${HOST}", want: "10.0.0.7"},
		{in: "tcp://${HOST}:${PORT}", want: "tcp://10.0.0.7:9000"},
		{in: "${MISSING:-8080}", want: "8080"},
		{in: "${EMPTY:-fallback}", want: "fallback"}, // as the shell: empty takes the default
		{in: "${EMPTY}", want: ""},
		{in: "${PORT:-1}", want: "9000"},
		{in: "${MISSING:-}", want: ""},
		{in: "${MISSING:-a:b-c}", want: "a:b-c"},
		// Only ${ is special: other dollars are literal (worker.env's $NAME
		// and $$ keep their meaning for the manager).
		{in: "$HOST", want: "$HOST"},
		{in: "$$5", want: "$$5"},
		{in: "price: 5$", want: "price: 5$"},
		{in: "$${HOST}", want: "${HOST}"},
		{in: "$$${HOST}", want: "$10.0.0.7"},
		{in: "$$$${HOST}", want: "$${HOST}"},
		{in: "a$", want: "a$"},
		{in: "${MISSING}", err: "${MISSING} is not set in drover's environment (export MISSING=..., give a default with ${MISSING:-value}, or write $${ for a literal ${)"},
		{in: "x${HOST", err: "unclosed ${ (end it with }, or write $${ for a literal ${)"},
		{in: "${}", err: `${} names no variable (want ${NAME} or ${NAME:-default}; write $${ for a literal ${)`},
		{in: "${1X}", err: `${1X}: "1X" is not a variable name (letters, digits and _, not starting with a digit; write $${ for a literal ${)`},
		{in: "${A-b}", err: `${A-b}: "A-b" is not a variable name (letters, digits and _, not starting with a digit; write $${ for a literal ${)`},
	} {
		got, err := expandString(tc.in, lookup)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestParseExpandsEnvironment: values of every type take ${VAR} and
// ${VAR:-default}; an expanded value is typed by what it expands to, so
// worker_num: ${N} is an integer.
func TestParseExpandsEnvironment(t *testing.T) {
	fx := newFixture(t)
	t.Setenv("DROVER_T_WORKERS", "3")
	t.Setenv("DROVER_T_BIN", fx.dir+"/bin")
	t.Setenv("DROVER_T_HOST", "127.0.0.1")
	t.Setenv("DROVER_T_SECRET", "s3cr$t")
	c, err := fx.parse(`worker_num: ${DROVER_T_WORKERS}
max_wait_time: "${DROVER_T_WAIT:-7s}"
package_max_length: ${DROVER_T_MAX:-4M}
daemonize: ${DROVER_T_DAEMON:-false}
worker:
  cmd: ["${DROVER_T_BIN}/echo", "--mode=${DROVER_T_MODE:-prod}"]
  env:
    SECRET: ${DROVER_T_SECRET}
    LITERAL: $${NOT_EXPANDED}
    PASS: $HOME
listeners:
  - address: tcp://${DROVER_T_HOST}:${DROVER_T_PORT:-9501}
    protocol: http
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkerNum != 3 || c.MaxWaitTime.D().String() != "7s" || c.PackageMaxLength != 4<<20 || c.Daemonize {
		t.Errorf("worker_num %d, max_wait_time %s, package_max_length %d, daemonize %v",
			c.WorkerNum, c.MaxWaitTime.D(), c.PackageMaxLength, c.Daemonize)
	}
	if got := strings.Join(c.Worker.Cmd, " "); got != fx.dir+"/bin/echo --mode=prod" || c.Worker.Path != fx.dir+"/bin/echo" {
		t.Errorf("cmd %q (path %s)", got, c.Worker.Path)
	}
	if e := c.Worker.Env; e["SECRET"] != "s3cr$t" || e["LITERAL"] != "${NOT_EXPANDED}" || e["PASS"] != "$HOME" {
		t.Errorf("env %v", e)
	}
	if l := c.Listeners[0]; l.Address != "tcp://127.0.0.1:9501" || l.Addr != "127.0.0.1:9501" {
		t.Errorf("listener %q (%s)", l.Address, l.Addr)
	}
}

// TestParseExpansionErrors: a variable that is unset and has no default,
// or a malformed ${, is an error naming the file, line and key, with the
// other problems of the file.
func TestParseExpansionErrors(t *testing.T) {
	fx := newFixture(t)
	_, err := fx.parse(`worker_num: ${DROVER_T_UNSET_N}
worker:
  cmd: [../bin/echo, "${DROVER_T_UNSET_ARG"]
  env:
    DB: ${DROVER_T_UNSET_DB}
watch: ${DROVER_T_UNSET_W}
listeners:
  - address: tcp://127.0.0.1:${DROVER_T_UNSET_PORT}
    protocol: http
`)
	want := []string{
		`drover.yaml:1: worker_num: ${DROVER_T_UNSET_N} is not set in drover's environment (export DROVER_T_UNSET_N=..., give a default with ${DROVER_T_UNSET_N:-value}, or write $${ for a literal ${)`,
		`drover.yaml:3: worker.cmd[1]: unclosed ${ (end it with }, or write $${ for a literal ${)`,
		`drover.yaml:5: worker.env.DB: ${DROVER_T_UNSET_DB} is not set in drover's environment (export DROVER_T_UNSET_DB=..., give a default with ${DROVER_T_UNSET_DB:-value}, or write $${ for a literal ${)`,
		`drover.yaml:6: watch: ${DROVER_T_UNSET_W} is not set in drover's environment (export DROVER_T_UNSET_W=..., give a default with ${DROVER_T_UNSET_W:-value}, or write $${ for a literal ${)`,
		`drover.yaml:8: listeners[0].address: ${DROVER_T_UNSET_PORT} is not set in drover's environment (export DROVER_T_UNSET_PORT=..., give a default with ${DROVER_T_UNSET_PORT:-value}, or write $${ for a literal ${)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("%T is not a *config.Error", err)
	}
}

// TestExpandedValueIsTypedByItsText: an expansion that gives a number where
// a string is wanted, or text where a number is wanted, is judged as if
// written in the file.
func TestExpandedValueIsTypedByItsText(t *testing.T) {
	fx := newFixture(t)
	t.Setenv("DROVER_T_N", "two")
	_, err := fx.parse(minimal + "worker_num: ${DROVER_T_N}\n")
	if err == nil || !strings.Contains(err.Error(), `drover.yaml:6: worker_num: want an integer, got "two"`) {
		t.Fatalf("got %v", err)
	}
}
