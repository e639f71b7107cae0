package bench

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier/tasks"
)

// HoldFigures say how the alert's hold of the routine queues went and how
// its sends flowed.
type HoldFigures struct {
	// Seconds is how long the routine queues were paused, from the first
	// sample that saw them paused to the first that saw them resumed.
	Seconds float64 `json:"hold_seconds"`
	// RoutineQueued is how many routine sends were queued from the alert's
	// publication to the end of the hold: with the routine queues paused,
	// how much they grew.
	RoutineQueued int `json:"routine_sends_queued_during_hold"`
	// LargestGapSeconds is the longest time without an alert send from its
	// first send to its 99th percentile (the retries of the last percent
	// wait for their backoff), and GapAfter how many sends came before it:
	// about a page (dispatcher.DefaultPageSize) when the sends wait, after
	// the head start, for the rest of the audience's snapshot.
	LargestGapSeconds float64 `json:"alert_largest_send_gap_seconds"`
	GapAfter          int     `json:"alert_largest_send_gap_after_sends"`
	// BroadcastPerSec is the broadcast's sustained rate (the middle 80 % of
	// its sends) less the time the hold paused it, and AlertShare the
	// alert's sustained rate as a share of it.
	BroadcastPerSec float64 `json:"broadcast_sustained_send_per_sec_outside_hold"`
	AlertShare      float64 `json:"alert_sustained_rate_share_of_broadcast"`

	from, to time.Time // the hold, as sampled
}

// holdSample is how often the hold is looked at: the queues grow by a few
// hundred sends in that time at most.
const holdSample = 20 * time.Millisecond

// routineQueues are the queues the alert holds.
var routineQueues = []string{tasks.QueueOfficial, tasks.QueueCommunity}

// watchHold samples the routine queues from just before the alert is
// published until the hold ends (or ctx does), and returns the figures it
// saw on its channel. started is closed once the first count is taken.
func watchHold(ctx context.Context, rdb *redis.Client, started chan<- struct{}) <-chan HoldFigures {
	out := make(chan HoldFigures, 1)
	go func() {
		defer close(out)
		var f HoldFigures
		base, err := routineAdded(ctx, rdb)
		close(started)
		if err != nil {
			return
		}
		t := time.NewTicker(holdSample)
		defer t.Stop()
		deadline := time.Now().Add(30 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			paused, err := routinePaused(ctx, rdb)
			if err != nil {
				continue
			}
			now := time.Now()
			switch {
			case paused && f.from.IsZero():
				f.from = now
			case !paused && !f.from.IsZero():
				f.to = now
				f.Seconds = f.to.Sub(f.from).Seconds()
				if n, err := routineAdded(ctx, rdb); err == nil {
					f.RoutineQueued = int(n - base)
				}
				out <- f
				return
			}
		}
	}()
	return out
}

// routinePaused says whether a routine queue is paused (asynq's
// base.PausedKey exists).
func routinePaused(ctx context.Context, rdb *redis.Client) (bool, error) {
	keys := make([]string, len(routineQueues))
	for i, q := range routineQueues {
		keys[i] = "asynq:{" + q + "}:paused"
	}
	n, err := rdb.Exists(ctx, keys...).Result()
	return n > 0, err
}

// routineAdded is how many tasks the routine queues have ever been given:
// those still in them (pending, active, scheduled, retrying) and those
// processed. asynq's key names (internal/base), read in one pipeline.
func routineAdded(ctx context.Context, rdb *redis.Client) (int64, error) {
	pipe := rdb.Pipeline()
	var cmds []redis.Cmder
	for _, q := range routineQueues {
		p := "asynq:{" + q + "}:"
		cmds = append(cmds, pipe.LLen(ctx, p+"pending"), pipe.LLen(ctx, p+"active"),
			pipe.ZCard(ctx, p+"scheduled"), pipe.ZCard(ctx, p+"retry"), pipe.ZCard(ctx, p+"archived"))
		cmds = append(cmds, pipe.Get(ctx, p+"processed"))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		switch c := c.(type) {
		case *redis.IntCmd:
			n += c.Val()
		case *redis.StringCmd:
			v, _ := c.Int64() // absent: none processed yet
			n += v
		}
	}
	return n, nil
}

// sendFigures completes the figures of the alert's sends (sorted times)
// and the broadcast's rate outside the hold.
func (f *HoldFigures) sendFigures(alert, broadcast []time.Time, alertRate float64) {
	f.LargestGapSeconds, f.GapAfter = largestGap(alert, 0, len(alert)*99/100)
	if len(broadcast) < 10 {
		return
	}
	lo, hi := broadcast[len(broadcast)/10], broadcast[len(broadcast)*9/10]
	d := hi.Sub(lo) - overlap(lo, hi, f.from, f.to)
	if d > 0 {
		f.BroadcastPerSec = float64(len(broadcast)*8/10) / d.Seconds()
	}
	if f.BroadcastPerSec > 0 {
		f.AlertShare = alertRate / f.BroadcastPerSec
	}
}

// largestGap is the longest time between consecutive sends from times[from]
// to times[to], and how many sends came before it.
func largestGap(times []time.Time, from, to int) (float64, int) {
	var gap time.Duration
	after := 0
	for i := max(from, 0) + 1; i <= to && i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > gap {
			gap, after = d, i
		}
	}
	return gap.Seconds(), after
}

// overlap is how much of [lo, hi] lies in [from, to].
func overlap(lo, hi, from, to time.Time) time.Duration {
	if from.IsZero() || to.IsZero() {
		return 0
	}
	s, e := max(lo.UnixNano(), from.UnixNano()), min(hi.UnixNano(), to.UnixNano())
	return max(0, time.Duration(e-s))
}
