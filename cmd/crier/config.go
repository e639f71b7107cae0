package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// Defaults for reaching the services on the local machine.
const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/crier?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// common are the settings every command that talks to the services shares;
// they come from the environment and can be overridden by flags.
type common struct {
	DatabaseURL string
	RedisURL    string
	LogLevel    string
	// getenv is kept for the master keys (secrets.go), which come from the
	// environment only: a flag would show them in ps.
	getenv env
}

func (c *common) register(fs *flag.FlagSet, getenv env) {
	c.getenv = getenv
	fs.StringVar(&c.DatabaseURL, "database-url", cmp.Or(getenv("CRIER_DATABASE_URL"), defaultDatabaseURL),
		"PostgreSQL URL (env CRIER_DATABASE_URL)")
	fs.StringVar(&c.RedisURL, "redis-url", cmp.Or(getenv("CRIER_REDIS_URL"), defaultRedisURL),
		"Redis URL: redis://host:port/db, rediss://..., redis-socket:///path (env CRIER_REDIS_URL)")
	fs.StringVar(&c.LogLevel, "log-level", cmp.Or(getenv("CRIER_LOG_LEVEL"), "info"),
		"debug, info, warn or error (env CRIER_LOG_LEVEL)")
}

func (c common) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

type command struct {
	summary string
	run     func(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":     {"run the API, the dispatcher and the workers in one process", cmdServe("serve")},
		"api":       {"run the HTTP API only", cmdServe("api")},
		"worker":    {"run the dispatcher and the send workers only", cmdServe("worker")},
		"migrate":   {"apply the database migrations", cmdMigrate},
		"emulator":  {"run the FCM and APNs emulator", cmdEmulator},
		"tenant":    {"create a tenant, set its FCM/APNs credentials or its send rate", cmdTenant},
		"publisher": {"create a publisher (municipality or organisation)", cmdPublisher},
		"feed":      {"create a feed", cmdFeed},
		"key":       {"create, list, revoke or rotate API keys (app or publisher)", cmdKey},
		"audit":     {"read the audit log: every action taken with a key or by the operator", cmdAudit},
		"area":      {"import a tenant's areas from GeoJSON", cmdArea},
		"demo":      {"set up a demo tenant with emulator devices, serve, and publish a post", cmdDemo},
		"bench":     {"measure crier end to end against this machine's ceilings", cmdBench},
		"secrets":   {"make a master key, or rotate the stored secrets to a new one", cmdSecrets},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: crier <command> [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'crier <command> -h' for a command's flags")
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("crier "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// readFile reads a file named by a flag; "-" reads standard input.
func readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

func required(fs *flag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if f := fs.Lookup(n); f == nil || f.Value.String() == "" {
			missing = append(missing, "-"+n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: missing %s", fs.Name(), strings.Join(missing, ", "))
	}
	return nil
}
