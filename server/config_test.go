package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crier-push/crier/server"
)

// TestConfigValidate: a config that cannot run is refused before anything
// is connected, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := server.Config{DatabaseURL: "postgres://nowhere.invalid/x", RedisURL: "redis://nowhere.invalid:1/0"}
	tests := []struct {
		field  string
		change func(*server.Config)
	}{
		{"DatabaseURL", func(c *server.Config) { c.DatabaseURL = "" }},
		{"RedisURL", func(c *server.Config) { c.RedisURL = "" }},
		{"Concurrency", func(c *server.Config) { c.Concurrency = -1 }},
		{"QueueServers", func(c *server.Config) { c.QueueServers = -2 }},
		{"Dispatches", func(c *server.Config) { c.Dispatches = -1 }},
		{"ShutdownTimeout", func(c *server.Config) { c.ShutdownTimeout = -time.Second }},
		{"AuthPause", func(c *server.Config) { c.AuthPause = -time.Second }},
		{"CredentialsCheck", func(c *server.Config) { c.CredentialsCheck = -time.Second }},
		{"Groups", func(c *server.Config) { c.Groups = []string{"urgent", "everything"} }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.change(&cfg)
			_, err := server.New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New: %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestConfigDefaults: the zero config runs every role with the named
// defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := server.Config{}.WithDefaults()
	if !c.API || !c.Worker || c.HTTPAddr != server.DefaultHTTPAddr || c.Concurrency != server.DefaultConcurrency ||
		c.QueueServers != server.DefaultQueueServers || c.Dispatches != server.DefaultDispatches ||
		c.ShutdownTimeout != server.DefaultShutdownTimeout || len(c.Groups) != 3 || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
}
