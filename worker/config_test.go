package worker

import (
	"testing"
	"time"

	"github.com/crier-push/crier/internal/configtest"
)

// TestConfigValidate: a config the worker cannot run with is refused by
// New, naming the field; the refusal comes before the dependencies are used.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	configtest.Refuses(t, Config{}, func(c Config) error { _, err := New(nil, nil, nil, nil, c); return err }, []configtest.Case[Config]{
		{Field: "PostCacheTTL", Change: func(c *Config) { c.PostCacheTTL = -time.Second }},
		{Field: "MaxRateWait", Change: func(c *Config) { c.MaxRateWait = -time.Second }},
		{Field: "AuthPause", Change: func(c *Config) { c.AuthPause = -time.Second }},
		{Field: "SendTimeout", Change: func(c *Config) { c.SendTimeout = -time.Second }},
	})
}

// TestConfigDefaults: the zero config gets the named defaults, and passes.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := Config{}.WithDefaults()
	configtest.Defaults(t, Config{PostCacheTTL: DefaultPostCacheTTL, MaxRateWait: DefaultMaxRateWait,
		AuthPause: DefaultAuthPause, SendTimeout: DefaultSendTimeout}, got, "Logger", "Now", "Observer")
	if err := got.validate(); err != nil {
		t.Errorf("validate of the defaults: %v", err)
	}
}

// TestRecorderConfig: the zero recorder config gets the named defaults; a
// MaxBatch below one is refused by name, a negative Linger is not (it means
// no lingering).
func TestRecorderConfig(t *testing.T) {
	t.Parallel()
	configtest.Defaults(t, RecorderConfig{MaxBatch: DefaultMaxBatch, Linger: DefaultLinger}, RecorderConfig{}.WithDefaults(), "Logger")
	configtest.Refuses(t, RecorderConfig{}, func(c RecorderConfig) error { _, err := NewRecorder(nil, c); return err },
		[]configtest.Case[RecorderConfig]{{Field: "MaxBatch", Change: func(c *RecorderConfig) { c.MaxBatch = -1 }}})
	rec, err := NewRecorder(nil, RecorderConfig{Linger: -time.Second})
	if err != nil {
		t.Fatalf("NewRecorder(Linger -1s): %v", err)
	}
	if rec.linger != 0 || rec.maxBatch != DefaultMaxBatch {
		t.Errorf("NewRecorder(Linger -1s): linger %s, max batch %d; want 0 and %d", rec.linger, rec.maxBatch, DefaultMaxBatch)
	}
}
