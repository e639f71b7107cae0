package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
)

// TestEmergencyExactlyOnce: an alert larger than a page, with its head
// start and the full snapshot after it, reaches every device exactly once.
func TestEmergencyExactlyOnce(t *testing.T) {
	t.Parallel()
	s := newStackOpts(t, server.Config{}, emulator.Config{Latency: 5 * time.Millisecond})
	feed := s.feed(t, s.muni, "beredskap", "Beredskap", false)
	const n = 5000
	tokens := s.insertDevices("e", n, []int64{feed.ID})
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Flom", "body": "Evakuer",
		"class": "emergency"}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	st := s.waitDone(s.MuniKey, created.ID)
	if st.Counts["sent"] != n {
		t.Errorf("counts %v, want %d sent", st.Counts, n)
	}
	seen := map[string]int{}
	for _, r := range s.emu.Records() {
		if r.Accepted() {
			seen[r.Token]++
		}
	}
	dups, missing := 0, 0
	for _, tok := range tokens {
		switch c := seen[tok]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	if dups > 0 || missing > 0 {
		t.Errorf("%d devices missed, %d duplicate pushes", missing, dups)
	}
}
