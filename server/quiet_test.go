package server_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
)

// TestQuietHoursDefer: a device in its quiet hours gets the post when they
// end in its own time zone, not before; others get it at once; an emergency
// ignores quiet hours. The server's clock is moved to three seconds before
// a quiet window ends, so the test waits seconds, not hours.
func TestQuietHoursDefer(t *testing.T) {
	t.Parallel()
	// The server's clock is set once the stack is up: to 3 s before a
	// minute boundary (the end of the sleeper's quiet window).
	var shift atomic.Int64
	s := newStackWith(t, server.Config{Now: func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }})
	real := time.Now()
	end := real.Truncate(time.Minute).Add(3 * time.Minute)
	offset := end.Add(-3 * time.Second).Sub(real)
	shift.Store(int64(offset))
	ctx := context.Background()
	s.feed(t, s.muni, "nyheter", "Nyheter", false)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	localEnd := end.In(ny)
	quiet := map[string]string{"start": localEnd.Add(-time.Hour).Format("15:04"), "end": localEnd.Format("15:04")}
	notNow := map[string]string{"start": localEnd.Add(2 * time.Hour).Format("15:04"), "end": localEnd.Add(3 * time.Hour).Format("15:04")}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for _, d := range []struct {
		id    string
		quiet map[string]string
	}{{"sleeper", quiet}, {"awake", notNow}, {"no-quiet-hours", nil}} {
		body := map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, d.id), "follows": []string{"nyheter"},
			"time_zone": "America/New_York"}
		if d.quiet != nil {
			body["quiet_hours"] = d.quiet
		}
		if code := s.do("PUT", "/v1/devices/"+d.id, s.AppKey, body, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", d.id, code)
		}
	}
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	// The sleeper's delivery is deferred to the end of its window.
	var notBefore time.Time
	eventually(t, 10*time.Second, func() error {
		return s.db.Pool.QueryRow(ctx, `SELECT dl.not_before FROM deliveries dl JOIN devices d ON d.id = dl.device_id
			WHERE dl.post_id = $1 AND d.installation_id = 'sleeper' AND dl.state = 'deferred'`, created.ID).Scan(&notBefore)
	})
	if !notBefore.Equal(end) {
		t.Errorf("deferred until %s, want the end of the quiet window %s", notBefore, end)
	}
	st := s.waitDone(s.MuniKey, created.ID)
	if st.Counts["sent"] != 3 {
		t.Fatalf("counts %v: want 3 sent", st.Counts)
	}
	var awakeAt, sleeperAt time.Time
	for _, r := range s.emu.Records() {
		switch r.Token {
		case emulator.FCMToken(ok, "sleeper"):
			sleeperAt = r.Time
		case emulator.FCMToken(ok, "awake"):
			awakeAt = r.Time
		}
	}
	// In real time the window ends 3 s after the clock was set.
	if due := end.Add(-offset); sleeperAt.Before(due.Add(-100*time.Millisecond)) || !awakeAt.Before(sleeperAt) {
		t.Errorf("sleeper pushed at %s (due %s), awake at %s", sleeperAt, due, awakeAt)
	}

	// An emergency ignores quiet hours.
	s.feed(t, s.muni, "varsel", "Varsel", true)
	// Back inside the sleeper's window: move its window to cover server time.
	quiet2 := map[string]any{"quiet_hours": map[string]string{"start": localEnd.Format("15:04"), "end": localEnd.Add(time.Hour).Format("15:04")}}
	if code := s.do("PUT", "/v1/devices/sleeper", s.AppKey, quiet2, nil); code != http.StatusOK {
		t.Fatalf("update sleeper: %d", code)
	}
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "varsel", "title": "Flom", "body": "Evakuer", "class": "emergency"}, &created); code != http.StatusAccepted {
		t.Fatalf("emergency: %d", code)
	}
	if st := s.waitDone(s.MuniKey, created.ID); st.Counts["sent"] != 3 || st.Counts["deferred"] != 0 {
		t.Errorf("emergency counts %v: want 3 sent, none deferred", st.Counts)
	}
}
