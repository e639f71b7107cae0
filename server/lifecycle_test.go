package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/tasks"
)

// TestScheduledPost: a post with publish_at in the future waits for it.
func TestScheduledPost(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "nyheter", "Nyheter", true)
	tok := emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "sched")
	if code := s.do("PUT", "/v1/devices/sched", s.AppKey, map[string]any{"provider": "fcm", "token": tok}, nil); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	at := time.Now().Add(3 * time.Second).Truncate(time.Second)
	var created struct {
		ID    int64
		State string
	}
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b",
		"publish_at": at.Format(time.RFC3339), "expires_at": at.Add(time.Hour).Format(time.RFC3339)}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	s.waitDone(s.MuniKey, created.ID)
	recs := s.emu.RecordsFor(tok)
	if len(recs) != 1 || recs[0].Time.Before(at) {
		t.Fatalf("pushes %+v: want one, not before %s", recs, at)
	}
	t.Logf("published %s after publish_at", recs[0].Time.Sub(at))
}

// TestGracefulShutdown: stopping a worker lets its in-flight sends finish
// and records them; nothing is left pending for a restart to repeat.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, _ := testenv.DBURL(t)
	rds := testenv.StartRedis(t)
	emu := testenv.StartEmulator(t, emulator.Config{})
	srv, err := server.New(ctx, server.Config{DatabaseURL: dbURL, RedisURL: rds.URL(), HTTPAddr: "127.0.0.1:0",
		Concurrency: 10, ShutdownTimeout: 10 * time.Second, Secrets: testenv.Secrets()})
	if err != nil {
		t.Fatal(err)
	}
	db := srv.DB()
	tn := testenv.Tenant(t, db, "t", "T", "")
	sa, _ := emu.NewServiceAccount("p")
	if err := db.SetFCM(ctx, tn.ID, "p", sa, emu.FCMEndpoint()); err != nil {
		t.Fatal(err)
	}
	pub, _ := db.CreatePublisher(ctx, tn.ID, "k", "K", crier.RoleMunicipality)
	feed, _ := db.CreateFeed(ctx, tn.ID, pub.ID, "f", "F", true)
	// Every push takes 1.5 s: the shutdown comes while all are in flight.
	const n = 5
	for i := range n {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token)
			VALUES ($1, $2, 'fcm', 'android', $3)`, tn.ID, fmt.Sprint("d", i),
			emulator.FCMToken(emulator.Behaviour{Kind: emulator.Slow, Arg: 1500}, fmt.Sprint("d", i))); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := db.NewAPIKey(ctx, tn.ID, &pub.ID, "")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	s := &stack{t: t, base: "http://" + srv.Addr()}
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", key, map[string]any{"feed": feed.Slug, "title": "t", "body": "b"}, &created); code != http.StatusAccepted {
		t.Fatalf("post: %d", code)
	}
	// Once every send is in flight (taken by a worker, none answered yet),
	// stop.
	insp := asynq.NewInspector(rds.AsynqOpt())
	defer insp.Close()
	eventually(t, 10*time.Second, func() error {
		q, err := insp.GetQueueInfo(tasks.QueueOfficial)
		if err != nil {
			return err
		}
		if q.Active != n {
			return fmt.Errorf("%w: %d active", errNotYet, q.Active)
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	var sent, pending int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'pending')
		FROM deliveries WHERE post_id = $1`, created.ID).Scan(&sent, &pending); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if sent != n || pending != 0 {
		t.Errorf("after a graceful stop: %d sent, %d pending; want all %d sent", sent, pending, n)
	}
}
