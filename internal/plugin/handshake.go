package plugin

import (
	"errors"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/drover-dev/drover/internal/pluginhook"
)

// The go-plugin handshake between the manager and a handler. CookieKey must
// be set to CookieValue in the handler's environment (Start does it) or Serve
// refuses to run; ProtocolVersion is compared by go-plugin on both sides and
// must be bumped when the control service changes incompatibly.
const (
	CookieKey       = pluginhook.CookieKey
	CookieValue     = pluginhook.CookieValue
	ProtocolVersion = 1
)

// ErrNotPluginLaunch is returned by Serve when the process was not started by
// Start (the magic cookie is missing), typically because a user ran the
// handler by hand. Serve prints nothing and does not exit in that case; the
// SDK says what the executable is.
var ErrNotPluginLaunch = errors.New("plugin: not launched by drover (" + CookieKey + " is not set)")

// IsPluginLaunch reports whether this process was started by Start: the magic
// cookie is in the environment. Serve removes the cookie from the
// environment once the manager has attached, so that the handler's own
// children do not inherit it; after that IsPluginLaunch reports false.
func IsPluginLaunch() bool {
	return pluginhook.Launched()
}

// handshake is the go-plugin view of the constants above; a function, not a
// variable, so that nobody can change it under the other side.
func handshake() goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   CookieKey,
		MagicCookieValue: CookieValue,
	}
}
