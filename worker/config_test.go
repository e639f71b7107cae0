package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestConfigValidate: a config the worker cannot run with is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field  string
		change func(*Config)
	}{
		{"PostCacheTTL", func(c *Config) { c.PostCacheTTL = -time.Second }},
		{"MaxRateWait", func(c *Config) { c.MaxRateWait = -time.Second }},
		{"AuthPause", func(c *Config) { c.AuthPause = -time.Second }},
		{"SendTimeout", func(c *Config) { c.SendTimeout = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			tt.change(&cfg)
			// The config is refused before the dependencies are used.
			_, err := New(nil, nil, nil, nil, cfg)
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
	want := Config{PostCacheTTL: DefaultPostCacheTTL, MaxRateWait: DefaultMaxRateWait,
		AuthPause: DefaultAuthPause, SendTimeout: DefaultSendTimeout}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Logger", "Now", "Observer")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if got.Logger == nil || got.Now == nil || got.Observer == nil {
		t.Errorf("defaults left Logger, Now or Observer nil: %+v", got)
	}
	if err := got.validate(); err != nil {
		t.Errorf("validate of the defaults: %v", err)
	}
}

// TestRecorderConfig: the zero recorder config gets the named defaults; a
// MaxBatch below one is refused by name, a negative Linger is not (it means
// no lingering).
func TestRecorderConfig(t *testing.T) {
	t.Parallel()
	got := RecorderConfig{}.WithDefaults()
	want := RecorderConfig{MaxBatch: DefaultMaxBatch, Linger: DefaultLinger}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(RecorderConfig{}, "Logger")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if _, err := NewRecorder(nil, RecorderConfig{MaxBatch: -1}); err == nil || !strings.Contains(err.Error(), "MaxBatch") {
		t.Errorf("NewRecorder(MaxBatch -1): %v, want an error naming MaxBatch", err)
	}
	rec, err := NewRecorder(nil, RecorderConfig{Linger: -time.Second})
	if err != nil {
		t.Fatalf("NewRecorder(Linger -1s): %v", err)
	}
	if rec.linger != 0 || rec.maxBatch != DefaultMaxBatch {
		t.Errorf("NewRecorder(Linger -1s): linger %s, max batch %d; want 0 and %d", rec.linger, rec.maxBatch, DefaultMaxBatch)
	}
}
