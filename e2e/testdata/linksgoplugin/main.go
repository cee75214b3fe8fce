// Command linksgoplugin is an HTTP handler built with the SDK that links
// hashicorp/go-plugin for a use of its own but does not import worker/plugin:
// launch: auto sees go-plugin in its build info and launches it as a plugin,
// which it cannot serve (TestPluginLaunchWithoutWorkerPlugin).
package main

import (
	"net/http"

	_ "github.com/hashicorp/go-plugin"

	"github.com/drover-dev/drover/worker"
)

func main() { worker.RunHTTP(http.DefaultServeMux) }
