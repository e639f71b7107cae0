package bench

import (
	"testing"
	"time"

	"github.com/crier-push/crier/providers/emulator"
)

func TestPostIDOf(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]int64{
		`{"message":{"data":{"post_id":"42"}}}`: 42,
		`{"aps":{},"post_id":7}`:                7,
		`{"post_id": "123456789012"}`:           123456789012,
		`{"data":{}}`:                           0,
		`{"post_id":"x"}`:                       0,
	} {
		got, ok := postIDOf(body)
		if got != want || ok != (want != 0) {
			t.Errorf("postIDOf(%s) = %d, %v; want %d", body, got, ok, want)
		}
	}
}

// TestTallyResume: the broadcast resumes with its push after those that
// may have been in flight when the alert came; alert devices tried before
// then count whatever the answer, and a retry's success counts once.
func TestTallyResume(t *testing.T) {
	t.Parallel()
	tl := newTally()
	tl.track(1, "broadcast")
	tl.track(2, "alert")
	t0 := time.Now()
	push := func(post, token string, ms int, status int) {
		tl.add(emulator.Record{Time: t0.Add(time.Duration(ms) * time.Millisecond), Token: token, Status: status,
			Body: `{"message":{"data":{"post_id":"` + post + `"}}}`})
	}
	push("1", "b0", 0, 200)
	push("2", "a1", 10, 200) // the alert's first push
	push("1", "b1", 11, 200) // in flight when the alert came
	push("1", "b2", 12, 200) // in flight too
	push("2", "a2", 15, 503) // tried, failed
	push("2", "a3", 20, 200)
	push("1", "b3", 30, 200) // resumed: the third after the alert's first
	push("2", "a2", 1500, 200)
	push("2", "a3", 1600, 200) // a duplicate
	resumed := tl.nthAfter("broadcast", t0.Add(10*time.Millisecond), 3)
	if want := t0.Add(30 * time.Millisecond); !resumed.Equal(want) {
		t.Fatalf("resumed at %v, want %v", resumed.Sub(t0), want.Sub(t0))
	}
	if n := tl.between("alert", t0.Add(10*time.Millisecond-time.Nanosecond), resumed); n != 2 {
		t.Errorf("alert sends before resume = %d, want 2", n)
	}
	if n := tl.triedBefore("alert", resumed); n != 3 {
		t.Errorf("alert devices tried before resume = %d, want 3", n)
	}
	if n := tl.duplicates(2); n != 1 {
		t.Errorf("duplicates = %d, want 1", n)
	}
	if n := tl.count("alert"); n != 4 {
		t.Errorf("alert sends = %d, want 4", n)
	}
}
