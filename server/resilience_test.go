package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/crier-push/crier/providers/emulator"
)

// TestRetriesUnderFailures: with 503s on 30% of sends and bursts of 429
// with Retry-After while a post goes out, every device is delivered exactly
// once, and provider calls stay under 1.5× the devices.
//
// The emulator spreads a flaky token's failures evenly, so 30% of the
// devices (the same ones every run) fail their first push and succeed on
// the next: retried by firebase-admin-go itself for FCM, by crier for APNs.
// That is 1.3 calls per device before any 429. A burst then costs only the
// pushes in flight when it starts, because the first 429 pauses the
// tenant's provider for its Retry-After in every worker (worker/limits.go);
// without that pause the queued sends would each meet the burst, which is
// well over the budget (measured: ratio 2.06).
func TestRetriesUnderFailures(t *testing.T) {
	t.Parallel()
	const (
		devices    = 600
		flakyPct   = 30
		burst      = 500 * time.Millisecond
		retryAfter = time.Second
		maxRatio   = 1.5
	)
	// Bursts start when this share of the devices has been delivered.
	burstsAt := []float64{0.2, 0.45, 0.7}

	s := newStack(t)
	ctx := context.Background()
	feed := s.feed(t, s.muni, "nyheter", "Nyheter", false)
	// Two thirds Android, one third iOS, all flaky; registered in one
	// statement, since the API is not what is under test.
	flaky := emulator.Behaviour{Kind: emulator.Flaky, Arg: flakyPct}
	var ids, provs, platforms, tokens []string
	isOurs := map[string]bool{}
	for i := range devices {
		id, prov, platform, tok := "res-"+strconv.Itoa(i), "fcm", "android", emulator.FCMToken(flaky, "r"+strconv.Itoa(i))
		if i%3 == 2 {
			prov, platform, tok = "apns", "ios", emulator.APNsToken(flaky, uint64(i))
		}
		ids, provs, platforms, tokens = append(ids, id), append(provs, prov), append(platforms, platform), append(tokens, tok)
		isOurs[tok] = true
	}
	if _, err := s.db.Pool.Exec(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token, follows)
		SELECT $1, i, p, pl, tok, ARRAY[$6::bigint] FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(i, p, pl, tok)`,
		s.tenant.ID, ids, provs, platforms, tokens, feed.ID); err != nil {
		t.Fatal(err)
	}
	ours := func() []emulator.Record {
		var recs []emulator.Record
		for _, r := range s.emu.Records() {
			if isOurs[r.Token] {
				recs = append(recs, r)
			}
		}
		return recs
	}
	accepted := func() int {
		sum := s.emu.Summary()
		return sum.FCM.Accepted + sum.APNs.Accepted
	}

	var created struct{ ID int64 }
	start := time.Now()
	if code := s.do("POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "nyheter", "title": "Vannbrudd", "body": "Stengt vann i Storgata."}, &created); code != http.StatusAccepted {
		t.Fatalf("POST /v1/posts: %d", code)
	}
	for _, share := range burstsAt {
		eventually(t, 30*time.Second, func() error {
			if n := accepted(); n < int(share*devices) {
				return fmt.Errorf("%w: %d of %d delivered, waiting for %d before a burst", errNotYet, n, devices, int(share*devices))
			}
			return nil
		})
		t.Logf("%5.2fs: burst of 429 for %s (Retry-After %s) at %d of %d delivered",
			time.Since(start).Seconds(), burst, retryAfter, accepted(), devices)
		s.emu.Throttle(burst, retryAfter)
	}
	st, done := s.pollDone(s.MuniKey, created.ID, 60*time.Second)
	if !done {
		s.logPending(created.ID, start)
		t.Fatalf("post not done within 60s: state %s, counts %v", st.State, st.Counts)
	}
	elapsed := time.Since(start)

	if st.Counts["sent"] != devices || st.Audience == nil || *st.Audience != devices {
		t.Errorf("post: audience %v, counts %v; want all %d sent", st.Audience, st.Counts, devices)
	}
	recs := ours()
	perToken := map[string]int{}
	for _, r := range recs {
		if r.Accepted() {
			perToken[r.Token]++
		}
	}
	for _, tok := range tokens {
		if n := perToken[tok]; n != 1 {
			t.Errorf("token %s: %d accepted pushes, want exactly 1", tok, n)
		}
	}
	sum := emulator.Summarize(recs)
	calls := sum.FCM.Calls() + sum.APNs.Calls()
	unavailable := sum.FCM.ByReason["UNAVAILABLE"] + sum.APNs.ByReason["ServiceUnavailable"]
	throttled := sum.FCM.ByReason["QUOTA_EXCEEDED"] + sum.APNs.ByReason["TooManyRequests"]
	ratio := float64(calls) / devices
	t.Logf("devices %d, provider calls %d (fcm %d, apns %d): %d accepted, %d 503s, %d 429s (%d fcm, %d apns); ratio %.3f (limit %.1f); done in %s",
		devices, calls, sum.FCM.Calls(), sum.APNs.Calls(), sum.FCM.Accepted+sum.APNs.Accepted, unavailable,
		throttled, sum.FCM.Throttled, sum.APNs.Throttled, ratio, maxRatio, elapsed.Round(time.Millisecond))
	if other := calls - sum.FCM.Accepted - sum.APNs.Accepted - unavailable - throttled; other != 0 {
		t.Errorf("%d calls answered neither 200, 503 nor 429: %+v", other, sum)
	}
	if sum.FCM.Throttled+sum.APNs.Throttled == 0 {
		t.Errorf("no push met a burst of 429s: the test did not test throttling")
	}
	if ratio >= maxRatio {
		t.Errorf("provider calls %d for %d devices: ratio %.3f, want under %.1f", calls, devices, ratio, maxRatio)
	}
}

// pollDone polls the post until it is done or d has passed, and returns its
// last status.
func (s *stack) pollDone(key string, id int64, d time.Duration) (postStatus, bool) {
	s.t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(d)
	for {
		var st postStatus
		if code := s.do("GET", "/v1/posts/"+strconv.FormatInt(id, 10), key, nil, &st); code != http.StatusOK {
			s.t.Fatalf("GET post %d: %d", id, code)
		}
		if st.State == "done" {
			return st, true
		}
		if time.Now().After(deadline) {
			return st, false
		}
		<-tick.C
	}
}

// logPending logs the post's deliveries still pending, with every answer
// the emulator gave their tokens (times from start), to tell a lost task
// from a long backoff.
func (s *stack) logPending(postID int64, start time.Time) {
	s.t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `SELECT d.token, dl.reason, dl.attempts, dl.last_error, dl.updated_at
		FROM deliveries dl JOIN devices d ON d.id = dl.device_id WHERE dl.post_id = $1 AND dl.state = 'pending'`, postID)
	if err != nil {
		s.t.Errorf("query pending deliveries: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var tok, reason, lastErr string
		var attempts int
		var updated time.Time
		if err := rows.Scan(&tok, &reason, &attempts, &lastErr, &updated); err != nil {
			s.t.Errorf("scan pending delivery: %v", err)
			return
		}
		s.t.Logf("pending %s: reason %q, %d attempts, last error %q, updated at %.2fs", tok, reason, attempts, lastErr, updated.Sub(start).Seconds())
		for _, r := range s.emu.RecordsFor(tok) {
			s.t.Logf("    %.2fs: %d %s (throttle burst: %v)", r.Time.Sub(start).Seconds(), r.Status, r.Reason, r.Throttled)
		}
	}
}
