// Package plugin launches Go handler executables through
// hashicorp/go-plugin (drover's `launch: plugin`) and serves the plugin side
// inside the handler. It is the only place in drover that knows go-plugin.
//
// Where it sits in the process model: the manager prepares each worker's
// exec.Cmd exactly as for `launch: exec` (argv, Env, Dir, ExtraFiles with the
// worker's socket pair as fd 3, SysProcAttr with Pdeathsig and Setpgid) and
// hands it to Start instead of calling cmd.Start. Start runs the go-plugin
// handshake on the child's stdout (magic cookie, core and drover protocol
// version), optionally verifies the binary's SHA-256 first, captures the
// child's stderr and stdout line by line into the manager's logs and a ring
// of the last lines, and connects a small gRPC control service: Health, Stats
// (Go runtime figures) and Stop (a graceful stop request). Inside the
// handler, the worker SDK calls Serve before it says hello on fd 3, through
// internal/pluginhook: the package worker/plugin registers ServeIfLaunched
// there from its init, so only handlers that import worker/plugin link this
// package (and go-plugin and gRPC with it); worker and taskworker import
// pluginhook alone, which needs only the standard library. Requests
// never travel over gRPC: the per-request path is the frame protocol on fd 3,
// exactly as with `launch: exec`.
//
// What this package deliberately does not use from go-plugin: Client.Kill
// (a Shutdown RPC, a fixed 2 s wait, then SIGKILL) and its waiting on the
// child. drover stops a worker with its own stop frame and a SIGTERM → grace
// → SIGKILL ladder, and learns of the exit from Process.Exited. Start plugs
// its own runner into go-plugin (ClientConfig.RunnerFunc), so go-plugin never
// touches the caller's exec.Cmd beyond appending its handshake variables to
// Env, and cmd.Start runs on the goroutine that calls Start.
//
// Control service: gRPC rather than go-plugin's net/rpc, because gRPC calls
// take a context (a health probe of a hung worker must time out; net/rpc
// calls cannot be cancelled) and because go-plugin's gRPC server registers
// the standard gRPC health service that Health uses. The service
// (drover.plugin.v1.Control) is registered by hand with grpc.ServiceDesc and
// carries google.protobuf.Empty and BytesValue (JSON) messages, so no
// generated code is needed. gRPC would be linked into a plugin handler
// either way (go-plugin's server imports it even for net/rpc plugins),
// which is why the plugin side is an opt-in import (worker/plugin) rather
// than part of the SDK: a handler launched with exec links neither.
package plugin
