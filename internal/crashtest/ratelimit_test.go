package crashtest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/crier-push/crier/internal/testenv"
)

// TestRateLimitAcrossTwoWorkers: a tenant limited to 1,000 FCM sends a
// second, a 5,000-device post and two worker processes: over every
// one-second window the emulator accepts no more than the limit and the
// GCRA burst (rate/20), so the limit holds across processes. The test is
// not parallel: it wants the machine to itself, so that it could go faster
// than the limit if the limit did not hold.
func TestRateLimitAcrossTwoWorkers(t *testing.T) {
	const (
		devices = 5000
		rate    = 1000
		burst   = rate / 20 // worker.Limiter's Burst
		// margin absorbs up to 100 ms of jitter between the moment the
		// limiter (in Redis) allows a send and the moment the emulator, in
		// this race-instrumented process, records it, at the edges of the
		// window. Without a shared limit this machine sends 1,700/s and
		// more, far above it.
		margin = rate / 10
	)
	// No emulator latency: its timer would add jitter to the records'
	// times.
	fx := newFixture(t, false, 0)
	rds := testenv.StartRedis(t)
	tokens := fx.seedDevices(devices, 0)
	if err := fx.db.SetRateLimit(context.Background(), fx.tenant.ID, "fcm", rate); err != nil {
		t.Fatal(err)
	}

	apiProc := startCrier(t, "api", "api", fx.dbURL, rds.URL())
	w1 := startCrier(t, "worker-1", "worker", fx.dbURL, rds.URL(), "-concurrency", "50")
	w2 := startCrier(t, "worker-2", "worker", fx.dbURL, rds.URL(), "-concurrency", "50")
	a := newAPI(t, apiProc.Addr, fx.key)

	const title = "Kommunestyremøte i kveld"
	id := a.publish(title, "")
	st := a.waitDone(id)
	checkAllSent(t, st, devices)
	r := fx.report(tokens, title)
	fx.checkEveryoneReached(r, devices)

	var times []time.Time
	for _, rec := range fx.emu.Records() {
		if rec.Accepted() && rec.Provider == "fcm" {
			times = append(times, rec.Time)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	// The most accepted in any window [times[i], times[i]+d).
	busiest := func(d time.Duration) (most int, at time.Time) {
		for i, j := 0, 0; i < len(times); i++ {
			for j < len(times) && times[j].Sub(times[i]) < d {
				j++
			}
			if j-i > most {
				most, at = j-i, times[i]
			}
		}
		return most, at
	}
	most, at := busiest(time.Second)
	most2, _ := busiest(2 * time.Second)
	span := times[len(times)-1].Sub(times[0])
	overall := float64(len(times)-1) / span.Seconds()
	t.Logf("%d pushes over %s: %.0f/s overall; at most %d in one second (from %s into the post), %d in two; limit %d/s + burst %d",
		len(times), span.Round(time.Millisecond), overall, most, at.Sub(times[0]).Round(time.Millisecond), most2, rate, burst)
	// Judged over two seconds: a worker the machine stalls for a moment
	// bunches its pushes within a second, not across two. Without a shared
	// limit there would be 3,400 and more.
	if most2 > 2*rate+burst+margin {
		t.Errorf("%d pushes accepted within two seconds; the limit is %d/s with a burst of %d", most2, rate, burst)
	}
	if overall < 0.7*rate {
		// Not a failure: a slow or busy machine may not reach the limit.
		t.Logf("NOTE: the overall rate %.0f/s stayed well under the limit; the upper bound was barely tested", overall)
	}
	w1.alive()
	w2.alive()
}
