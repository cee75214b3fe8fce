package pluginhook

import (
	"errors"
	"strings"
	"testing"
)

// A plugin launch of a binary that did not import worker/plugin fails with a
// message that says how to fix it; without the cookie nothing happens.
func TestServeIfLaunchedWithoutSupport(t *testing.T) {
	if err := ServeIfLaunched(func() {}); err != nil {
		t.Fatalf("without the cookie: %v; want nil", err)
	}
	t.Setenv(CookieKey, CookieValue)
	err := ServeIfLaunched(func() {})
	if !errors.Is(err, ErrNoPluginSupport) || !strings.Contains(err.Error(), `import _ "`+ImportPath+`"`) || !strings.Contains(err.Error(), "launch: exec") {
		t.Fatalf("plugin launch without worker/plugin: %v; want ErrNoPluginSupport naming the import and launch: exec", err)
	}
	called := false
	Register(func(func()) error { called = true; return nil })
	t.Cleanup(func() { Register(nil) })
	if err := ServeIfLaunched(func() {}); err != nil || !called {
		t.Fatalf("with a registered server: %v, called %v; want nil, true", err, called)
	}
}
