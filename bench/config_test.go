package bench

import (
	"context"
	"testing"
	"time"

	"github.com/crier-push/crier/internal/configtest"
)

// TestConfigValidate: a config a run cannot be made with is refused by Run
// before anything is started or seeded, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{AdminDatabaseURL: "postgres://nowhere.invalid/x", Binary: "/nowhere/crier", Municipalities: Municipalities}
	configtest.Refuses(t, ok, func(cfg Config) error { _, err := Run(context.Background(), cfg); return err }, []configtest.Case[Config]{
		{Name: "no database", Field: "AdminDatabaseURL", Change: func(c *Config) { c.AdminDatabaseURL = "" }},
		{Name: "no binary", Field: "Binary", Change: func(c *Config) { c.Binary = "" }},
		{Name: "no municipalities", Field: "Municipalities", Change: func(c *Config) { c.Municipalities = nil }},
		{Name: "negative devices", Field: "Devices", Change: func(c *Config) { c.Devices = -1 }},
		{Name: "no tenant", Field: "Tenants", Change: func(c *Config) { c.Tenants = -1 }},
		{Name: "too many tenants", Field: "Tenants", Change: func(c *Config) { c.Tenants = 11 }},
		{Name: "negative workers", Field: "Workers", Change: func(c *Config) { c.Workers = -2 }},
		{Name: "negative concurrency", Field: "Concurrency", Change: func(c *Config) { c.Concurrency = -200 }},
		{Name: "negative latency", Field: "Latency", Change: func(c *Config) { c.Latency = -time.Millisecond }},
		{Name: "negative alert", Field: "AlertDevices", Change: func(c *Config) { c.AlertDevices = -1 }},
		{Name: "too few for an alert", Field: "Devices", Change: func(c *Config) { c.Devices = 7 }},
		{Name: "negative ceiling tasks", Field: "CeilingTasks", Change: func(c *Config) { c.CeilingTasks = -1 }},
	})
}

// TestConfigDefaults: the zero fields get the named defaults; the alert and
// the ceilings shrink with a small run.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in, want Config
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
			configtest.Defaults(t, tt.want, tt.in.WithDefaults(), "Progress", "Logger")
		})
	}
}
