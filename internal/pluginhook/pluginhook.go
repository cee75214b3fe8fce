// Package pluginhook is the seam between drover's Go SDKs (worker,
// taskworker) and the plugin side of `launch: plugin`, so that the SDKs do
// not link hashicorp/go-plugin and gRPC. It knows the magic cookie the
// manager sets for a plugin launch, and holds the function that serves the
// go-plugin handshake, which the package worker/plugin registers from its
// init when a handler imports it. It imports nothing but the standard
// library.
package pluginhook

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// The magic cookie of the go-plugin handshake: the manager sets CookieKey to
// CookieValue in the environment of a handler it launches as a plugin.
// internal/plugin uses the same two constants.
const (
	CookieKey   = "DROVER_PLUGIN"
	CookieValue = "a7c4e9d2-drover-worker-handler"
)

// ImportPath is the package a handler imports to support `launch: plugin`.
const ImportPath = "github.com/drover-dev/drover/worker/plugin"

// ErrNoPluginSupport is returned by ServeIfLaunched when drover launched
// the process as a plugin but the binary was built without worker/plugin.
var ErrNoPluginSupport = errors.New(`launched with launch: plugin, but this executable was built without drover's plugin support: ` +
	`add import _ "` + ImportPath + `" to its main package and rebuild, or set the handler's launch: exec`)

var (
	mu    sync.Mutex
	serve func(onStop func()) error // set by Register, at init
)

// Register installs the function that serves the plugin side of the
// handshake (internal/plugin.ServeIfLaunched); worker/plugin calls it from
// its init. A second call replaces the first.
func Register(fn func(onStop func()) error) {
	mu.Lock()
	defer mu.Unlock()
	serve = fn
}

// Launched reports whether this process was launched as a plugin: the magic
// cookie is in its environment.
func Launched() bool {
	return os.Getenv(CookieKey) == CookieValue
}

// ServeIfLaunched runs the registered plugin side when the process was
// launched as a plugin, and does nothing otherwise; both SDKs call it before
// their hello. onStop runs when the manager asks for a graceful stop. A
// plugin launch of a binary without worker/plugin returns an error wrapping
// ErrNoPluginSupport.
func ServeIfLaunched(onStop func()) error {
	if !Launched() {
		return nil
	}
	mu.Lock()
	fn := serve
	mu.Unlock()
	if fn == nil {
		return fmt.Errorf("%w (%s=%s is set)", ErrNoPluginSupport, CookieKey, CookieValue)
	}
	return fn(onStop)
}
