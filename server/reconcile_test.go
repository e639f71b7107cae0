package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/tasks"
)

// reconcileEvery is the reconciler's interval in these tests: the
// default's few seconds would only make them slower.
const reconcileEvery = 200 * time.Millisecond

// TestReconcileIntervalRefused: a negative interval is refused, naming the
// field.
func TestReconcileIntervalRefused(t *testing.T) {
	t.Parallel()
	ok := server.Config{DatabaseURL: "postgres://nowhere.invalid/x", RedisURL: "redis://nowhere.invalid:1/0"}
	use := func(c server.Config) error { _, err := server.New(context.Background(), c); return err }
	configtest.Refuses(t, ok, use, []configtest.Case[server.Config]{
		{Field: "ReconcileInterval", Change: func(c *server.Config) { c.ReconcileInterval = -time.Second }},
	})
}

// flushAll empties the stack's Redis, as a restart without persistence
// would.
func (s *stack) flushAll() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Network: s.redisOpt.Network, Addr: s.redisOpt.Addr})
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		s.t.Fatalf("FLUSHALL: %v", err)
	}
}

// pushesPerToken counts the emulator's accepted pushes to each token,
// checks that every token got at least one, and returns how many pushes
// came beyond one per token.
func (s *stack) pushesPerToken(tokens []string) (extra int) {
	s.t.Helper()
	per := map[string]int{}
	for _, r := range s.emu.Records() {
		if r.Accepted() {
			per[r.Token]++
		}
	}
	missing := 0
	for _, tok := range tokens {
		switch n := per[tok]; {
		case n == 0:
			missing++
		case n > 1:
			extra += n - 1
		}
	}
	if missing > 0 {
		s.t.Errorf("%d of %d devices never got the post", missing, len(tokens))
	}
	return extra
}

// TestScheduledPostSurvivesFlushAll: Redis loses the dispatch task of a
// post scheduled ten seconds ahead (FLUSHALL); the reconciler queues it
// again from Postgres, and the post reaches every device once, none before
// its publish time.
func TestScheduledPostSurvivesFlushAll(t *testing.T) {
	t.Parallel()
	s := newStackOpts(t, server.Config{ReconcileInterval: reconcileEvery}, emulator.Config{})
	feed := s.feed(t, s.muni, "nyheter", "Nyheter", false)
	tokens := s.insertDevices("plan", 30, []int64{feed.ID})
	// Not on a whole second: asynq keeps scheduled times in whole seconds.
	at := time.Now().Add(10 * time.Second).Truncate(time.Second).Add(600 * time.Millisecond)
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "Juletrefest", "body": "Lørdag kl. 17 i Bugården.",
		"publish_at": at.Format(time.RFC3339Nano)})

	insp := asynq.NewInspector(s.redisOpt)
	t.Cleanup(func() { insp.Close() })
	dispatch := "dispatch:" + fmt.Sprint(id)
	if _, err := insp.GetTaskInfo(tasks.QueueDispatch, dispatch); err != nil {
		t.Fatalf("the post's dispatch is not queued: %v", err)
	}
	s.flushAll()
	if _, err := insp.GetTaskInfo(tasks.QueueDispatch, dispatch); err == nil {
		t.Fatal("FLUSHALL left the dispatch task in Redis")
	}
	// Back, scheduled, before its time.
	eventually(t, 5*time.Second, func() error {
		_, err := insp.GetTaskInfo(tasks.QueueDispatch, dispatch)
		return err
	})
	if time.Now().After(at) {
		t.Fatalf("the dispatch came back only after the post's publish time")
	}

	st := s.waitDone(s.MuniKey, id)
	if st.Counts["sent"] != len(tokens) {
		t.Errorf("counts %v, want all %d sent", st.Counts, len(tokens))
	}
	if extra := s.pushesPerToken(tokens); extra != 0 {
		t.Errorf("%d pushes beyond one per device, want none", extra)
	}
	for _, r := range s.emu.Records() {
		if r.Time.Before(at) {
			t.Errorf("push to %s at %s, before publish_at %s", r.Token, r.Time.Format(time.StampMilli), at.Format(time.StampMilli))
		}
	}
	var early int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries d JOIN posts p ON p.id = d.post_id
		WHERE d.post_id = $1 AND (d.sent_at IS NULL OR d.sent_at < p.publish_at)`, id).Scan(&early); err != nil {
		t.Fatal(err)
	}
	if early != 0 {
		t.Errorf("%d deliveries sent before publish_at (or not sent)", early)
	}
	t.Logf("publish_at %s; first push %s after it", at.Format(time.StampMilli), st.FirstSentAt.Sub(at).Round(time.Millisecond))
}

// TestFlushAllMidSends: Redis loses every task (FLUSHALL) while a post's
// sends are under way. The reconciler queues a checked send for each
// delivery still pending, and every device gets the post. The only
// repeats are sends that were in flight at the loss (pushed, their
// outcome not yet written when the checked copy read the delivery): at
// most the worker's concurrency (dispatcher.Reconciler).
func TestFlushAllMidSends(t *testing.T) {
	t.Parallel()
	const devices, concurrency = 1000, 20
	s := newStackOpts(t, server.Config{ReconcileInterval: reconcileEvery, Concurrency: concurrency},
		emulator.Config{Latency: 10 * time.Millisecond})
	feed := s.feed(t, s.muni, "nyheter", "Nyheter", false)
	tokens := s.insertDevices("midt", devices, []int64{feed.ID})
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "Vannbrudd", "body": "Stengt vann i Storgata."})

	accepted := func() int {
		sum := s.emu.Summary()
		return sum.FCM.Accepted + sum.APNs.Accepted
	}
	eventually(t, 30*time.Second, func() error {
		st := s.getPost(s.MuniKey, id)
		if n := accepted(); st.State != "sending" || n < devices/4 {
			return fmt.Errorf("%w: post %s, %d of %d pushed", errNotYet, st.State, n, devices)
		}
		return nil
	})
	s.flushAll()
	atFlush := accepted()
	if atFlush >= devices {
		t.Fatalf("every push was made before the flush: the test did not test a loss")
	}

	st := s.waitDone(s.MuniKey, id)
	if st.Counts["sent"] != devices {
		t.Errorf("counts %v, want all %d sent", st.Counts, devices)
	}
	extra := s.pushesPerToken(tokens)
	t.Logf("FLUSHALL at %d of %d pushes; %d pushes repeated (bound: concurrency %d)", atFlush, devices, extra, concurrency)
	if extra > concurrency {
		t.Errorf("%d pushes repeated, more than the %d sends that can have been in flight at the loss", extra, concurrency)
	}
}
