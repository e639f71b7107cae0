package emulator

import (
	"testing"
	"time"

	"github.com/crier-push/crier/internal/configtest"
)

// TestConfigValidate: a config the emulator cannot run with is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	configtest.Refuses(t, Config{}, func(c Config) error { _, err := New(c); return err }, []configtest.Case[Config]{
		{Field: "FCMAddr", Change: func(c *Config) { c.FCMAddr = "4010" }},
		{Field: "APNsAddr", Change: func(c *Config) { c.APNsAddr = "localhost" }},
		{Field: "Latency", Change: func(c *Config) { c.Latency = -time.Millisecond }},
		{Field: "MaxRecords", Change: func(c *Config) { c.MaxRecords = -1 }},
	})
}

// TestConfigDefaults: the zero config gets the named defaults, and passes.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := Config{}.WithDefaults()
	configtest.Defaults(t, Config{FCMAddr: DefaultAddr, APNsAddr: DefaultAddr, MaxRecords: DefaultMaxRecords}, got, "Logger", "Now")
	if err := got.validate(); err != nil {
		t.Errorf("validate of the defaults: %v", err)
	}
}
