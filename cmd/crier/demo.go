package main

import (
	"context"
	"io"

	"github.com/crier-push/crier/demo"
)

func cmdDemo(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	var c common
	c.register(fs, getenv)
	addr := fs.String("addr", envOr(getenv, "CRIER_ADDR", ":8080"), "API listen address (env CRIER_ADDR)")
	devices := fs.Int("devices", 300, "how many emulator devices to register")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The operator's master keys if they set any; else the demo's key file.
	ring, err := c.keyring()
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Config{DatabaseURL: c.DatabaseURL, RedisURL: c.RedisURL, Addr: *addr,
		Devices: *devices, Out: stdout, Logger: c.logger(stderr), Secrets: ring})
}
