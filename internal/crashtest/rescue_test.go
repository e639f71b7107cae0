package crashtest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crier-push/crier/internal/testenv"
)

// TestKilledWorkersAlertSendsRescued: a worker is SIGKILLed while it holds
// every send of an alert, each waiting on the provider (the emulator
// answers after 2 s, and records nothing for a push whose client went
// away). asynq alone would run them again only after their 30 s lease and
// its one-minute recoverer (61 s measured); another worker's Rescuer takes
// them back once their leases have gone 10 s without a heartbeat. Every
// device gets the alert exactly once, each retried push reaches the
// provider within 15 s of the kill, and nothing is left in the emergency
// queue's active list or lease set for asynq to recover a second time.
func TestKilledWorkersAlertSendsRescued(t *testing.T) {
	t.Parallel()
	const (
		devices = 40
		// At least the alert's sends, and a multiple of the 8 asynq
		// servers of a group: the victim takes all of them at once.
		concurrency = 48
		latency     = 2 * time.Second
		bound       = 15 * time.Second
	)
	fx := newFixture(t, false, latency)
	rds := testenv.StartRedis(t)
	tokens := fx.seedDevices(devices, 3)
	rc := rds.Client(t)
	ctx := context.Background()
	llen := func(list string) int64 {
		n, err := rc.LLen(ctx, "asynq:{emergency}:"+list).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	apiProc := startCrier(t, "api", "api", fx.dbURL, rds.URL())
	victim := startCrier(t, "worker-victim", "worker", fx.dbURL, rds.URL(), "-concurrency", strconv.Itoa(concurrency))
	a := newAPI(t, apiProc.Addr, fx.key)

	const title = "Flom i sentrum"
	var created struct {
		ID int64 `json:"id"`
	}
	resp, err := a.do("POST", "/v1/posts", map[string]any{"feed": "nyheter", "title": title, "body": "Evakuer nå.",
		"class": "emergency"}, &created)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/posts (alert): %v %v", resp, err)
	}
	// The victim has taken every send: none pending, each active, waiting
	// on the emulator.
	testenv.Eventually(t, within, time.Millisecond, func() error {
		if p, act := llen("pending"), llen("active"); p > 0 || act < devices {
			return fmt.Errorf("%w: %d alert tasks pending, %d active", errNotDone, p, act)
		}
		return nil
	})
	victim.Kill()
	killed := time.Now()
	if n := fx.accepted(); n > 0 {
		t.Fatalf("%d pushes were answered before the kill: the kill came too late to hold every send", n)
	}
	heldAtKill := llen("active")

	rescuer := startCrier(t, "worker-rescuer", "worker", fx.dbURL, rds.URL(), "-concurrency", strconv.Itoa(concurrency))
	st := a.waitDone(created.ID)
	checkAllSent(t, st, devices)
	r := fx.report(tokens, title)
	fx.checkEveryoneReached(r, devices)
	if r.extra > 0 {
		t.Errorf("%d devices got the alert more than once (%d extra pushes); want exactly once", r.dupTokens, r.extra)
	}
	// When each retried push reached the emulator (it records them after
	// its latency).
	var last time.Duration
	for _, rec := range fx.emu.Records() {
		if rec.Accepted() && strings.Contains(rec.Body, title) {
			last = max(last, rec.Time.Add(-latency).Sub(killed))
		}
	}
	t.Logf("killed holding %d alert tasks; the last retried push reached the provider %s after the kill (bound %s)",
		heldAtKill, last.Round(time.Millisecond), bound)
	if last > bound {
		t.Errorf("the last of the killed worker's alert sends was retried %s after the kill, want within %s", last.Round(time.Millisecond), bound)
	}
	// asynq's recoverer finds nothing to run a second time.
	if act, leases := llen("active"), rc.ZCard(ctx, "asynq:{emergency}:lease").Val(); act > 0 || leases > 0 {
		t.Errorf("after the alert: %d emergency tasks active and %d leases, want none for asynq to recover again", act, leases)
	}
	rescuer.alive()
}
