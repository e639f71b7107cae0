package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/server"
)

// TestConfigValidate: a config that cannot run is refused before anything
// is connected, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := server.Config{DatabaseURL: "postgres://nowhere.invalid/x", RedisURL: "redis://nowhere.invalid:1/0"}
	use := func(c server.Config) error { _, err := server.New(context.Background(), c); return err }
	configtest.Refuses(t, ok, use, []configtest.Case[server.Config]{
		{Field: "DatabaseURL", Change: func(c *server.Config) { c.DatabaseURL = "" }},
		{Field: "RedisURL", Change: func(c *server.Config) { c.RedisURL = "" }},
		{Field: "Concurrency", Change: func(c *server.Config) { c.Concurrency = -1 }},
		{Field: "QueueServers", Change: func(c *server.Config) { c.QueueServers = -2 }},
		{Field: "Dispatches", Change: func(c *server.Config) { c.Dispatches = -1 }},
		{Field: "ShutdownTimeout", Change: func(c *server.Config) { c.ShutdownTimeout = -time.Second }},
		{Field: "AuthPause", Change: func(c *server.Config) { c.AuthPause = -time.Second }},
		{Field: "CredentialsCheck", Change: func(c *server.Config) { c.CredentialsCheck = -time.Second }},
		{Field: "Groups", Change: func(c *server.Config) { c.Groups = []string{"urgent", "everything"} }},
	})
}

// TestConfigDefaults: the zero config runs every role with the named
// defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	want := server.Config{API: true, Worker: true, HTTPAddr: server.DefaultHTTPAddr, Concurrency: server.DefaultConcurrency,
		QueueServers: server.DefaultQueueServers, Dispatches: server.DefaultDispatches,
		ShutdownTimeout: server.DefaultShutdownTimeout, Groups: []string{"urgent", "dispatch", "routine"},
		ReadHeaderTimeout: server.DefaultReadHeaderTimeout, ReadTimeout: server.DefaultReadTimeout,
		WriteTimeout: server.DefaultWriteTimeout, IdleTimeout: server.DefaultIdleTimeout, MaxHeaderBytes: server.DefaultMaxHeaderBytes,
		RequestTimeout: api.DefaultRequestTimeout, StatementTimeout: server.DefaultStatementTimeout, Previews: api.DefaultPreviews}
	configtest.Defaults(t, want, server.Config{}.WithDefaults(), "Logger")
}
