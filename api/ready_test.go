package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/api"
)

// logBuffer collects a logger's lines from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReadyz: /readyz says ok, or failing with a 503 and Retry-After, and
// which dependency fails; why it fails is logged at Warn, never told (the
// error names hosts and users), while /healthz stays up.
func TestReadyz(t *testing.T) {
	t.Parallel()
	refused := errors.New("dial tcp 10.20.30.40:6379: connect: connection refused")
	type readiness struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	tests := []struct {
		name   string
		redis  error
		status int
		want   readiness
	}{
		{"ok", nil, http.StatusOK, readiness{"ok", map[string]string{"postgres": "ok", "redis": "ok"}}},
		{"failing", refused, http.StatusServiceUnavailable, readiness{"failing", map[string]string{"postgres": "ok", "redis": "failing"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			e := newEnvWith(t, api.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Ready: map[string]api.Pinger{"redis": pinger{tt.redis}}})
			status, header, raw, err := e.send("GET", "/readyz", nil, "")
			if err != nil {
				t.Fatal(err)
			}
			var got readiness
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("decode %q: %v", raw, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("/readyz (-want +got):\n%s", diff)
			}
			if status != tt.status || (header.Get("Retry-After") != "") != (tt.redis != nil) {
				t.Errorf("/readyz: %d, Retry-After %q; want %d, with Retry-After when failing", status, header.Get("Retry-After"), tt.status)
			}
			if tt.redis == nil {
				return
			}
			if strings.Contains(string(raw), "10.20.30.40") {
				t.Errorf("/readyz tells the error: %s", raw)
			}
			if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "dependency=redis") ||
				!strings.Contains(l, "10.20.30.40") {
				t.Errorf("log %q, want a warning naming redis and its error", l)
			}
			if code := e.do("GET", "/healthz", "", nil, nil); code != http.StatusOK {
				t.Errorf("/healthz: %d, want 200", code)
			}
		})
	}
}
