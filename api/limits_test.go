package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/publish"
)

// newEnvWith makes an env whose API runs with cfg; its /readyz checks the
// database besides cfg.Ready.
func newEnvWith(t *testing.T, cfg api.Config) *env {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	q := &queue{tasks: map[string]*asynq.Task{}}
	pub, err := publish.New(db, q, publish.Config{})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]api.Pinger{"postgres": db}
	for k, v := range cfg.Ready {
		checks[k] = v
	}
	cfg.Ready = checks
	h, err := api.New(db, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, base: srv.URL, queue: q}
	if e.tenant, err = db.CreateTenant(ctx, "sandefjord", "Sandefjord kommune", "Europe/Oslo"); err != nil {
		t.Fatal(err)
	}
	if e.muni, err = db.CreatePublisher(ctx, e.tenant.ID, "kommunen", "Sandefjord kommune", crier.RoleMunicipality); err != nil {
		t.Fatal(err)
	}
	e.Publishers = testenv.NewPublishers(t, db, e.tenant.ID, e.muni)
	return e
}

// TestAPIConfig: the zero config gets the named limits, and a negative one
// is refused naming the field.
func TestAPIConfig(t *testing.T) {
	t.Parallel()
	configtest.Defaults(t, api.Config{RequestTimeout: api.DefaultRequestTimeout, Previews: api.DefaultPreviews,
		PreviewWait: api.DefaultPreviewWait}, api.Config{}.WithDefaults(), "Logger")
	db := testenv.DB(t)
	pub, err := publish.New(db, &queue{tasks: map[string]*asynq.Task{}}, publish.Config{})
	if err != nil {
		t.Fatal(err)
	}
	use := func(c api.Config) error { _, err := api.New(db, pub, c); return err }
	configtest.Refuses(t, api.Config{}, use, []configtest.Case[api.Config]{
		{Field: "RequestTimeout", Change: func(c *api.Config) { c.RequestTimeout = -time.Second }},
		{Field: "Previews", Change: func(c *api.Config) { c.Previews = -1 }},
		{Field: "PreviewWait", Change: func(c *api.Config) { c.PreviewWait = -time.Second }},
	})
}

// deadlinePinger is a readiness check that reports how long its context
// had left.
type deadlinePinger chan time.Duration

func (p deadlinePinger) Ping(ctx context.Context) error {
	left := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	p <- left
	return nil
}

// lockFeeds holds every query that reads the feeds table, a preview's
// first, until the returned func is called.
func (e *env) lockFeeds(t *testing.T) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE feeds IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	release = func() { tx.Rollback(ctx) } //nolint:errcheck // it only ever read
	t.Cleanup(release)
	return release
}

// waitFeedsWaiters waits until n queries wait for the feeds lock.
func (e *env) waitFeedsWaiters(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		var waiting int
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE relation = 'feeds'::regclass AND NOT granted`).Scan(&waiting); err != nil {
			return err
		}
		if waiting < n {
			return fmt.Errorf("%d queries wait for the feeds lock, want %d", waiting, n)
		}
		return nil
	})
}

// answer is what a request in the background got.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// sendAsync sends a request in the background; its answer arrives on the
// channel.
func (e *env) sendAsync(ctx context.Context, method, path, key, body string) <-chan answer {
	c := make(chan answer, 1)
	go func() {
		h := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
		var a answer
		a.status, a.header, a.body, a.err = e.send(method, path, h, body)
		c <- a
	}()
	return c
}

// TestRequestDeadline: every request's context ends at the API's deadline,
// and a request whose query is still waiting then is answered 503 with
// Retry-After rather than held.
func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	// Shorter than /readyz's own two seconds, so the check sees the
	// request's deadline, not its own.
	const timeout = time.Second
	left := make(deadlinePinger, 1)
	e := newEnvWith(t, api.Config{RequestTimeout: timeout, Ready: map[string]api.Pinger{"deadline": left}})
	e.do("GET", "/readyz", "", nil, nil)
	if l := <-left; l < 0 || l > timeout {
		t.Errorf("a request's context had %v left, want a deadline at most %v away", l, timeout)
	}

	e.feed(t, e.muni, "nyheter", "Nyheter", false)
	e.lockFeeds(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := <-e.sendAsync(ctx, "POST", "/v1/audience/preview", e.MuniKey, `{"feed": "nyheter"}`)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Errorf("a preview held past the deadline: %d %s, Retry-After %q; want 503 with Retry-After",
			a.status, a.body, a.header.Get("Retry-After"))
	}
}

// TestPreviewTurns: previews past the limit wait PreviewWait for a turn,
// then are answered 429 with Retry-After; the turn is given back when the
// running preview ends.
func TestPreviewTurns(t *testing.T) {
	t.Parallel()
	const wait = 200 * time.Millisecond
	e := newEnvWith(t, api.Config{Previews: 1, PreviewWait: wait})
	e.feed(t, e.muni, "nyheter", "Nyheter", false)
	body := `{"feed": "nyheter"}`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	release := e.lockFeeds(t)
	first := e.sendAsync(ctx, "POST", "/v1/audience/preview", e.MuniKey, body)
	e.waitFeedsWaiters(t, 1) // the first preview has its turn and waits inside it

	start := time.Now()
	a := <-e.sendAsync(ctx, "POST", "/v1/audience/preview", e.MuniKey, body)
	if a.err != nil {
		t.Fatal(a.err)
	}
	var refused apiError
	if err := json.Unmarshal(a.body, &refused); err != nil {
		t.Fatalf("decode %q: %v", a.body, err)
	}
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" || refused.Error.Code != "too_many_requests" {
		t.Errorf("a preview past the limit: %d %s, Retry-After %q; want 429 too_many_requests with Retry-After 1",
			a.status, a.body, a.header.Get("Retry-After"))
	}
	if waited := time.Since(start); waited < wait {
		t.Errorf("refused after %v, want a wait of %v for a turn first", waited, wait)
	}

	release()
	if a := <-first; a.err != nil || a.status != http.StatusOK {
		t.Errorf("the preview that had its turn: %d %s %v, want 200", a.status, a.body, a.err)
	}
	var count struct{ Total json.RawMessage }
	if code := e.do("POST", "/v1/audience/preview", e.MuniKey, body, &count); code != http.StatusOK {
		t.Errorf("a preview after the turn was given back: %d, want 200", code)
	}
}
