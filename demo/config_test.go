package demo

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestConfigValidate: a config the demo cannot run with is refused by Run
// before anything is started, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{DatabaseURL: "postgres://nowhere.invalid/x", RedisURL: "redis://nowhere.invalid:1/0"}
	tests := []struct {
		field  string
		change func(*Config)
	}{
		{"DatabaseURL", func(c *Config) { c.DatabaseURL = "" }},
		{"RedisURL", func(c *Config) { c.RedisURL = "" }},
		{"Devices", func(c *Config) { c.Devices = -1 }},
		{"Addr", func(c *Config) { c.Addr = "8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.change(&cfg)
			err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Run: %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestConfigDefaults: the zero fields get the named defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := Config{}.WithDefaults()
	want := Config{Addr: DefaultAddr, Devices: DefaultDevices}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Out", "Logger")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if got.Out == nil || got.Logger == nil {
		t.Errorf("defaults left Out or Logger nil")
	}
}
