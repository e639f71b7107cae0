package server_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
)

// TestCancelStopsSending: DELETE /v1/posts/{id} in the middle of a post: no
// push leaves crier more than a second after it, and the counts say how
// many deliveries were cancelled.
func TestCancelStopsSending(t *testing.T) {
	t.Parallel()
	// 20 ms a push and 20 at a time: about 1,000 pushes a second.
	s := newStackOpts(t, server.Config{}, emulator.Config{Latency: 20 * time.Millisecond})
	feed := s.feed(t, s.Org, "fotball", "Fotball", false)
	const n = 4000
	s.insertDevices("c", n, []int64{feed.ID})
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.OrgKey, map[string]any{"feed": "fotball", "title": "t", "body": "b"}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	eventually(t, 30*time.Second, func() error {
		if got := s.emu.Summary().FCM.Accepted; got < 300 {
			return fmt.Errorf("%w: %d accepted", errNotYet, got)
		}
		return nil
	})
	var cancelled struct {
		State     string
		Cancelled int
	}
	deleted := time.Now()
	// The municipality cancels, and reads, so that the counts are exact.
	if code := s.do("DELETE", "/v1/posts/"+strconv.FormatInt(created.ID, 10), s.MuniKey, nil, &cancelled); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	if cancelled.State != "cancelled" || cancelled.Cancelled == 0 {
		t.Fatalf("DELETE answered %+v", cancelled)
	}
	// Wait until nothing has arrived for a while, then look at when the
	// last pushes came.
	eventually(t, 30*time.Second, func() error {
		recs := s.emu.Records()
		if len(recs) > 0 && time.Since(recs[len(recs)-1].Time) < 1500*time.Millisecond {
			return errNotYet
		}
		return nil
	})
	late := 0
	for _, r := range s.emu.Records() {
		if r.Time.After(deleted.Add(time.Second)) {
			late++
		}
	}
	if late > 0 {
		t.Errorf("%d pushes arrived more than a second after the DELETE", late)
	}
	var st postStatus
	s.do("GET", "/v1/posts/"+strconv.FormatInt(created.ID, 10), s.MuniKey, nil, &st)
	if st.State != "cancelled" || st.Counts["cancelled"] != cancelled.Cancelled || st.Counts["pending"] != 0 ||
		st.Counts["sent"]+st.Counts["cancelled"] != n {
		t.Errorf("after cancelling: %+v (DELETE said %d cancelled)", st, cancelled.Cancelled)
	}
	t.Logf("sent %d before the cancellation took hold, cancelled %d", st.Counts["sent"], st.Counts["cancelled"])
	// Cancelling again cancels nothing; another organisation cannot.
	if code := s.do("DELETE", "/v1/posts/"+strconv.FormatInt(created.ID, 10), s.OtherKey, nil, nil); code != http.StatusNotFound {
		t.Errorf("another organisation's DELETE: %d, want 404", code)
	}
	if code := s.do("DELETE", "/v1/posts/"+strconv.FormatInt(created.ID, 10), s.MuniKey, nil, &cancelled); code != http.StatusOK || cancelled.Cancelled != 0 {
		t.Errorf("second DELETE: %d %+v", code, cancelled)
	}
}
