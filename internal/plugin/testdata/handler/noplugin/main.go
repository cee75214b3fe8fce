// Command noplugin is the same minimal handler as withplugin without
// internal/plugin: it says "ready" on stdout and waits for EOF on fd 3.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.NewFile(3, "pair"))
}
