package fcm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/crier-push/crier/providers/fcm"
)

// TestConfigValidate: a config no client can be built from is refused by
// New, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	f := newFakeFCM(t, sent)
	ok := fcm.Config{ProjectID: project, ServiceAccountJSON: f.serviceAccount()}
	tests := []struct {
		name, field string
		change      func(*fcm.Config)
	}{
		{"no project", "ProjectID", func(c *fcm.Config) { c.ProjectID = "" }},
		{"no service account", "ServiceAccountJSON", func(c *fcm.Config) { c.ServiceAccountJSON = nil }},
		{"service account not json", "ServiceAccountJSON", func(c *fcm.Config) { c.ServiceAccountJSON = []byte("{") }},
		{"endpoint without scheme", "Endpoint", func(c *fcm.Config) { c.Endpoint = "fcm.googleapis.com/v1" }},
		{"endpoint not http", "Endpoint", func(c *fcm.Config) { c.Endpoint = "ftp://fcm.googleapis.com/v1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.change(&cfg)
			_, err := fcm.New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New: %v, want an error naming %s", err, tt.field)
			}
		})
	}
	if _, err := fcm.New(context.Background(), ok); err != nil {
		t.Errorf("New with the default endpoint: %v", err)
	}
}

// TestConfigDefaults: the zero fields get the named defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := fcm.Config{}.WithDefaults()
	if c.Endpoint != fcm.DefaultEndpoint || c.Now == nil {
		t.Errorf("defaults: Endpoint %q (want %q), Now set %t", c.Endpoint, fcm.DefaultEndpoint, c.Now != nil)
	}
}
