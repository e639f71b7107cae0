package dispatcher

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestConfigValidate: a config the dispatcher cannot run with is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field  string
		change func(*Config)
	}{
		{"PageSize", func(c *Config) { c.PageSize = -1 }},
		{"EnqueueWorkers", func(c *Config) { c.EnqueueWorkers = -8 }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			tt.change(&cfg)
			_, err := New(nil, nil, cfg)
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
	want := Config{PageSize: DefaultPageSize, EnqueueWorkers: DefaultEnqueueWorkers}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Logger", "Now", "Observer")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if got.Logger == nil || got.Now == nil || got.Observer == nil || got.Holder != nil {
		t.Errorf("defaults: Logger, Now or Observer nil, or a Holder made up: %+v", got)
	}
	if _, err := New(nil, nil, Config{}); err != nil {
		t.Errorf("New with the zero config: %v", err)
	}
}
