package main

import (
	"context"
	"flag"
	"maps"
	"slices"

	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/secrets"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/storage"
)

// cmdServe runs crier in one of its roles.
func cmdServe(role string) func(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
		fs := newFlags(role, stderr)
		var c common
		c.register(fs, getenv)
		addr := fs.String("addr", server.DefaultHTTPAddr, "API listen address (env CRIER_ADDR)")
		concurrency := fs.Int("concurrency", server.DefaultConcurrency,
			"sends one worker process runs at once, per queue group (urgent and routine take turns during an alert; env CRIER_CONCURRENCY)")
		queueServers := fs.Int("queue-servers", server.DefaultQueueServers,
			"asynq servers per queue group in a worker process; each dequeues serially (env CRIER_QUEUE_SERVERS)")
		groups := fs.String("groups", "urgent,dispatch,routine",
			"queue groups a worker serves: urgent (alerts), dispatch (other posts' dispatches), routine (env CRIER_GROUPS)")
		migrate := fs.Bool("migrate", true, "apply migrations before starting")
		metricsAddr := fs.String("metrics-addr", "",
			"serve /metrics on this address instead of -addr; for worker processes (env CRIER_METRICS_ADDR)")
		pprof := fs.Bool("pprof", false, "serve Go's profiles (/debug/pprof/) on -metrics-addr, which it needs (env CRIER_PPROF)")
		requestTimeout := fs.Duration("request-timeout", api.DefaultRequestTimeout,
			"deadline of every API request, its body and queries included (env CRIER_REQUEST_TIMEOUT)")
		statementTimeout := fs.Duration("statement-timeout", server.DefaultStatementTimeout,
			"PostgreSQL statement_timeout of the API's queries; the workers have none (env CRIER_STATEMENT_TIMEOUT)")
		previews := fs.Int("previews", api.DefaultPreviews,
			"audience previews run at once; past it they wait a second, then get 429 (env CRIER_PREVIEWS)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if err := flagsFromEnv(fs, getenv, map[string]string{"addr": "CRIER_ADDR", "concurrency": "CRIER_CONCURRENCY",
			"queue-servers": "CRIER_QUEUE_SERVERS", "groups": "CRIER_GROUPS", "metrics-addr": "CRIER_METRICS_ADDR",
			"pprof": "CRIER_PPROF", "request-timeout": "CRIER_REQUEST_TIMEOUT", "statement-timeout": "CRIER_STATEMENT_TIMEOUT",
			"previews": "CRIER_PREVIEWS"}); err != nil {
			return err
		}
		ring, err := c.keyring()
		if err != nil {
			return err
		}
		if ring == nil && role != "api" {
			return fmt.Errorf("%s: the workers read the tenants' provider credentials: %w", role, secrets.ErrNoKey)
		}
		log := c.logger(stderr)
		cfg := server.Config{DatabaseURL: c.DatabaseURL, Secrets: ring, RedisURL: c.RedisURL, HTTPAddr: *addr,
			Concurrency: *concurrency, QueueServers: *queueServers, Groups: strings.Split(*groups, ","), Logger: log, MetricsAddr: *metricsAddr, API: role == "serve" || role == "api",
			Worker: role == "serve" || role == "worker"}
		cfg.PProf, cfg.RequestTimeout, cfg.StatementTimeout, cfg.Previews = *pprof, *requestTimeout, *statementTimeout, *previews
		if *migrate {
			if err := migrateDB(ctx, c.DatabaseURL, log); err != nil {
				return err
			}
		}
		srv, err := server.New(ctx, cfg)
		if err != nil {
			return err
		}
		defer srv.Close()
		log.Info("crier started", slog.String("role", role), slog.String("addr", srv.Addr()), slog.Any("secrets", ring))
		return srv.Run(ctx)
	}
}

func envOr(getenv env, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// flagsFromEnv sets each flag not given on the command line from its
// environment variable, if that is set: a flag beats the environment, the
// environment beats the default, and a bad value is an error naming the
// variable.
func flagsFromEnv(fs *flag.FlagSet, getenv env, vars map[string]string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		v := getenv(vars[name])
		if given[name] || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("%s=%q: %w", vars[name], v, err)
		}
	}
	return nil
}

func migrateDB(ctx context.Context, url string, log *slog.Logger) error {
	db, err := storage.Open(ctx, storage.Config{URL: url, MaxConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("migrations applied", slog.Any("versions", applied))
	}
	return nil
}

func cmdMigrate(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	var c common
	c.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return migrateDB(ctx, c.DatabaseURL, c.logger(stderr))
}

func cmdEmulator(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlags("emulator", stderr)
	fcmAddr := fs.String("fcm-addr", "127.0.0.1:4010", "FCM, OAuth and /emulator/* listen address (plain HTTP)")
	apnsAddr := fs.String("apns-addr", "127.0.0.1:4011", "APNs listen address (HTTP/2 over TLS)")
	stateDir := fs.String("state", ".crier/emulator", "directory of the emulator's certificate and credentials")
	latency := fs.Duration("latency", 0, "added to every answer, as a provider round trip")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := common{LogLevel: *logLevel}.logger(stderr)
	st, err := emulator.LoadOrCreateState(*stateDir)
	if err != nil {
		return err
	}
	emu, err := emulator.New(emulator.Config{FCMAddr: *fcmAddr, APNsAddr: *apnsAddr, Latency: *latency,
		State: st, Logger: log})
	if err != nil {
		return err
	}
	if err := emu.Start(); err != nil {
		return err
	}
	defer emu.Close()
	fmt.Fprintf(stdout, `emulator running
  FCM endpoint:  %s   (project %s)
  OAuth tokens:  %s
  APNs host:     %s   (team %s, key %s, topics %v)
  summary:       %s
  throttle:      curl -X POST '%s/emulator/throttle?for=2s&retry_after=1'   (every push 429 for 2 s)
  credentials:   %s (service-account.json, apns-key.p8, ca.pem)
`, emu.FCMEndpoint(), st.ProjectID, emu.TokenURI(), emu.APNsHost(), st.TeamID, st.KeyID, st.Topics,
		emu.SummaryURL(), strings.TrimSuffix(emu.FCMEndpoint(), "/v1"), *stateDir)
	<-ctx.Done()
	return nil
}
