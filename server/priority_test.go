package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/tasks"
)

// TestEmergencyOvertakesBacklog: an emergency post enqueued behind 200,000
// pending community sends starts sending before any further community send
// is taken: between the moment its sends are enqueued and its last send,
// the only community pushes are the ones already in flight.
func TestEmergencyOvertakesBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 sends: not in -short")
	}
	t.Parallel()
	const concurrency = 20
	s := newStackOpts(t, server.Config{Concurrency: concurrency}, emulator.Config{Latency: 5 * time.Millisecond})
	ctx := context.Background()
	club := s.feed(t, s.Org, "fotball", "Fotball", false)
	alerts := s.feed(t, s.muni, "beredskap", "Beredskap", false)
	const backlog, alerted = 200_000, 400
	s.insertDevices("fan", backlog, []int64{club.ID})
	alertTokens := s.insertDevices("alert", alerted, []int64{alerts.ID})

	var community, emergency struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", s.OrgKey, map[string]any{"feed": "fotball", "title": "Kamp", "body": "b"}, &community); code != http.StatusAccepted {
		t.Fatalf("community post: %d", code)
	}
	// Wait until the backlog is really there: 200,000 community sends enqueued.
	insp := asynq.NewInspector(s.redisOpt)
	defer insp.Close()
	eventually(t, 3*time.Minute, func() error {
		q, err := insp.GetQueueInfo(tasks.QueueCommunity)
		if err != nil {
			return err
		}
		if q.Pending+q.Active+q.Retry+q.Processed < backlog {
			return fmt.Errorf("%w: %d community sends enqueued", errNotYet, q.Pending+q.Active+q.Processed)
		}
		return nil
	})
	q, _ := insp.GetQueueInfo(tasks.QueueCommunity)
	t.Logf("community backlog when the alert comes: %d pending, %d processed", q.Pending, q.Processed)
	if q.Pending < backlog/2 {
		t.Fatalf("only %d community sends pending: not a backlog", q.Pending)
	}

	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Flom", "body": "Evakuer", "class": "emergency"}, &emergency); code != http.StatusAccepted {
		t.Fatalf("emergency post: %d", code)
	}
	s.waitDone(s.MuniKey, emergency.ID)
	var enqueued time.Time
	if err := s.db.Pool.QueryRow(ctx, `SELECT dispatched_at FROM posts WHERE id = $1`, emergency.ID).Scan(&enqueued); err != nil {
		t.Fatal(err)
	}
	isAlert := map[string]bool{}
	for _, tok := range alertTokens {
		isAlert[tok] = true
	}
	var first, last time.Time
	for _, r := range s.emu.Records() {
		if isAlert[r.Token] {
			if first.IsZero() {
				first = r.Time
			}
			last = r.Time
		}
	}
	// Community pushes dequeued before the alert's sends existed arrive
	// within a push's latency of its first; at its end, once every alert
	// send is taken, free workers rightly go back to the backlog. In
	// between, any community push was taken instead of a waiting alert.
	const margin = 100 * time.Millisecond
	inFlight, taken := 0, 0
	for _, r := range s.emu.Records() {
		switch {
		case isAlert[r.Token] || r.Time.Before(first) || r.Time.After(last.Add(-margin)):
		case r.Time.Before(first.Add(margin)):
			inFlight++
		default:
			taken++
		}
	}
	t.Logf("alert: first push %s after its dispatch finished, all %d within %s; community pushes meanwhile: %d in flight, %d taken",
		first.Sub(enqueued), alerted, last.Sub(first), inFlight, taken)
	if inFlight > concurrency || taken > 0 {
		t.Errorf("community pushes during the alert: %d in flight (at most %d may be), %d taken after it (none may be)", inFlight, concurrency, taken)
	}
	// Stop the backlog.
	if code := s.do("DELETE", "/v1/posts/"+strconv.FormatInt(community.ID, 10), s.OrgKey, nil, nil); code != http.StatusOK {
		t.Errorf("cancel the backlog: %d", code)
	}
}
