// Command withplugin is a minimal handler that imports internal/plugin: launched
// by plugin.Start it serves the control service; run directly (no cookie) it
// behaves like noplugin. Used by TestMeasureLaunchCost for start time, RSS
// and binary size.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/drover-dev/drover/internal/plugin"
)

func main() {
	stop := make(chan struct{})
	err := plugin.Serve(context.Background(), func() { close(stop) })
	switch {
	case errors.Is(err, plugin.ErrNotPluginLaunch):
		fmt.Println("ready")
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.NewFile(3, "pair"))
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	}
}
