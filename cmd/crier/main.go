// Command crier is the push notification delivery service: one binary whose
// subcommands run the service (serve, api, worker), prepare it (migrate,
// tenant, publisher, feed, key, secrets), stand in for Google's and Apple's
// servers (emulator), and show it working (demo).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // devices name IANA time zones; do not depend on the host's tz database
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crier:", err)
		os.Exit(1)
	}
}

// env reads the environment; tests pass their own.
type env func(string) string

// run runs one subcommand.
func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("no command given")
	}
	cmds := commands()
	c, ok := cmds[args[0]]
	if !ok {
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			usage(stdout)
			return nil
		}
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], getenv, stdout, stderr)
}
