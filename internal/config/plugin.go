package config

import "debug/buildinfo"

// PluginSupport is what an executable's Go build info says about
// `launch: plugin`.
type PluginSupport int

// What PluginSupportOf finds.
const (
	// NotSDK: no Go build info (a script, PHP, a C program), or a Go
	// program not built with drover's module.
	NotSDK PluginSupport = iota
	// PluginUnknown: built with drover's module, but the build info does
	// not list the modules linked (a test binary of go test -c).
	PluginUnknown
	// PluginAbsent: built with drover's SDK without worker/plugin: it does
	// not link go-plugin and cannot answer the handshake.
	PluginAbsent
	// PluginPresent: links go-plugin: built with worker/plugin (or with an
	// SDK older than worker/plugin, which always linked it).
	PluginPresent
)

// Modules PluginSupportOf looks for.
const (
	sdkModule      = "github.com/drover-dev/drover"
	goPluginModule = "github.com/hashicorp/go-plugin"
)

// PluginSupportOf reads the build info of the executable at path. The build
// info lists modules, not packages: go-plugin's module stands for
// worker/plugin, the only SDK package that links it.
func PluginSupportOf(path string) PluginSupport {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return NotSDK
	}
	sdk, plugin := bi.Main.Path == sdkModule, false
	for _, d := range bi.Deps {
		switch d.Path {
		case sdkModule:
			sdk = true
		case goPluginModule:
			plugin = true
		}
	}
	switch {
	case !sdk:
		return NotSDK
	case plugin:
		return PluginPresent
	case len(bi.Deps) == 0:
		return PluginUnknown
	}
	return PluginAbsent
}
