package plugin

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// Serve runs the plugin side of the launch in the handler process and
// returns once the manager is connected: go-plugin's handshake line has been
// written to stdout and the manager's Start has attached to the control
// service. The worker SDK calls it first thing, then says hello on fd 3.
//
// onStop runs when the manager asks for a graceful stop (Process.RequestStop)
// or when the control service ends (go-plugin's Shutdown RPC, as sent by
// go-plugin's Client.Kill): at most once, on a gRPC goroutine, and it must
// return promptly — it should only start the stop (cancel a context, close
// a channel), not finish in-flight work itself. Serve never exits the
// process; the handler exits when its work is done.
//
// Without the magic cookie (the handler run by hand) Serve returns
// ErrNotPluginLaunch at once, prints nothing and exits nothing: go-plugin's
// generic "This binary is a plugin" message and its os.Exit(1) are never
// reached, so the SDK can print its own. When ctx ends before the manager
// attaches, Serve returns ctx.Err(); go-plugin's server goroutine may still
// be running, so the handler should exit then.
//
// What the SDK must know, from go-plugin's Serve (v1.8), which runs in a
// goroutine for the life of the process:
//   - Nothing may be written to stdout before Serve: the handshake is the
//     first line go-plugin's client expects there. (Start tolerates and logs
//     stray lines before the handshake, but a partial line would corrupt it.)
//   - go-plugin replaces os.Stdout and os.Stderr with pipes to its stdio
//     stream after the handshake. Serve puts the original files back once
//     attached, so fmt.Println and friends write to fd 1 and fd 2, which
//     Start logs line by line (stream stdout/stderr). Output written in the
//     short window before the attach goes through go-plugin's stdio stream
//     and is logged the same way. Writers that captured os.Stdout before
//     Serve keep working: the original files are never closed.
//   - go-plugin calls signal.Notify for os.Interrupt and discards SIGINT for
//     the life of the process: SIGINT no longer kills the handler. SIGTERM
//     and other signals are left alone; the SDK may still Notify SIGINT
//     itself (every registered channel receives it).
//   - go-plugin's own logging is limited to errors, written to stderr.
//   - After the attach, Serve unsets the cookie and go-plugin's PLUGIN_*
//     variables, so the handler's children do not inherit them.
func Serve(ctx context.Context, onStop func()) error {
	if !IsPluginLaunch() {
		return ErrNotPluginLaunch
	}
	stdout, stderr := os.Stdout, os.Stderr
	srv := newControlServer(onStop)
	served := make(chan struct{})
	go func() {
		defer close(served)
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig: handshake(),
			Plugins:         goplugin.PluginSet{controlPluginName: &controlPlugin{server: srv}},
			GRPCServer:      goplugin.DefaultGRPCServer,
			Logger: hclog.New(&hclog.LoggerOptions{
				Name:   "go-plugin",
				Level:  hclog.Error,
				Output: stderr,
			}),
		})
		// The control service is gone (Shutdown RPC or a serve error):
		// without it the manager cannot watch this worker.
		select {
		case <-srv.attached:
			srv.stop()
		default:
		}
	}()

	select {
	case <-srv.attached:
	case <-served:
		return errors.New("plugin: go-plugin server ended before the manager attached")
	case <-ctx.Done():
		return ctx.Err()
	}
	// The attach RPC happened after go-plugin swapped os.Stdout and
	// os.Stderr (it starts serving only then), and reached us through
	// channels: reading and restoring them here does not race.
	if os.Stdout != stdout {
		os.Stdout.Close()
		os.Stdout = stdout
	}
	if os.Stderr != stderr {
		os.Stderr.Close()
		os.Stderr = stderr
	}
	for _, k := range []string{
		CookieKey, "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT", "PLUGIN_PROTOCOL_VERSIONS",
		"PLUGIN_CLIENT_CERT", "PLUGIN_MULTIPLEX_GRPC",
		goplugin.EnvUnixSocketDir, goplugin.EnvUnixSocketGroup,
	} {
		_ = os.Unsetenv(k)
	}
	return nil
}

// ServeIfLaunched runs Serve when the process was started with launch:
// plugin and does nothing otherwise; both SDKs call it before their hello.
// onStop runs when the manager asks for a graceful stop over the control
// service. The handshake must finish within a minute.
func ServeIfLaunched(onStop func()) error {
	if !IsPluginLaunch() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Serve(ctx, onStop)
}
