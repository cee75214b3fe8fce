// Package plugin adds `launch: plugin` support to a Go handler built with
// drover's SDKs (worker and taskworker). A handler opts in with one blank
// import in its main package:
//
//	import _ "github.com/drover-dev/drover/worker/plugin"
//
// Its init registers the plugin side of the launch (hashicorp/go-plugin's
// handshake and drover's small gRPC control service: health, Go runtime
// stats, a graceful stop request) with the SDKs, which run it before their
// hello when the manager launched the process as a plugin. Nothing else
// changes: requests still travel as frames on fd 3, exactly as with
// `launch: exec`.
//
// Without this import a handler links neither go-plugin nor gRPC (75
// packages; examples/hello shrinks from 19.6 MB to 6.5 MB, 363 to 196
// packages): `launch: auto` starts it with exec, and `launch: plugin` of it is refused at start with a message
// naming the key and this import. With the import, `launch: auto` finds
// go-plugin in the binary's build info and launches it as a plugin. The
// build info lists modules, not packages: a handler that links go-plugin
// for a use of its own, without this import, is also launched as a plugin
// by auto, and then fails its start with a message that names this import
// and launch: exec.
//
// Why an import and not a build tag: the choice lives in the handler's
// source, where a reader sees it, and every build (go build, go install,
// the Makefile, a Dockerfile) makes the same binary without remembering a
// -tags flag. Why a blank import and not a call (plugin.RunHTTP(h), ...):
// one line covers every entry point of both SDKs (Run, RunHTTP, Serve,
// ServeHTTP, user processes, taskworker.Run), as database/sql drivers and
// net/http/pprof register themselves.
package plugin

import (
	iplugin "github.com/drover-dev/drover/internal/plugin"
	"github.com/drover-dev/drover/internal/pluginhook"
)

func init() {
	pluginhook.Register(iplugin.ServeIfLaunched)
}
