package emulator

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestConfigValidate: a config the emulator cannot run with is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field  string
		change func(*Config)
	}{
		{"FCMAddr", func(c *Config) { c.FCMAddr = "4010" }},
		{"APNsAddr", func(c *Config) { c.APNsAddr = "localhost" }},
		{"Latency", func(c *Config) { c.Latency = -time.Millisecond }},
		{"MaxRecords", func(c *Config) { c.MaxRecords = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			tt.change(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New: %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestConfigDefaults: the zero config gets the named defaults, and passes.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := Config{}.WithDefaults()
	want := Config{FCMAddr: DefaultAddr, APNsAddr: DefaultAddr, MaxRecords: DefaultMaxRecords}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Logger", "Now")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if got.Logger == nil || got.Now == nil {
		t.Errorf("defaults left Logger or Now nil")
	}
	if err := got.validate(); err != nil {
		t.Errorf("validate of the defaults: %v", err)
	}
}
