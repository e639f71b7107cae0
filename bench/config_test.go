package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestConfigValidate: a config a run cannot be made with is refused by Run
// before anything is started or seeded, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{AdminDatabaseURL: "postgres://nowhere.invalid/x", Binary: "/nowhere/crier", Municipalities: Municipalities}
	tests := []struct {
		name, field string
		change      func(*Config)
	}{
		{"no database", "AdminDatabaseURL", func(c *Config) { c.AdminDatabaseURL = "" }},
		{"no binary", "Binary", func(c *Config) { c.Binary = "" }},
		{"no municipalities", "Municipalities", func(c *Config) { c.Municipalities = nil }},
		{"negative devices", "Devices", func(c *Config) { c.Devices = -1 }},
		{"no tenant", "Tenants", func(c *Config) { c.Tenants = -1 }},
		{"too many tenants", "Tenants", func(c *Config) { c.Tenants = 11 }},
		{"negative workers", "Workers", func(c *Config) { c.Workers = -2 }},
		{"negative concurrency", "Concurrency", func(c *Config) { c.Concurrency = -200 }},
		{"negative latency", "Latency", func(c *Config) { c.Latency = -time.Millisecond }},
		{"negative alert", "AlertDevices", func(c *Config) { c.AlertDevices = -1 }},
		{"too few for an alert", "Devices", func(c *Config) { c.Devices = 7 }},
		{"negative ceiling tasks", "CeilingTasks", func(c *Config) { c.CeilingTasks = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.change(&cfg)
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Run: %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestConfigDefaults: the zero fields get the named defaults; the alert and
// the ceilings shrink with a small run.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{Devices: DefaultDevices, Tenants: DefaultTenants, Workers: DefaultWorkers,
			Concurrency: DefaultConcurrency, Latency: DefaultLatency, AlertDevices: DefaultAlertDevices,
			CeilingTasks: DefaultCeilingTasks}},
		// The first tenant has 20,000 - 2 × 2,000 = 16,000: the alert is an
		// eighth of them.
		{"small", Config{Devices: 20_000}, Config{Devices: 20_000, Tenants: DefaultTenants, Workers: DefaultWorkers,
			Concurrency: DefaultConcurrency, Latency: DefaultLatency, AlertDevices: 2_000, CeilingTasks: 20_000}},
		{"set", Config{Devices: 50, Tenants: 1, Workers: 1, Concurrency: 3, Latency: time.Millisecond, AlertDevices: 5, CeilingTasks: 10},
			Config{Devices: 50, Tenants: 1, Workers: 1, Concurrency: 3, Latency: time.Millisecond, AlertDevices: 5, CeilingTasks: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.in.WithDefaults()
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Config{}, "Progress", "Logger")); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
			if got.Progress == nil || got.Logger == nil {
				t.Errorf("defaults left Progress or Logger nil")
			}
		})
	}
}
