package crashtest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/crier-push/crier/internal/testenv"
)

// TestRateLimitAcrossTwoWorkers: a tenant limited to 200 FCM sends a
// second, a 1,000-device post and two worker processes: over every
// one-second window the emulator accepts no more than the limit and the
// GCRA burst (rate/20), so the limit holds across processes. The limit is
// far below what the two workers push without one: with this test's setup
// and a limit of 1,000,000/s they pushed 4,400-5,000 a second on the 2-core
// development machine, 2,700-3,200 with the race detector on in the test
// binary (which runs the emulator). So without the limiter the post goes
// out in a fraction of a second and overshoots both bounds many times
// over, on a much slower machine too; with it, it takes five seconds. The
// test is not parallel: it wants the machine to itself, so that the
// workers are not slowed to near the limit.
func TestRateLimitAcrossTwoWorkers(t *testing.T) {
	const (
		devices = 1000
		rate    = 200
		burst   = rate / 20 // worker.Limiter's Burst
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
	// The most accepted in any window [times[i], times[i]+1s).
	most, at := 0, time.Time{}
	for i, j := 0, 0; i < len(times); i++ {
		for j < len(times) && times[j].Sub(times[i]) < time.Second {
			j++
		}
		if j-i > most {
			most, at = j-i, times[i]
		}
	}
	span := times[len(times)-1].Sub(times[0])
	overall := float64(len(times)-1) / span.Seconds()
	// Sustained: the middle 80 % of the pushes.
	lo, hi := len(times)/10, len(times)*9/10
	sustained := float64(hi-lo) / times[hi].Sub(times[lo]).Seconds()
	t.Logf("%d pushes over %s: %.0f/s overall, %.0f/s sustained; at most %d in one second (from %s into the post); limit %d/s + burst %d",
		len(times), span.Round(time.Millisecond), overall, sustained, most, at.Sub(times[0]).Round(time.Millisecond), rate, burst)
	// The limit is granted in Redis, the pushes are timed here: a worker
	// the machine stalls for a moment (this suite runs beside others, under
	// the race detector) bunches its pushes into a shorter time than the
	// grants were spread over, by up to a few hundred milliseconds' worth.
	// So the sustained rate is held to the limit closely, and the busiest
	// second only loosely.
	if sustained > 1.1*rate {
		t.Errorf("sustained %.0f pushes a second; the limit is %d/s", sustained, rate)
	}
	if most > rate+burst+rate/3 {
		t.Errorf("%d pushes accepted within one second; the limit is %d/s with a burst of %d", most, rate, burst)
	}
	if overall < 0.7*rate {
		// Not a failure: a slow or busy machine may not reach the limit.
		t.Logf("NOTE: the overall rate %.0f/s stayed well under the limit; the upper bound was barely tested", overall)
	}
	w1.alive()
	w2.alive()
}
