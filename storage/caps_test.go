package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// capsEnv is a tenant with an organisation, its ordinary feed and a
// mandatory one.
type capsEnv struct {
	db                  *storage.DB
	tenant              storage.Tenant
	org                 crier.Publisher
	feed, mandatoryFeed crier.Feed
}

func newCapsEnv(t *testing.T) capsEnv {
	t.Helper()
	db := testenv.DB(t)
	e := capsEnv{db: db, tenant: testenv.Tenant(t, db, "sandefjord", "Sandefjord kommune", "Europe/Oslo")}
	e.org = testenv.Publisher(t, db, e.tenant.ID, "sandefjord-fotball", "Sandefjord Fotball", crier.RoleOrganisation)
	e.feed = testenv.Feed(t, db, e.tenant.ID, e.org.ID, "fotball", "Fotball", false)
	e.mandatoryFeed = testenv.Feed(t, db, e.tenant.ID, e.org.ID, "banen-stengt", "Banen stengt", true)
	return e
}

func (e capsEnv) post(feed crier.Feed, externalID string) storage.Post {
	return storage.Post{TenantID: e.tenant.ID, FeedID: feed.ID, PublisherID: e.org.ID, Title: "Kamp",
		Body: "Kampen starter 18:00.", Class: crier.ClassCommunity, ExternalID: externalID}
}

func (e capsEnv) setLimit(t *testing.T, n *int) {
	t.Helper()
	if err := e.db.SetPublisherLimits(context.Background(), e.tenant.ID, e.org.ID, storage.Limits{DailyPosts: n}); err != nil {
		t.Fatal(err)
	}
}

func (e capsEnv) limits(t *testing.T) storage.PublisherLimits {
	t.Helper()
	pl, err := e.db.PublisherLimits(context.Background(), e.tenant.ID, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// age moves a post's creation back by d.
func (e capsEnv) age(t *testing.T, id int64, d time.Duration) {
	t.Helper()
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE posts SET created_at = now() - $2::float8 * interval '1 second'
		WHERE id = $1`, id, d.Seconds()); err != nil {
		t.Fatal(err)
	}
}

// within fails t unless got is in [want-slack, want].
func within(t *testing.T, what string, got, want, slack time.Duration) {
	t.Helper()
	if got > want || got < want-slack {
		t.Errorf("%s: %s, want %s (at most %s less)", what, got, want, slack)
	}
}

func intp(n int) *int { return &n }

// TestCapsWindow: the daily post limit counts the capped posts of the
// last 24 hours, rolling; past it a create is refused, saying when the
// newest post that fills the limit leaves the window; the same external
// id again is the stored post, neither refused nor counted; posts in a
// mandatory feed and alerts are not counted.
func TestCapsWindow(t *testing.T) {
	t.Parallel()
	e := newCapsEnv(t)
	ctx := context.Background()
	const slack = 5 * time.Minute // the test's own run time

	pl := e.limits(t)
	if pl.DailyPosts != nil || pl.DailyPushesPerDevice != nil || pl.TenantDailyPosts != 20 ||
		pl.Posts.Limit != 20 || pl.Posts.Used != 0 || pl.Posts.Left() != 20 || pl.Posts.FreeAt != nil {
		t.Fatalf("a new organisation's limits: %+v, want none set, the tenant's 20 in force, none used", pl)
	}

	e.setLimit(t, intp(3))
	var ids []int64
	for i := range 3 {
		p, created, err := e.db.CreateCappedPost(ctx, e.post(e.feed, fmt.Sprintf("cms-%d", i)))
		if err != nil || !created {
			t.Fatalf("post %d of 3: created %v, %v", i, created, err)
		}
		ids = append(ids, p.ID)
	}
	pl = e.limits(t)
	if pl.Posts.Limit != 3 || pl.Posts.Used != 3 || pl.Posts.Left() != 0 || pl.Posts.FreeAt == nil {
		t.Fatalf("after 3 of 3: %+v", pl.Posts)
	}
	within(t, "wait after 3 of 3", pl.Posts.RetryAfter(), crier.PostWindow, slack)

	_, _, err := e.db.CreateCappedPost(ctx, e.post(e.feed, "cms-over"))
	var limit *storage.PostLimitError
	if !errors.As(err, &limit) {
		t.Fatalf("the 4th post: %v, want a PostLimitError", err)
	}
	within(t, "the 4th post's wait", limit.Allowance.RetryAfter(), crier.PostWindow, slack)
	if _, err := e.db.PostIDByExternalID(ctx, e.org.ID, "cms-over"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the refused post is stored: %v", err)
	}

	// A CMS retry of a post made is that post, at the limit too.
	p, created, err := e.db.CreateCappedPost(ctx, e.post(e.feed, "cms-1"))
	if err != nil || created || p.ID != ids[1] {
		t.Errorf("cms-1 again: post %d created %v, %v; want post %d, not created", p.ID, created, err, ids[1])
	}
	// Posts the cap does not hold are not counted.
	if _, _, err := e.db.CreatePost(ctx, e.post(e.mandatoryFeed, "")); err != nil {
		t.Fatal(err)
	}
	alert := e.post(e.feed, "")
	alert.Class, alert.MsgType = crier.ClassEmergency, crier.MsgAlert
	if _, _, err := e.db.CreatePost(ctx, alert); err != nil {
		t.Fatal(err)
	}
	if got := e.limits(t).Posts.Used; got != 3 {
		t.Errorf("used after a re-send, a mandatory post and an alert: %d, want 3", got)
	}

	// The wait is until the newest post that fills the limit leaves the
	// window: with posts 3, 2 and 1 hours old, the 2nd newest for a limit
	// of 2, the newest for a limit of 1.
	for i, id := range ids {
		e.age(t, id, time.Duration(3-i)*time.Hour)
	}
	for _, c := range []struct {
		limit int
		wait  time.Duration
	}{{3, 21 * time.Hour}, {2, 22 * time.Hour}, {1, 23 * time.Hour}} {
		e.setLimit(t, intp(c.limit))
		a := e.limits(t).Posts
		if a.Used != 3 || a.Left() != 0 {
			t.Errorf("limit %d: %+v, want 3 used, none left", c.limit, a)
		}
		within(t, fmt.Sprintf("limit %d: wait", c.limit), a.RetryAfter(), c.wait, slack)
	}

	// A post leaves the window 24 hours after it was made, and frees its
	// place.
	e.setLimit(t, intp(3))
	e.age(t, ids[0], crier.PostWindow+time.Second)
	if got := e.limits(t).Posts; got.Used != 2 || got.Left() != 1 || got.FreeAt != nil || got.RetryAfter() != 0 {
		t.Errorf("after the oldest left the window: %+v, want 2 used, 1 left", got)
	}
	if _, created, err := e.db.CreateCappedPost(ctx, e.post(e.feed, "cms-next-day")); err != nil || !created {
		t.Errorf("a post once the oldest left the window: created %v, %v", created, err)
	}

	// Cleared, the tenant's default is in force again, and follows it.
	e.setLimit(t, nil)
	if _, err := e.db.Pool.Exec(ctx, `UPDATE tenants SET default_daily_post_limit = 4 WHERE id = $1`, e.tenant.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.limits(t); got.DailyPosts != nil || got.TenantDailyPosts != 4 || got.Posts.Limit != 4 || got.Posts.Used != 3 {
		t.Errorf("cleared under a tenant default of 4: %+v", got)
	}
}

// TestCapsRace: concurrent creates at the limit take their turns; exactly
// the limit pass, the others are refused, and nothing more is stored. The
// same external id sent at once by many, with one place left, makes one
// post, which every one of them gets.
func TestCapsRace(t *testing.T) {
	t.Parallel()
	e := newCapsEnv(t)
	ctx := context.Background()
	const limit, tries = 5, 16
	e.setLimit(t, intp(limit))

	run := func(externalID func(i int) string) (ids []int64, refused int, errs []error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p, _, err := e.db.CreateCappedPost(ctx, e.post(e.feed, externalID(i)))
				var le *storage.PostLimitError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.As(err, &le):
					refused++
				case err != nil:
					errs = append(errs, err)
				default:
					ids = append(ids, p.ID)
				}
			}()
		}
		close(start)
		wg.Wait()
		return ids, refused, errs
	}

	ids, refused, errs := run(func(i int) string { return fmt.Sprintf("race-%d", i) })
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(ids) != limit || refused != tries-limit {
		t.Errorf("%d concurrent creates at a limit of %d: %d passed, %d refused", tries, limit, len(ids), refused)
	}
	var stored int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM posts WHERE publisher_id = $1`, e.org.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != limit {
		t.Errorf("%d posts stored, want %d", stored, limit)
	}

	e.setLimit(t, intp(limit+1))
	ids, refused, errs = run(func(int) string { return "the-same" })
	if len(errs) > 0 || refused != 0 || len(ids) != tries {
		t.Fatalf("the same external id %d times with one place left: %d passed, %d refused, errors %v", tries, len(ids), refused, errs)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("the same external id made posts %v, want one", ids)
		}
	}
	if got := e.limits(t).Posts; got.Used != limit+1 {
		t.Errorf("used %d, want %d", got.Used, limit+1)
	}
}

// TestCapsSchema: the schema refuses a limit out of bounds, whatever code
// (or SQL by hand) tries.
func TestCapsSchema(t *testing.T) {
	t.Parallel()
	e := newCapsEnv(t)
	ctx := context.Background()
	for _, l := range []storage.Limits{{DailyPosts: intp(0)}, {DailyPosts: intp(crier.MaxDailyPosts + 1)},
		{DailyPushesPerDevice: intp(0)}, {DailyPushesPerDevice: intp(crier.MaxDailyPushesPerDevice + 1)}} {
		if err := e.db.SetPublisherLimits(ctx, e.tenant.ID, e.org.ID, l); err == nil {
			t.Errorf("limits %+v stored", l)
		}
	}
	l := storage.Limits{DailyPosts: intp(crier.MaxDailyPosts), DailyPushesPerDevice: intp(2)}
	if err := e.db.SetPublisherLimits(ctx, e.tenant.ID, e.org.ID, l); err != nil {
		t.Fatal(err)
	}
	if got := e.limits(t); *got.DailyPosts != crier.MaxDailyPosts || *got.DailyPushesPerDevice != 2 {
		t.Errorf("stored %+v, read %+v", l, got.Limits)
	}
	other := testenv.Tenant(t, e.db, "larvik", "Larvik kommune", "Europe/Oslo")
	if err := e.db.SetPublisherLimits(ctx, other.ID, e.org.ID, l); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("limits set through another tenant: %v, want ErrNotFound", err)
	}
	if _, err := e.db.PublisherLimits(ctx, other.ID, e.org.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("limits read through another tenant: %v, want ErrNotFound", err)
	}
}
