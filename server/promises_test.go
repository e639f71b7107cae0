package server_test

// Tests of README promises that no other test held crier to: expiry,
// skipped deliveries, a segment narrowed by a target, 409 already_delivered,
// the post's states and send rate, the retry schedule, invalid messages and
// refused FCM credentials.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// getPost reads a post through the API.
func (s *stack) getPost(key string, id int64) postStatus {
	s.t.Helper()
	var v postStatus
	if code := s.do("GET", "/v1/posts/"+strconv.FormatInt(id, 10), key, nil, &v); code != http.StatusOK {
		s.t.Fatalf("GET post %d: %d", id, code)
	}
	return v
}

// post publishes a post and returns its id.
func (s *stack) post(key string, body map[string]any) int64 {
	s.t.Helper()
	var created struct{ ID int64 }
	if code := s.do("POST", "/v1/posts", key, body, &created); code != http.StatusAccepted {
		var e json.RawMessage
		s.do("POST", "/v1/posts", key, body, &e)
		s.t.Fatalf("POST /v1/posts %v: %d %s", body, code, e)
	}
	return created.ID
}

// register registers a device through the API.
func (s *stack) register(id string, body map[string]any) {
	s.t.Helper()
	if code := s.do("PUT", "/v1/devices/"+id, s.AppKey, body, nil); code != http.StatusCreated {
		s.t.Fatalf("register %s: %d", id, code)
	}
}

// deviceID is the database id of a device of the stack's tenant.
func (s *stack) deviceID(installationID string) int64 {
	s.t.Helper()
	var id int64
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT id FROM devices WHERE tenant_id = $1 AND installation_id = $2`,
		s.tenant.ID, installationID).Scan(&id); err != nil {
		s.t.Fatalf("device %s: %v", installationID, err)
	}
	return id
}

// delivery is one delivery as stored.
type delivery struct {
	State    string
	Reason   string
	Attempts int
}

// deliveryOf reads a post's delivery to a device.
func (s *stack) deliveryOf(postID, deviceID int64) delivery {
	s.t.Helper()
	var d delivery
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT state, reason, attempts FROM deliveries
		WHERE post_id = $1 AND device_id = $2`, postID, deviceID).Scan(&d.State, &d.Reason, &d.Attempts); err != nil {
		s.t.Fatalf("delivery of post %d to device %d: %v", postID, deviceID, err)
	}
	return d
}

// testClock is a server clock a test sets: crier judges quiet hours and
// expiry by it.
type testClock struct{ shift atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.shift.Load())) }

// Set makes the clock read t now (and run on from there).
func (c *testClock) Set(t time.Time) { c.shift.Store(int64(time.Until(t))) }

// quietStack starts a stack on a test clock that reads ten minutes before
// end, the end of the hour-long quiet window of a device "sleeper" (Europe/Oslo, following
// feed nyheter); a device "awake" follows the feed without quiet hours. Both
// have accepting FCM tokens, which it returns.
func quietStack(t *testing.T) (s *stack, clock *testClock, end time.Time, sleeper, awake string) {
	t.Helper()
	clock = &testClock{}
	s = newStackWith(t, server.Config{Now: clock.Now})
	end = time.Now().Truncate(time.Minute).Add(15 * time.Minute)
	clock.Set(end.Add(-10 * time.Minute))
	s.feed(t, s.muni, "nyheter", "nyheter", false)
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	local := end.In(oslo)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	sleeper, awake = emulator.FCMToken(ok, "sleeper"), emulator.FCMToken(ok, "awake")
	s.register("sleeper", map[string]any{"provider": "fcm", "token": sleeper, "follows": []string{"nyheter"},
		"time_zone": "Europe/Oslo", "quiet_hours": map[string]string{"start": local.Add(-time.Hour).Format("15:04"), "end": local.Format("15:04")}})
	s.register("awake", map[string]any{"provider": "fcm", "token": awake, "follows": []string{"nyheter"}, "time_zone": "Europe/Oslo"})
	return s, clock, end, sleeper, awake
}

// waitDeferred waits until the post has sent to "awake" and holds the
// sleeper's send, deferred, as a task scheduled in asynq.
func (s *stack) waitDeferred(insp *asynq.Inspector, postID, sleeperID int64) {
	s.t.Helper()
	eventually(s.t, 30*time.Second, func() error {
		st := s.getPost(s.MuniKey, postID)
		if st.State != "sending" || st.Counts["sent"] != 1 || st.Counts["deferred"] != 1 {
			return fmt.Errorf("%w: %s %v", errNotYet, st.State, st.Counts)
		}
		info, err := insp.GetTaskInfo(tasks.QueueOfficial, tasks.SendID(postID, sleeperID))
		if err != nil {
			return err
		}
		if info.State != asynq.TaskStateScheduled {
			return fmt.Errorf("%w: sleeper's send is %s", errNotYet, info.State)
		}
		return nil
	})
}

// runDeferred has asynq run the sleeper's deferred send now, instead of
// when its quiet hours end. The delivery may have its outcome already;
// what matters is what the worker does with the send: it waits until the
// worker has taken and finished it.
func (s *stack) runDeferred(insp *asynq.Inspector, postID, sleeperID int64) {
	s.t.Helper()
	if err := insp.RunTask(tasks.QueueOfficial, tasks.SendID(postID, sleeperID)); err != nil {
		s.t.Fatalf("run the deferred send: %v", err)
	}
	eventually(s.t, 20*time.Second, func() error {
		if _, err := insp.GetTaskInfo(tasks.QueueOfficial, tasks.SendID(postID, sleeperID)); !errors.Is(err, asynq.ErrTaskNotFound) {
			return fmt.Errorf("the deferred send is still queued (%v)", err)
		}
		return nil
	})
}

// TestExpiresBeforeDeferredSend: a post whose expires_at passes while a
// device's send waits out its quiet hours ends that delivery expired, with
// nothing pushed to it; the device awake got the post at once. A post that
// expires before the quiet hours end is expired at once
// (TestQuietHoursSayWhen); this one expires a minute after they end, and
// the deferred send runs later still (a worker busy, or the clock moved).
//
// The server's clock reads ten minutes before the sleeper's quiet hours
// end. The test then moves the clock past the post's expiry and has asynq
// run the deferred send now instead of in ten minutes.
func TestExpiresBeforeDeferredSend(t *testing.T) {
	t.Parallel()
	s, clock, end, sleeper, awake := quietStack(t)
	insp := asynq.NewInspector(s.redisOpt)
	defer insp.Close()
	expires := end.Add(time.Minute)
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "Loppemarked", "body": "I dag til kl. 15.",
		"expires_at": expires.Format(time.RFC3339)})
	sleeperID := s.deviceID("sleeper")
	s.waitDeferred(insp, id, sleeperID)

	clock.Set(expires.Add(time.Second))
	s.runDeferred(insp, id, sleeperID)
	st := s.waitDone(s.MuniKey, id)
	want := map[string]int{"pending": 0, "sent": 1, "failed": 0, "dead_token": 0, "deferred": 0,
		"skipped": 0, "cancelled": 0, "expired": 1}
	if diff := cmp.Diff(want, st.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if d := s.deliveryOf(id, sleeperID); d.State != "expired" || d.Reason != "post_expired" {
		t.Errorf("sleeper's delivery %+v, want expired for post_expired", d)
	}
	if recs := s.emu.RecordsFor(sleeper); len(recs) != 0 {
		t.Errorf("%d pushes to the sleeper after the post expired", len(recs))
	}
	if recs := s.emu.RecordsFor(awake); len(recs) != 1 || !recs[0].Accepted() {
		t.Errorf("pushes to the device awake: %+v, want one accepted", recs)
	}
}

// TestDeviceDeletedBeforeSendIsSkipped: a device deleted after the audience
// was snapshotted, while its send waits out its quiet hours, is not pushed
// to: its delivery ends skipped.
func TestDeviceDeletedBeforeSendIsSkipped(t *testing.T) {
	t.Parallel()
	s, clock, end, sleeper, _ := quietStack(t)
	insp := asynq.NewInspector(s.redisOpt)
	defer insp.Close()
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "Loppemarked", "body": "I dag til kl. 15."})
	sleeperID := s.deviceID("sleeper")
	s.waitDeferred(insp, id, sleeperID)

	if code := s.do("DELETE", "/v1/devices/sleeper", s.AppKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE the sleeper: %d", code)
	}
	clock.Set(end.Add(time.Second))
	s.runDeferred(insp, id, sleeperID)
	st := s.waitDone(s.MuniKey, id)
	if st.Counts["sent"] != 1 || st.Counts["skipped"] != 1 {
		t.Errorf("counts %v, want 1 sent and 1 skipped", st.Counts)
	}
	// Erased: the delivery stays, but no longer names the device.
	var state string
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT state FROM deliveries WHERE post_id = $1 AND device_id < 0`,
		id).Scan(&state); err != nil || state != "skipped" {
		t.Errorf("deleted device's delivery: %q %v, want skipped", state, err)
	}
	if recs := s.emu.RecordsFor(sleeper); len(recs) != 0 {
		t.Errorf("%d pushes to the deleted device", len(recs))
	}
}

// TestSegmentNarrowedByTarget: a municipality's post with both a segment
// and a target reaches the devices in both, and the preview counts the
// same.
func TestSegmentNarrowedByTarget(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.importVestfold(t)
	s.feed(t, s.muni, "nyheter", "nyheter", false)
	sandefjord := map[string]any{"name": "home", "lat": 59.1312, "lon": 10.2167}
	larvik := map[string]any{"name": "home", "lat": 59.0530, "lon": 10.0270}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for i, d := range []struct {
		id, provider string
		home         map[string]any
		more         map[string]any
	}{
		{"ios-sandefjord", "apns", sandefjord, map[string]any{"interests": []string{"eldre"}}},
		{"android-sandefjord", "fcm", sandefjord, map[string]any{"interests": []string{"eldre"}}},
		{"ios-larvik", "apns", larvik, map[string]any{"interests": []string{"eldre"}}},
		{"ios-larvik-subscribed-sandefjord", "apns", larvik, map[string]any{"areas": []string{"sandefjord"}}},
		{"android-larvik", "fcm", larvik, map[string]any{}},
	} {
		body := map[string]any{"provider": d.provider, "token": emulator.FCMToken(ok, d.id), "places": []any{d.home}}
		if d.provider == "apns" {
			body["token"] = emulator.APNsToken(ok, uint64(500+i))
		}
		for k, v := range d.more {
			body[k] = v
		}
		s.register(d.id, body)
	}
	cases := []struct {
		name            string
		segment, target any
		want            []string
	}{
		{"iOS, in Sandefjord", map[string]any{"platform": "ios"}, []string{"sandefjord"},
			[]string{"ios-larvik-subscribed-sandefjord", "ios-sandefjord"}},
		{"interested in eldre, within 3 km of Larvik centre", map[string]any{"interest": "eldre"},
			map[string]any{"lat": 59.0530, "lon": 10.0270, "radius_m": 3000}, []string{"ios-larvik"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.on(t)
			var pv struct{ Total int }
			if code := s.do("POST", "/v1/audience/preview", s.MuniKey, map[string]any{"feed": "nyheter",
				"segment": c.segment, "target": c.target}, &pv); code != http.StatusOK || pv.Total != len(c.want) {
				t.Errorf("preview: %d %+v, want %d", code, pv, len(c.want))
			}
			id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": c.name, "body": "b",
				"segment": c.segment, "target": c.target})
			s.waitDone(s.MuniKey, id)
			if diff := cmp.Diff(c.want, s.pushedTo(t, id)); diff != "" {
				t.Errorf("reached (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCancelDeliveredPostConflicts: once every delivery of a post has its
// outcome (sent or not), DELETE /v1/posts/{id} is 409 already_delivered and
// changes nothing.
func TestCancelDeliveredPostConflicts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.Org, "fotball", "fotball", false)
	s.register("ok", map[string]any{"provider": "fcm", "token": emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "ok"),
		"follows": []string{"fotball"}})
	s.register("dead", map[string]any{"provider": "fcm", "token": emulator.FCMToken(emulator.Behaviour{Kind: emulator.Unregistered}, "dead"),
		"follows": []string{"fotball"}})
	id := s.post(s.OrgKey, map[string]any{"feed": "fotball", "title": "Kamp", "body": "b"})
	before := s.waitDone(s.MuniKey, id)
	if before.Counts["sent"] != 1 || before.Counts["dead_token"] != 1 {
		t.Fatalf("counts %v, want 1 sent and 1 dead_token", before.Counts)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if code := s.do("DELETE", "/v1/posts/"+strconv.FormatInt(id, 10), s.OrgKey, nil, &e); code != http.StatusConflict ||
		e.Error.Code != "already_delivered" || e.Error.Message == "" {
		t.Errorf("DELETE of a delivered post: %d %+v, want 409 already_delivered", code, e)
	}
	after := s.getPost(s.MuniKey, id)
	if after.State != "done" || !cmp.Equal(before.Counts, after.Counts) {
		t.Errorf("after the refused DELETE: %s %v, want done %v", after.State, after.Counts, before.Counts)
	}
}

// TestPostStatesAndSendRate: GET /v1/posts/{id} shows a scheduled post
// accepted (no audience yet) until its publish_at, then moves only forward
// through dispatching and sending to done; a post held back by a 429 burst
// shows sending with its deliveries pending; once done it has a send rate.
func TestPostStatesAndSendRate(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "nyheter", "nyheter", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	const n = 4
	for i := range n - 1 {
		s.register(fmt.Sprint("ok-", i), map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, fmt.Sprint("st", i)),
			"follows": []string{"nyheter"}})
	}
	// One slow push: the sends cannot all be recorded at one instant, so the
	// rate has a first and a last send to be measured between.
	s.register("slow", map[string]any{"provider": "fcm", "token": emulator.FCMToken(emulator.Behaviour{Kind: emulator.Slow, Arg: 300}, "st-slow"),
		"follows": []string{"nyheter"}})

	// Every push is answered 429 until the test ends the burst, so the post
	// stays sending for as long as the test looks.
	s.emu.Throttle(time.Hour, time.Second)
	at := time.Now().Add(3 * time.Second).Truncate(time.Second)
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b", "publish_at": at.Format(time.RFC3339)})

	order := map[string]int{"accepted": 0, "dispatching": 1, "sending": 2, "done": 3}
	var seen []string
	last := -1
	look := func() postStatus {
		st := s.getPost(s.MuniKey, id)
		answered := time.Now()
		k, known := order[st.State]
		switch {
		case !known:
			t.Fatalf("post state %q", st.State)
		case k < last:
			t.Fatalf("post went from %s back to %s (states seen: %v)", seen[len(seen)-1], st.State, seen)
		case answered.Before(at) && (st.State != "accepted" || st.Audience != nil || st.SnapshotAt != nil):
			t.Fatalf("%s before publish_at %s: %s, audience %v, snapshot at %v; want accepted and no audience",
				answered.Format(time.RFC3339Nano), at.Format(time.RFC3339), st.State, deref(st.Audience), deref(st.SnapshotAt))
		}
		if k > last {
			seen, last = append(seen, st.State), k
		}
		return st
	}
	eventually(t, 30*time.Second, func() error {
		if st := look(); st.State != "sending" || st.Pending != n {
			return fmt.Errorf("%w: %s, %d pending", errNotYet, st.State, st.Pending)
		}
		return nil
	})
	s.emu.Throttle(0, 0)
	var st postStatus
	eventually(t, 30*time.Second, func() error {
		if st = look(); st.State != "done" {
			return fmt.Errorf("%w: %s %v", errNotYet, st.State, st.Counts)
		}
		return nil
	})
	t.Logf("states seen: %v; send rate %.1f/s", seen, st.SendRate)
	if st.Counts["sent"] != n || st.Audience == nil || *st.Audience != n {
		t.Fatalf("done: audience %v, counts %v; want %d sent", deref(st.Audience), st.Counts, n)
	}
	if st.SnapshotAt == nil || st.DispatchedAt == nil || st.FirstSentAt == nil || st.LastSentAt == nil {
		t.Fatalf("done without its times: %+v", st)
	}
	if st.SnapshotAt.Before(at) || st.DispatchedAt.Before(*st.SnapshotAt) || st.FirstSentAt.Before(*st.SnapshotAt) ||
		!st.LastSentAt.After(*st.FirstSentAt) {
		t.Errorf("publish_at %s, snapshot %s, dispatched %s, sends %s..%s: out of order", at, st.SnapshotAt, st.DispatchedAt,
			st.FirstSentAt, st.LastSentAt)
	}
	want := float64(n) / st.LastSentAt.Sub(*st.FirstSentAt).Seconds()
	if st.SendRate <= 0 || st.SendRate < want*0.999 || st.SendRate > want*1.001 {
		t.Errorf("send rate %v, want %d sends over %s = %v", st.SendRate, n, st.LastSentAt.Sub(*st.FirstSentAt), want)
	}
}

// retriedToTheEnd publishes a post to one device whose pushes FCM always
// answers 500 and drives its retries to the end without waiting out the
// backoff (minutes by the twelfth try): it reads when asynq scheduled each
// retry, then has asynq run it at once. It returns the pushes the emulator
// answered, the delivery as it ended, and how long after its r-th failure
// asynq scheduled each retry.
func (s *stack) retriedToTheEnd() ([]emulator.Record, delivery, map[int]time.Duration) {
	t := s.t
	t.Helper()
	s.feed(t, s.muni, "nyheter", "nyheter", false)
	tok := emulator.FCMToken(emulator.Behaviour{Kind: emulator.InternalError}, "cap")
	s.register("broken", map[string]any{"provider": "fcm", "token": tok, "follows": []string{"nyheter"}})
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"})
	dev := s.deviceID("broken")
	insp := asynq.NewInspector(s.redisOpt)
	defer insp.Close()
	delays := map[int]time.Duration{}
	eventually(t, 30*time.Second, func() error {
		var state string
		err := s.db.Pool.QueryRow(context.Background(), `SELECT state FROM deliveries WHERE post_id = $1 AND device_id = $2`,
			id, dev).Scan(&state)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: not snapshotted", errNotYet)
		case err != nil:
			return err
		case state != "pending":
			return nil
		}
		info, err := insp.GetTaskInfo(tasks.QueueOfficial, tasks.SendID(id, dev))
		if errors.Is(err, asynq.ErrTaskNotFound) && len(delays) > 0 {
			// A send records its outcome before its task is done.
			if d := s.deliveryOf(id, dev); d.State == "pending" {
				t.Fatalf("the send's task is over after %d retries, its delivery still pending: %+v", len(delays), d)
			}
			return nil
		}
		if err != nil || info.State != asynq.TaskStateRetry {
			return fmt.Errorf("%w: task %v %v", errNotYet, info, err)
		}
		if _, ok := delays[info.Retried]; !ok {
			delays[info.Retried] = info.NextProcessAt.Sub(info.LastFailedAt)
		}
		// The retry may have become due (and pending) meanwhile.
		if err := insp.RunTask(tasks.QueueOfficial, info.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Logf("run retry %d: %v", info.Retried, err)
		}
		return errNotYet
	})
	if st := s.waitDone(s.MuniKey, id); st.Counts["failed"] != 1 {
		t.Errorf("counts %v, want the delivery failed", st.Counts)
	}
	t.Logf("retries scheduled after: %v", delays)
	return s.emu.RecordsFor(tok), s.deliveryOf(id, dev), delays
}

// readmeAttempts is the README's cap on the tries of a send that fails with
// a server error.
const readmeAttempts = 12

// TestServerErrorsRetriedUntilFailed: a device whose pushes FCM always
// answers 500 is tried again and again, with exponential backoff from 1 s
// between the tries (as asynq scheduled them), every try counted, until the
// cap; then its delivery ends failed.
func TestServerErrorsRetriedUntilFailed(t *testing.T) {
	t.Parallel()
	recs, d, delays := newStack(t).retriedToTheEnd()
	if d.State != "failed" || d.Reason != "INTERNAL" || d.Attempts != len(recs) || len(recs) < readmeAttempts {
		t.Errorf("delivery %+v after %d pushes, want failed for INTERNAL after at least %d, each counted",
			d, len(recs), readmeAttempts)
	}
	for _, r := range recs {
		if r.Status != http.StatusInternalServerError {
			t.Errorf("push answered %d, want only 500s", r.Status)
		}
	}
	// asynq keeps retry times in whole seconds and takes the failure's time
	// a moment after the delay was drawn: allow two seconds either way.
	for r, d := range delays {
		base := min(time.Second<<min(r-1, 10), 10*time.Minute)
		if lo, hi := base/2-2*time.Second, base*3/2+2*time.Second; d < lo || d > hi {
			t.Errorf("retry after failure %d scheduled %s later, want %s..%s (backoff from 1 s doubling)", r, d, lo, hi)
		}
	}
	if len(delays) < readmeAttempts/2 {
		t.Errorf("saw only %d of the retries scheduled: %v", len(delays), delays)
	}
}

// TestServerErrorsTriedTwelveTimes: the README's cap is 12 attempts.
func TestServerErrorsTriedTwelveTimes(t *testing.T) {
	t.Parallel()
	recs, d, _ := newStack(t).retriedToTheEnd()
	if len(recs) != readmeAttempts || d.Attempts != readmeAttempts {
		t.Errorf("%d pushes, %d attempts counted; want %d", len(recs), d.Attempts, readmeAttempts)
	}
}

// TestRetryAfterHonoured: an APNs 503 with Retry-After: 2 is not tried
// again before those 2 seconds have passed.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "nyheter", "nyheter", false)
	const retryAfter = 2 * time.Second
	var tokens []string
	for i := range 3 {
		tok := emulator.APNsToken(emulator.Behaviour{Kind: emulator.Unavailable, Arg: int(retryAfter / time.Second)}, uint64(900+i))
		tokens = append(tokens, tok)
		s.register(fmt.Sprint("busy-", i), map[string]any{"provider": "apns", "token": tok, "follows": []string{"nyheter"}})
	}
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"})
	// Three tries of each: two waits each.
	eventually(t, 30*time.Second, func() error {
		for _, tok := range tokens {
			if n := len(s.emu.RecordsFor(tok)); n < 3 {
				return fmt.Errorf("%w: %d pushes to %s", errNotYet, n, tok)
			}
		}
		return nil
	})
	if code := s.do("DELETE", "/v1/posts/"+strconv.FormatInt(id, 10), s.MuniKey, nil, nil); code != http.StatusOK {
		t.Errorf("cancel: %d", code)
	}
	for _, tok := range tokens {
		recs := s.emu.RecordsFor(tok)
		for i := 1; i < len(recs); i++ {
			if recs[i-1].Status != http.StatusServiceUnavailable {
				continue
			}
			if gap := recs[i].Time.Sub(recs[i-1].Time); gap < retryAfter {
				t.Errorf("token …%s: try %d came %s after a 503 with Retry-After: %d", tok[len(tok)-4:], i+1, gap.Round(time.Millisecond),
					int(retryAfter/time.Second))
			}
		}
	}
}

// TestInvalidMessageFailsWithoutRetry: a message the provider refuses as
// invalid (FCM's INVALID_ARGUMENT for a message too big; for APNs the
// client's own check of the same) ends failed after one try, and the
// device stays active. The API refuses such posts, so this one is stored
// and dispatched beneath it, as a post from before a limit changed would be.
func TestInvalidMessageFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	feed := s.feed(t, s.muni, "nyheter", "nyheter", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	fcmTok, apnsTok := emulator.FCMToken(ok, "big"), emulator.APNsToken(ok, 77)
	s.register("android", map[string]any{"provider": "fcm", "token": fcmTok, "follows": []string{"nyheter"}})
	s.register("iphone", map[string]any{"provider": "apns", "token": apnsTok, "follows": []string{"nyheter"}})
	p, _, err := s.db.CreatePost(ctx, storage.Post{TenantID: s.tenant.ID, FeedID: feed.ID, PublisherID: s.muni.ID,
		Title: "Referat", Body: strings.Repeat("Lang tekst. ", 500), Class: crier.ClassOfficial})
	if err != nil {
		t.Fatal(err)
	}
	task, err := tasks.NewDispatch(p.ID, p.Class, p.PublishAt)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(s.redisOpt)
	defer client.Close()
	if _, err := client.Enqueue(task); err != nil {
		t.Fatal(err)
	}
	var st postStatus
	eventually(t, 20*time.Second, func() error {
		if recs := s.emu.RecordsFor(fcmTok); len(recs) > 1 {
			t.Fatalf("FCM tried again after refusing the message: %d pushes", len(recs))
		}
		if st = s.getPost(s.MuniKey, p.ID); st.State != "done" {
			return fmt.Errorf("%w: %s %v", errNotYet, st.State, st.Counts)
		}
		return nil
	})
	if st.Counts["failed"] != 2 {
		t.Errorf("counts %v, want both failed", st.Counts)
	}
	want := map[string]delivery{
		"android": {State: "failed", Reason: "INVALID_ARGUMENT", Attempts: 1},
		"iphone":  {State: "failed", Reason: "payload_too_large", Attempts: 1},
	}
	got := map[string]delivery{}
	for inst := range want {
		got[inst] = s.deliveryOf(p.ID, s.deviceID(inst))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if recs := s.emu.RecordsFor(fcmTok); len(recs) != 1 || recs[0].Status != http.StatusBadRequest {
		t.Errorf("FCM pushes %+v, want one refused", recs)
	}
	if recs := s.emu.RecordsFor(apnsTok); len(recs) != 0 {
		t.Errorf("%d APNs pushes of a payload over the limit", len(recs))
	}
	var inactive int
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM devices WHERE tenant_id = $1 AND NOT active`, s.tenant.ID).Scan(&inactive); err != nil {
		t.Fatal(err)
	}
	if inactive != 0 {
		t.Errorf("%d devices deactivated for a message's fault", inactive)
	}
}

// TestBrokenFCMCredentialsPause: a tenant whose FCM service account Google
// refuses has its Android sends paused (iOS goes on), the post lists fcm as
// paused, crier_provider_pauses_total counts the pauses, and the sends go
// out by themselves once the credentials work.
func TestBrokenFCMCredentialsPause(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, server.Config{AuthPause: 300 * time.Millisecond, CredentialsCheck: 200 * time.Millisecond})
	ctx := context.Background()
	pauses := func() int {
		t.Helper()
		resp, err := http.Get(s.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^crier_provider_pauses_total\{provider="fcm",reason="auth_broken",tenant="` +
			strconv.FormatInt(s.tenant.ID, 10) + `"\} (\S+)$`)
		m := re.FindSubmatch(b)
		if m == nil {
			return 0
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return int(v)
	}
	if n := pauses(); n != 0 {
		t.Fatalf("%d fcm pauses before anything was sent", n)
	}

	// The service account's key was deleted at Google: same account and key
	// id, a private key Google no longer knows.
	good, err := s.emu.NewServiceAccount("sandefjord-app")
	if err != nil {
		t.Fatal(err)
	}
	var sa map[string]any
	if err := json.Unmarshal(good, &sa); err != nil {
		t.Fatal(err)
	}
	stray, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(stray)
	if err != nil {
		t.Fatal(err)
	}
	sa["private_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	broken, err := json.Marshal(sa)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.SetFCM(ctx, s.tenant.ID, "sandefjord-app", broken, s.emu.FCMEndpoint()); err != nil {
		t.Fatal(err)
	}

	s.feed(t, s.muni, "nyheter", "nyheter", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	for i := range 3 {
		s.register(fmt.Sprint("android-", i), map[string]any{"provider": "fcm", "token": emulator.FCMToken(ok, fmt.Sprint("fa", i)),
			"follows": []string{"nyheter"}})
		s.register(fmt.Sprint("ios-", i), map[string]any{"provider": "apns", "token": emulator.APNsToken(ok, uint64(300+i)),
			"follows": []string{"nyheter"}})
	}
	id := s.post(s.MuniKey, map[string]any{"feed": "nyheter", "title": "t", "body": "b"})
	eventually(t, 20*time.Second, func() error {
		st := s.getPost(s.MuniKey, id)
		if st.Counts["sent"] != 3 || st.Counts["pending"] != 3 || len(st.Paused) != 1 ||
			st.Paused[0].Provider != "fcm" || st.Paused[0].Reason != "invalid_grant" {
			return fmt.Errorf("%w: %+v", errNotYet, st)
		}
		return nil
	})
	if sum := s.emu.Summary(); sum.FCM.Calls() != 0 || sum.APNs.Accepted != 3 {
		t.Errorf("while FCM refuses the credentials: %+v, want no FCM push and 3 APNs", sum)
	}
	paused := pauses()
	if paused < 1 {
		t.Errorf("crier_provider_pauses_total for fcm, auth_broken: %d, want at least 1", paused)
	}

	if err := s.db.SetFCM(ctx, s.tenant.ID, "sandefjord-app", good, s.emu.FCMEndpoint()); err != nil {
		t.Fatal(err)
	}
	done := s.waitDone(s.MuniKey, id)
	if done.Counts["sent"] != 6 {
		t.Errorf("after the fix: %v, want 6 sent", done.Counts)
	}
	if errs, err := s.db.AuthErrors(ctx, s.tenant.ID); err != nil || len(errs) != 0 {
		t.Errorf("auth errors after the fix: %v %v", errs, err)
	}
	if st := s.getPost(s.MuniKey, id); len(st.Paused) != 0 {
		t.Errorf("done post still lists paused providers: %+v", st.Paused)
	}
	accepted := 0
	for _, r := range s.emu.Records() {
		if r.Provider == "fcm" && r.Accepted() {
			accepted++
		}
	}
	if accepted != 3 {
		t.Errorf("%d FCM pushes accepted after the fix, want 3", accepted)
	}
	t.Logf("fcm auth pauses while broken: %d", paused)
}
