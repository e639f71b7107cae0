package dispatcher

import (
	"testing"

	"github.com/crier-push/crier/internal/configtest"
)

// TestConfigValidate: a config the dispatcher cannot run with is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	configtest.Refuses(t, Config{}, func(c Config) error { _, err := New(nil, nil, c); return err }, []configtest.Case[Config]{
		{Field: "PageSize", Change: func(c *Config) { c.PageSize = -1 }},
		{Field: "EnqueueWorkers", Change: func(c *Config) { c.EnqueueWorkers = -8 }},
		{Field: "EmergencyEnqueueWorkers", Change: func(c *Config) { c.EmergencyEnqueueWorkers = -1 }},
	})
}

// TestConfigDefaults: the zero config gets the named defaults, and passes;
// no Holder is made up.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := Config{}.WithDefaults()
	configtest.Defaults(t, Config{PageSize: DefaultPageSize, EnqueueWorkers: DefaultEnqueueWorkers,
		EmergencyEnqueueWorkers: DefaultEmergencyEnqueueWorkers}, got, "Logger", "Now", "Observer")
	if got.Holder != nil {
		t.Errorf("defaults made up a Holder: %+v", got)
	}
	if _, err := New(nil, nil, Config{}); err != nil {
		t.Errorf("New with the zero config: %v", err)
	}
}
