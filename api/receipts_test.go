package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/receipts"
)

// receipt posts a raw receipts body for an installation with its secret
// ("" for none) and the app key, and returns the status, headers and body.
func (e *env) receipt(inst, secret, body string) (int, http.Header, []byte) {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if secret != "" {
		h.Set(api.DeviceSecretHeader, secret)
	}
	status, hdr, answer, err := apiclient.Client{Base: e.base, Key: e.AppKey}.Send(context.Background(), "POST",
		"/v1/devices/"+inst+"/receipts", h, body)
	if err != nil {
		e.t.Fatal(err)
	}
	return status, hdr, answer
}

// deliver records that the post was sent to the installation, as the
// dispatcher's snapshot does.
func (e *env) deliver(post int64, inst string) {
	e.t.Helper()
	if _, err := e.db.Pool.Exec(context.Background(), `INSERT INTO deliveries (post_id, device_id, provider, state)
		SELECT $1, id, provider, 'sent' FROM devices WHERE tenant_id = $2 AND installation_id = $3`, post, e.tenant.ID, inst); err != nil {
		e.t.Fatal(err)
	}
}

type reachAnswer struct {
	Reach struct {
		Received  json.RawMessage `json:"received"`
		Displayed json.RawMessage `json:"displayed"`
		LatencyMS *struct {
			First, Median, P95 int64
		} `json:"latency_ms"`
	} `json:"reach"`
}

func (e *env) reach(key string, post int64) reachAnswer {
	e.t.Helper()
	var got reachAnswer
	if code := e.do("GET", "/v1/posts/"+strconv.FormatInt(post, 10), key, nil, &got); code != http.StatusOK {
		e.t.Fatalf("GET post %d: %d", post, code)
	}
	return got
}

// receiptEnv is an env with a municipal post and an organisation's post,
// both delivered to phone-1, and phone-2 registered but sent neither, and
// a device from before device secrets.
func receiptEnv(t *testing.T, cfg api.Config) (e *env, muniPost, orgPost int64, secret1, secret2 string) {
	t.Helper()
	e = newEnvWith(t, cfg)
	e.feed(t, e.muni, "beredskap", "Beredskap", false)
	e.feed(t, e.Org, "fotball", "Fotball", false)
	secret1 = e.register("phone-1", map[string]any{"provider": "fcm", "token": "emu-ok-p1", "follows": []string{"fotball"}})
	secret2 = e.register("phone-2", map[string]any{"provider": "fcm", "token": "emu-ok-p2"})
	if _, err := e.db.Pool.Exec(context.Background(), `INSERT INTO devices (tenant_id, installation_id, provider, platform, token)
		VALUES ($1, 'legacy', 'fcm', 'android', 'emu-ok-legacy')`, e.tenant.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		key, feed string
		id        *int64
	}{{e.MuniKey, "beredskap", &muniPost}, {e.OrgKey, "fotball", &orgPost}} {
		var c postCreated
		if code := e.do("POST", "/v1/posts", p.key, map[string]any{"feed": p.feed, "title": "Flom", "body": "Evakuer"}, &c); code != http.StatusAccepted {
			t.Fatalf("POST /v1/posts: %d", code)
		}
		*p.id = c.ID
		e.deliver(c.ID, "phone-1")
	}
	return e, muniPost, orgPost, secret1, secret2
}

// TestAPIReceiptsRefused: receipts need the app key, the installation's
// device secret and a well-formed body; each refusal names its field.
func TestAPIReceiptsRefused(t *testing.T) {
	t.Parallel()
	e, post, _, secret1, secret2 := receiptEnv(t, api.Config{})
	ok := fmt.Sprintf(`{"post_id": %d}`, post)
	many := make([]string, 51)
	for i := range many {
		many[i] = ok
	}
	tests := []struct {
		name, inst, secret, body string
		want                     errorWant
	}{
		{"no device secret", "phone-1", "", ok, errorWant{401, "unauthorized", api.DeviceSecretHeader}},
		{"another device's secret", "phone-1", secret2, ok, errorWant{403, "forbidden", api.DeviceSecretHeader}},
		{"unknown installation", "phone-9", secret1, ok, errorWant{404, "not_found", ""}},
		{"installation before device secrets", "legacy", secret1, ok, errorWant{401, "unauthorized", api.DeviceSecretHeader}},
		{"bad installation id", "phone%20one", secret1, ok, errorWant{400, "invalid_request", "installation_id"}},
		{"empty object", "phone-1", secret1, `{}`, errorWant{400, "invalid_request", "post_id"}},
		{"post id zero", "phone-1", secret1, `{"post_id": 0}`, errorWant{400, "invalid_request", "post_id"}},
		{"post id a string", "phone-1", secret1, `{"post_id": "7"}`, errorWant{400, "invalid_request", "post_id"}},
		{"received_at not a time", "phone-1", secret1, `{"post_id": 7, "received_at": "yesterday"}`,
			errorWant{400, "invalid_request", "received_at"}},
		{"received_at a number", "phone-1", secret1, `{"post_id": 7, "received_at": 1700000000}`,
			errorWant{400, "invalid_request", "received_at"}},
		{"displayed_at in 1970", "phone-1", secret1, `{"post_id": 7, "displayed_at": "1970-01-01T00:00:00Z"}`,
			errorWant{400, "invalid_request", "displayed_at"}},
		{"unknown field", "phone-1", secret1, `{"post_id": 7, "seen": true}`, errorWant{400, "invalid_request", "seen"}},
		{"empty list", "phone-1", secret1, `{"receipts": []}`, errorWant{400, "invalid_request", "receipts"}},
		{"bad second of a list", "phone-1", secret1, `{"receipts": [{"post_id": 7}, {"post_id": 7, "displayed_at": "x"}]}`,
			errorWant{400, "invalid_request", "receipts[1].displayed_at"}},
		{"list without a post id", "phone-1", secret1, `{"receipts": [{"received_at": "2025-03-01T12:00:00Z"}]}`,
			errorWant{400, "invalid_request", "receipts[0].post_id"}},
		{"one and a list", "phone-1", secret1, `{"post_id": 7, "receipts": [{"post_id": 7}]}`,
			errorWant{400, "invalid_request", "receipts"}},
		{"51 receipts", "phone-1", secret1, `{"receipts": [` + strings.Join(many, ",") + `]}`,
			errorWant{400, "invalid_request", "receipts"}},
		{"over 16 KB", "phone-1", secret1, `{"receipts": [` + strings.Repeat(" ", 16<<10) + `]}`,
			errorWant{413, "too_large", ""}},
		{"two objects", "phone-1", secret1, ok + ok, errorWant{400, "invalid_request", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, body := e.on(t).receipt(tt.inst, tt.secret, tt.body)
			var got apiError
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%d %q: %v", code, body, err)
			}
			checkError(t, tt.want, code, got)
		})
	}
	t.Run("a publisher key", func(t *testing.T) {
		t.Parallel()
		var got apiError
		code := e.on(t).do("POST", "/v1/devices/phone-1/receipts", e.MuniKey, map[string]any{"post_id": post}, &got)
		checkError(t, errorWant{403, "forbidden", ""}, code, got)
	})
	if r := e.reach(e.MuniKey, post).Reach; string(r.Received) != "0" {
		t.Errorf("after the refusals the post has %s receipts, want 0", r.Received)
	}
}

// TestAPIReceiptsCounted: a receipt is taken (202) and shows in the post's
// reach with its latency; a receipt for a post the device was never sent is
// taken and counts for nothing; an organisation sees its counts rounded
// and no latencies.
func TestAPIReceiptsCounted(t *testing.T) {
	t.Parallel()
	e, post, orgPost, secret1, secret2 := receiptEnv(t, api.Config{})
	// The post was accepted a minute ago (a receipt's time after the
	// server's clock would be the server's).
	created := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE posts SET created_at = $2 WHERE id = $1`, post, created); err != nil {
		t.Fatal(err)
	}
	received := created.Add(1200 * time.Millisecond).Format(time.RFC3339Nano)
	for _, r := range []struct{ inst, secret, body string }{
		{"phone-1", secret1, fmt.Sprintf(`{"post_id": %d, "received_at": %q}`, post, received)},
		// A display, later, with a time ahead of the server's clock.
		{"phone-1", secret1, fmt.Sprintf(`{"post_id": %d, "displayed_at": %q}`, post, time.Now().Add(time.Hour).Format(time.RFC3339))},
		{"phone-2", secret2, fmt.Sprintf(`{"post_id": %d}`, post)},
		{"phone-1", secret1, fmt.Sprintf(`{"receipts": [{"post_id": %d}, {"post_id": %d}]}`, orgPost, orgPost)},
	} {
		code, _, body := e.receipt(r.inst, r.secret, r.body)
		if code != http.StatusAccepted || !strings.Contains(string(body), `"accepted"`) {
			t.Errorf("receipt %s of %s: %d %s, want 202", r.body, r.inst, code, body)
		}
	}
	got := e.reach(e.MuniKey, post).Reach
	if string(got.Received) != "1" || string(got.Displayed) != "1" {
		t.Errorf("reach: received %s, displayed %s; want 1 and 1 (phone-2 was never sent the post)", got.Received, got.Displayed)
	}
	want := struct{ First, Median, P95 int64 }{1200, 1200, 1200}
	if got.LatencyMS == nil || *got.LatencyMS != want {
		t.Errorf("latency %+v, want %+v", got.LatencyMS, want)
	}
	var displayed time.Time
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT displayed_at FROM receipts WHERE post_id = $1`, post).Scan(&displayed); err != nil {
		t.Fatal(err)
	}
	if displayed.After(time.Now()) {
		t.Errorf("displayed_at %v is in the future: a time ahead of the server's is the server's", displayed)
	}
	org := e.reach(e.OrgKey, orgPost).Reach
	if string(org.Received) != `"<10"` || org.LatencyMS != nil {
		t.Errorf("the organisation sees received %s and latency %+v, want \"<10\" and none", org.Received, org.LatencyMS)
	}
	if m := e.reach(e.MuniKey, orgPost).Reach; string(m.Received) != "1" {
		t.Errorf("the municipality sees %s receipts of the organisation's post, want 1", m.Received)
	}
}

// TestAPIReceiptsBounded: a full writer refuses with 429 and Retry-After
// at once; past ReceiptRequests in flight, a receipt is refused the same
// way without waiting for a turn.
func TestAPIReceiptsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Nothing runs the writer: it holds one receipt and is full.
	full, err := receipts.New(testenv.DB(t), receipts.Config{Batch: 1, Pending: 1})
	if err != nil {
		t.Fatal(err)
	}
	e, post, _, secret1, _ := receiptEnv(t, api.Config{Receipts: full, ReceiptRequests: 1})
	ok := fmt.Sprintf(`{"post_id": %d}`, post)
	if code, _, body := e.receipt("phone-1", secret1, ok); code != http.StatusAccepted {
		t.Fatalf("first receipt: %d %s", code, body)
	}
	code, hdr, _ := e.receipt("phone-1", secret1, ok)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("receipt past the writer's bound: %d, Retry-After %q; want 429 with one", code, hdr.Get("Retry-After"))
	}

	// One receipt held in flight by a lock on devices; the next is turned
	// away at once.
	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // released below
	if _, err := tx.Exec(ctx, `LOCK TABLE devices IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	held := make(chan int, 1)
	go func() {
		h := http.Header{"Content-Type": {"application/json"}, api.DeviceSecretHeader: {secret1}}
		code, _, _, _ := apiclient.Client{Base: e.base, Key: e.AppKey}.Send(ctx, "POST", "/v1/devices/phone-1/receipts", h, ok)
		held <- code
	}()
	waitLocked(t, e)
	start := time.Now()
	code, hdr, _ = e.receipt("phone-1", secret1, ok)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("receipt past ReceiptRequests: %d, Retry-After %q; want 429 with one", code, hdr.Get("Retry-After"))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %v: it must not wait for a turn", d)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-held; code != http.StatusTooManyRequests {
		// The writer is still full (nothing runs it): the held request,
		// once through, is refused by the writer.
		t.Errorf("held receipt: %d, want 429 from the full writer", code)
	}
}

// waitLocked waits until a query of the API waits on a lock.
func waitLocked(t *testing.T, e *env) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		var n int
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM devices%'`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errors.New("no receipt waits on the lock yet")
		}
		return nil
	})
}
