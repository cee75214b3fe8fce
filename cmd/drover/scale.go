package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/master"
)

func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "change the number of workers (or task workers) while serving, without losing a request; waits and prints the result",
		ArgsUsage: "N",
		Description: "New workers start next to the running ones and count once they said hello; when the pool shrinks, the\n" +
			"highest slots get no new work, finish their requests (up to max_wait_time) and leave. On a dynamic pool\n" +
			"(worker_num: {min, max}) N becomes its min: it grows from N on demand and shrinks back to N.\n" +
			"SIGTTIN and SIGTTOU to the master add and remove one worker the same way.",
		Flags: []cli.Flag{configFlag,
			&cli.BoolFlag{Name: "tasks", Usage: "scale the task workers instead of the workers"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("scale takes one argument, the new number of workers (e.g. drover scale 4)")
			}
			n, err := strconv.Atoi(c.Args().First())
			if err != nil || n < 1 {
				return fmt.Errorf("scale: %q is not a number of workers (want 1 or more, e.g. drover scale 4)", c.Args().First())
			}
			resp, err := command(c, master.Request{Cmd: "scale", N: n, Tasks: c.Bool("tasks")}, func(msg string) { fmt.Println(msg) })
			if err != nil {
				return err
			}
			fmt.Println(resp.Message)
			return nil
		},
	}
}

// printPools writes the pools' line of drover status: how many workers
// run, against the file's size and a dynamic pool's bounds.
func printPools(out io.Writer, pools []master.PoolStatus) {
	for _, p := range pools {
		name := "workers:"
		if p.Role != "worker" {
			name = "task workers:"
		}
		line := fmt.Sprintf("%-12s %d running", name, p.Size)
		if p.Ready != p.Size {
			line += fmt.Sprintf(" (%d ready)", p.Ready)
		}
		if p.Target != p.Size {
			line += fmt.Sprintf(", going to %d", p.Target)
		}
		if p.Dynamic {
			line += fmt.Sprintf("; dynamic %d..%d", p.Min, p.Max)
			if p.Min != p.Configured {
				line += fmt.Sprintf(" (configured min %d)", p.Configured)
			}
		} else {
			line += fmt.Sprintf("; configured %d", p.Configured)
		}
		fmt.Fprintln(out, line)
	}
}
