package apns_test

import (
	"strings"
	"testing"

	"github.com/crier-push/crier/providers/apns"
)

// TestConfigValidate: a config no client can be built from is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	f := newFakeAPNs(t, sent)
	ok := apns.Config{KeyP8: f.keyP8(), KeyID: keyID, TeamID: teamID, Topic: topic}
	tests := []struct {
		name, field string
		change      func(*apns.Config)
	}{
		{"no topic", "Topic", func(c *apns.Config) { c.Topic = "" }},
		{"no key id", "KeyID", func(c *apns.Config) { c.KeyID = "" }},
		{"no team id", "TeamID", func(c *apns.Config) { c.TeamID = "" }},
		{"no credentials", "KeyP8", func(c *apns.Config) { c.KeyP8 = nil }},
		{"key and certificate", "KeyP8", func(c *apns.Config) { c.CertPEM = []byte("cert") }},
		{"two certificates", "CertP12", func(c *apns.Config) { c.KeyP8, c.CertPEM, c.CertP12 = nil, []byte("pem"), []byte("p12") }},
		{"host not https", "Host", func(c *apns.Config) { c.Host = "http://api.push.apple.com" }},
		{"host without scheme", "Host", func(c *apns.Config) { c.Host = "api.push.apple.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.change(&cfg)
			_, err := apns.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New: %v, want an error naming %s", err, tt.field)
			}
		})
	}
	if _, err := apns.New(ok); err != nil {
		t.Errorf("New with the default host: %v", err)
	}
}

// TestConfigDefaults: the zero fields get the named defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := apns.Config{}.WithDefaults()
	if c.Host != apns.DefaultHost || c.Now == nil {
		t.Errorf("defaults: Host %q (want %q), Now set %t", c.Host, apns.DefaultHost, c.Now != nil)
	}
}
