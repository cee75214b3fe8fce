// Command echo is a drover stream handler that sends every packet back as it
// came (length header or EOF marker included). See examples/echo.yaml.
package main

import "github.com/drover-dev/drover/worker"

func main() {
	worker.Run(worker.Events{
		OnReceive: func(s *worker.Server, conn uint64, data []byte) {
			// Send copies data, which is valid only during this call. It
			// fails only once the master is gone, and then Run exits anyway.
			_ = s.Send(conn, data)
		},
	})
}
