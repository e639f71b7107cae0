package configcheck_test

import (
	"testing"
	"time"

	"github.com/crier-push/crier/internal/configcheck"
)

// TestChecks: each check passes a good value and refuses a bad one in the
// words every package's config uses.
func TestChecks(t *testing.T) {
	t.Parallel()
	passing := []error{configcheck.Required("URL", "x"), configcheck.Required("Key", []byte("k")),
		configcheck.Positive("N", 1), configcheck.AtLeast("N", 2, 2), configcheck.NotNegative("D", time.Duration(0)),
		configcheck.HostPort("Addr", ":80"), configcheck.URL("Host", "https://h", "https"), configcheck.If(false, "never")}
	for i, err := range passing {
		if err != nil {
			t.Errorf("check %d refused a good value: %v", i, err)
		}
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{configcheck.Required("URL", ""), "URL is required"},
		{configcheck.Required("Key", []byte(nil)), "Key is required"},
		{configcheck.Positive("Devices", -1), "Devices -1: must be positive"},
		{configcheck.AtLeast("Concurrency", 0, 1), "Concurrency 0: must be at least 1"},
		{configcheck.NotNegative("Latency", -time.Millisecond), "Latency -1ms: must not be negative"},
		{configcheck.NotNegative("MaxConns", int32(-1)), "MaxConns -1: must not be negative"},
		{configcheck.HostPort("Addr", "8080"), `Addr "8080": address 8080: missing port in address`},
		{configcheck.URL("Endpoint", "ftp://h/v1", "http", "https"), `Endpoint "ftp://h/v1": want an http or https URL`},
		{configcheck.URL("Host", "api.push.apple.com", "https"), `Host "api.push.apple.com": want an https URL`},
		{configcheck.If(true, "A and B: set one, not both"), "A and B: set one, not both"},
	} {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("refusal %v, want %q", tt.err, tt.want)
		}
	}
}

// TestFirst: only the first refusal is told, after what the config is for;
// none when every check passed.
func TestFirst(t *testing.T) {
	t.Parallel()
	if err := configcheck.First("x config", nil, nil); err != nil {
		t.Errorf("First of passing checks: %v", err)
	}
	err := configcheck.First("x config", nil, configcheck.Required("A", ""), configcheck.Required("B", ""))
	if want := "x config: A is required"; err == nil || err.Error() != want {
		t.Errorf("First = %v, want %q", err, want)
	}
}
