package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/crier-push/crier/providers/emulator"
)

// TestMetrics: /metrics counts sends by tenant, provider and outcome, and
// shows provider latency, dispatch duration and the queues.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "nyheter", "Nyheter", true)
	for i, tok := range []string{
		emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "m1"),
		emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "m2"),
		emulator.FCMToken(emulator.Behaviour{Kind: emulator.Unregistered}, "m3"),
	} {
		if code := s.do("PUT", fmt.Sprintf("/v1/devices/m%d", i), s.AppKey, map[string]any{"provider": "fcm", "token": tok}, nil); code != http.StatusCreated {
			t.Fatalf("register: %d", code)
		}
	}
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	s.waitDone(s.MuniKey, created.ID)
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	tenant := fmt.Sprint(s.tenant.ID)
	for _, want := range []string{
		`crier_sends_total{outcome="sent",provider="fcm",tenant="` + tenant + `"} 2`,
		`crier_sends_total{outcome="token_dead",provider="fcm",tenant="` + tenant + `"} 1`,
		`crier_provider_latency_seconds_count{provider="fcm"} 3`,
		`crier_dispatch_duration_seconds_count{phase="total"} 1`,
		`crier_queue_tasks{queue="official",state="pending"} 0`,
		`crier_queue_age_seconds{queue="official"}`,
		`crier_rate_limit_wait_seconds_count{provider="fcm"} 3`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}
