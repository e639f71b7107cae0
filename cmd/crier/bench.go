package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/crier-push/crier/bench"
)

func cmdBench(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "registrations" {
		return cmdBenchRegistrations(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := newFlags("bench", stderr)
	var c common
	c.register(fs, getenv)
	devices := fs.Int("devices", 1_000_000, "devices to seed")
	tenants := fs.Int("tenants", 3, "tenants; the first holds 80 % of the devices and gets the broadcast")
	workers := fs.Int("workers", 2, "crier worker processes")
	concurrency := fs.Int("concurrency", 200, "sends in flight per worker process")
	latency := fs.Duration("latency", 20*time.Millisecond, "the emulator's answer time, like a provider round trip")
	alert := fs.Int("alert", 0, "devices the alert reaches (default 100,000, or an eighth of the broadcast if smaller)")
	out := fs.String("out", "", "write the results as JSON to this file")
	prof := fs.String("profile", "", "write a 10 s CPU profile of the first worker, taken mid-broadcast, to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find the crier binary: %w", err)
	}
	res, err := bench.Run(ctx, bench.Config{AdminDatabaseURL: c.DatabaseURL, Binary: self, Municipalities: bench.Municipalities,
		Devices: *devices, Tenants: *tenants, Workers: *workers, Concurrency: *concurrency, Latency: *latency,
		AlertDevices: *alert, ProfileFile: *prof, Progress: stderr, Logger: c.logger(stderr)})
	if err != nil {
		return err
	}
	res.Print(stdout)
	if *out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return fmt.Errorf("bench: write %s: %w", *out, err)
		}
	}
	if !res.Delivered {
		return fmt.Errorf("bench: not every device was delivered")
	}
	return nil
}

// cmdBenchRegistrations is `crier bench registrations`: concurrent clients
// register and update devices through a crier api process.
func cmdBenchRegistrations(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlags("bench registrations", stderr)
	var c common
	c.register(fs, getenv)
	devices := fs.Int("devices", bench.DefaultRegisterDevices, "installations to register, then update")
	clients := fs.Int("clients", bench.DefaultRegisterClients, "concurrent clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find the crier binary: %w", err)
	}
	res, err := bench.RunRegister(ctx, bench.RegisterConfig{AdminDatabaseURL: c.DatabaseURL, Binary: self,
		Devices: *devices, Clients: *clients, Progress: stderr})
	if err != nil {
		return err
	}
	res.Print(stdout)
	for _, p := range res.Phases {
		if p.Errors > 0 {
			return fmt.Errorf("bench: %d of %d %s requests failed", p.Errors, p.Requests, p.Name)
		}
	}
	return nil
}
