package demo

import (
	"context"
	"testing"

	"github.com/crier-push/crier/internal/configtest"
)

// TestConfigValidate: a config the demo cannot run with is refused by Run
// before anything is started, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{DatabaseURL: "postgres://nowhere.invalid/x", RedisURL: "redis://nowhere.invalid:1/0"}
	configtest.Refuses(t, ok, func(c Config) error { return Run(context.Background(), c) }, []configtest.Case[Config]{
		{Field: "DatabaseURL", Change: func(c *Config) { c.DatabaseURL = "" }},
		{Field: "RedisURL", Change: func(c *Config) { c.RedisURL = "" }},
		{Field: "Devices", Change: func(c *Config) { c.Devices = -1 }},
		{Field: "Addr", Change: func(c *Config) { c.Addr = "8080" }},
	})
}

// TestConfigDefaults: the zero fields get the named defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	configtest.Defaults(t, Config{Addr: DefaultAddr, Devices: DefaultDevices, KeyFile: DefaultKeyFile}, Config{}.WithDefaults(), "Out", "Logger")
}
