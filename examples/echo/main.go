// Command echo is a drover stream handler that sends every packet back as it
// came (length header or EOF marker included). See examples/echo.yaml.
//
// It imports worker/plugin, so drover's default `launch: auto` starts it
// through hashicorp/go-plugin (handshake, health checks, Go runtime figures
// in `drover status`); without that import it would be started with exec
// and link neither go-plugin nor gRPC, as examples/hello is.
package main

import (
	"github.com/drover-dev/drover/worker"
	_ "github.com/drover-dev/drover/worker/plugin" // launch: plugin support
)

func main() {
	worker.Run(worker.Events{
		OnReceive: func(s *worker.Server, conn uint64, data []byte) {
			// Send copies data, which is valid only during this call. It
			// fails only once the master is gone, and then Run exits anyway.
			_ = s.Send(conn, data)
		},
	})
}
