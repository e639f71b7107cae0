package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/storage"
)

// auditEntry is an entry of GET /v1/audit.
type auditEntry struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	KeyID     *int64          `json:"key_id"`
	KeyLabel  string          `json:"key_label"`
	Publisher string          `json:"publisher"`
	Action    string          `json:"action"`
	Object    string          `json:"object"`
	RequestID string          `json:"request_id"`
	Detail    json.RawMessage `json:"detail"`
}

type auditPage struct {
	Entries    []auditEntry `json:"entries"`
	NextBefore int64        `json:"next_before"`
	Next       string       `json:"next"`
}

// act makes a request with a request id (none when empty) and returns the
// status, the request id answered and the body.
func (e *env) act(t *testing.T, method, path, key, requestID, contentType, body string) (int, string, []byte) {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {contentType}}
	if requestID != "" {
		h.Set("X-Request-Id", requestID)
	}
	code, header, raw, err := e.send(method, path, h, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, header.Get("X-Request-Id"), raw
}

// dbNow is the database's clock.
func (e *env) dbNow(t *testing.T) time.Time {
	t.Helper()
	var now time.Time
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// audit reads every page of GET /v1/audit with the query, following next.
func (e *env) audit(t *testing.T, query url.Values) []auditEntry {
	t.Helper()
	var all []auditEntry
	path := "/v1/audit?" + query.Encode()
	for range 100 {
		var page auditPage
		if code := e.on(t).do("GET", path, e.MuniKey, nil, &page); code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, code)
		}
		all = append(all, page.Entries...)
		if page.Next == "" {
			return all
		}
		path = page.Next
	}
	t.Fatalf("GET /v1/audit: more than 100 pages")
	return nil
}

const capAlertXML = `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>%s</identifier>
  <sender>beredskap@sandefjord.kommune.no</sender>
  <sent>2025-03-01T08:00:00+01:00</sent>
  <status>Actual</status>
  <msgType>%s</msgType>
  <scope>Public</scope>
  %s
  <info>
    <language>nb-NO</language>
    <category>Met</category>
    <event>Flom</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <headline>Flom i sentrum</headline>
    <description>Elva har gått over sine bredder.</description>
    <area><areaDesc>Sandefjord sentrum</areaDesc>
      <polygon>59.12,10.20 59.14,10.20 59.14,10.23 59.12,10.23 59.12,10.20</polygon></area>
  </info>
</alert>`

// TestAPIAuditSession: a scripted session of every audited action, by the
// club and by the municipality, leaves exactly its entries, newest first,
// each with its key, publisher, object and request id; refused requests
// leave none; the pages of the log and its filters agree with it.
func TestAPIAuditSession(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	s.feed(t, s.Org, "fotball", "Fotball", false)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	keys := s.keys(t)
	cms, club := keys["cms"].ID, keys["club site"].ID
	start := s.dbNow(t)

	id := func(raw []byte) string {
		var v struct{ ID int64 }
		if err := json.Unmarshal(raw, &v); err != nil || v.ID == 0 {
			t.Fatalf("no id in %s", raw)
		}
		return fmt.Sprint(v.ID)
	}
	type step struct {
		method, path, key, requestID, contentType, body string
		status                                          int
	}
	run := func(st step) (string, []byte) {
		t.Helper()
		code, rid, raw := s.act(t, st.method, st.path, st.key, st.requestID, st.contentType, st.body)
		if code != st.status {
			t.Fatalf("%s %s: %d %s, want %d", st.method, st.path, code, raw, st.status)
		}
		if st.requestID != "" && rid != st.requestID {
			t.Fatalf("%s %s: X-Request-Id %q, want %q echoed", st.method, st.path, rid, st.requestID)
		}
		return rid, raw
	}
	const js = "application/json"
	_, raw := run(step{"POST", "/v1/posts", s.OrgKey, "s-1", js, `{"feed":"fotball","title":"Kamp","body":"Kamp i dag."}`, 202})
	post := id(raw)
	run(step{"DELETE", "/v1/posts/" + post, s.OrgKey, "s-2", "", "", 200})
	// Refused: no entries.
	run(step{"POST", "/v1/alerts", s.OrgKey, "s-refused-1", js, `{"feed":"fotball","title":"Flom","body":"Flom."}`, 403})
	run(step{"GET", "/v1/audit", s.OrgKey, "s-refused-2", "", "", 403})
	run(step{"POST", "/v1/keys", s.OrgKey, "s-refused-3", js, `{"kind":"app","label":"x"}`, 403})
	_, raw = run(step{"POST", "/v1/alerts", s.MuniKey, "s-3", js,
		`{"feed":"beredskap","title":"Gasslekkasje","body":"Hold vinduene lukket.","area":{"lat":59.13,"lon":10.22,"radius_m":300}}`, 202})
	jsonAlert := id(raw)
	_, raw = run(step{"POST", "/v1/alerts?feed=beredskap", s.MuniKey, "s-4", "application/cap+xml",
		fmt.Sprintf(capAlertXML, "flom-1", "Alert", ""), 202})
	capAlert := id(raw)
	run(step{"POST", "/v1/alerts?feed=beredskap", s.MuniKey, "s-5", "application/cap+xml",
		fmt.Sprintf(capAlertXML, "flom-2", "Cancel",
			"<references>beredskap@sandefjord.kommune.no,flom-1,2025-03-01T08:00:00+01:00</references>"), 200})
	run(step{"PUT", "/v1/areas", s.MuniKey, "s-6", "application/geo+json", `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"slug":"sentrum","name":"Sentrum"},"geometry":{"type":"Polygon","coordinates":[[[10.20,59.12],[10.23,59.12],[10.23,59.14],[10.20,59.14],[10.20,59.12]]]}},
		{"type":"Feature","properties":{"slug":"havna","name":"Havna"},"geometry":{"type":"Polygon","coordinates":[[[10.22,59.11],[10.24,59.11],[10.24,59.12],[10.22,59.12],[10.22,59.11]]]}}]}`, 200})
	_, raw = run(step{"POST", "/v1/keys", s.MuniKey, "s-7", js, `{"publisher":"sandefjord-fotball","label":"Kari"}`, 201})
	newKey := id(raw)
	run(step{"DELETE", "/v1/keys/" + newKey, s.MuniKey, "s-8", "", "", 200})
	// No X-Request-Id: the one the answer gives is the one recorded.
	generated, raw := run(step{"POST", "/v1/posts", s.MuniKey, "", js, `{"feed":"beredskap","title":"Vann","body":"Stengt vann."}`, 202})
	second := id(raw)

	type row struct {
		Action, Object, Actor string
		KeyID                 int64
		KeyLabel, Publisher   string
		RequestID             string
	}
	muni := func(action, object, rid string) row {
		return row{action, object, "key", cms, "cms", "kommunen", rid}
	}
	want := []row{
		muni("post.created", second, generated),
		muni("key.revoked", newKey, "s-8"),
		muni("key.created", newKey, "s-7"),
		muni("areas.imported", "sentrum,havna", "s-6"),
		muni("alert.withdrawn", capAlert, "s-5"), // it reached no one yet: no workers here
		muni("alert.created", capAlert, "s-4"),
		muni("alert.created", jsonAlert, "s-3"),
		{"post.cancelled", post, "key", club, "club site", "sandefjord-fotball", "s-2"},
		{"post.created", post, "key", club, "club site", "sandefjord-fotball", "s-1"},
	}
	rows := func(entries []auditEntry) []row {
		var out []row
		for _, e := range entries {
			r := row{e.Action, e.Object, e.Actor, 0, e.KeyLabel, e.Publisher, e.RequestID}
			if e.KeyID != nil {
				r.KeyID = *e.KeyID
			}
			out = append(out, r)
		}
		return out
	}
	since := url.Values{"since": {start.Format(time.RFC3339Nano)}}
	all := s.audit(t, since)
	if diff := cmp.Diff(want, rows(all)); diff != "" {
		t.Fatalf("the session's audit log (-want +got):\n%s", diff)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID || all[i].At.After(all[i-1].At) || all[i].At.Before(start) {
			t.Errorf("entries %d and %d are not newest first after %v: %+v, %+v", i-1, i, start, all[i-1], all[i])
		}
	}

	// What the details say.
	detail := func(e auditEntry) map[string]any {
		var d map[string]any
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatalf("detail %s: %v", e.Detail, err)
		}
		return d
	}
	details := []struct {
		entry int
		want  map[string]any
	}{
		{7, map[string]any{"cancelled": float64(0)}},
		{6, map[string]any{"feed": "beredskap", "class": "emergency", "format": "json"}},
		{5, map[string]any{"feed": "beredskap", "class": "emergency", "format": "cap",
			"external_id": "cap:beredskap@sandefjord.kommune.no,flom-1,2025-03-01T07:00:00Z"}},
		{3, map[string]any{"imported": float64(2), "repaired": []any{}}},
	}
	for _, d := range details {
		got := detail(all[d.entry])
		for k, v := range d.want {
			if !cmp.Equal(got[k], v) {
				t.Errorf("%s's detail %s = %v, want %v (all: %s)", all[d.entry].Action, k, got[k], v, all[d.entry].Detail)
			}
		}
	}
	if d := detail(all[2]); d["label"] != "Kari" || d["publisher"] != "sandefjord-fotball" || d["kind"] != "publisher" {
		t.Errorf("key.created's detail: %s", all[2].Detail)
	}

	// Pages of two give the same entries; a filter keeps only its action.
	paged := s.audit(t, url.Values{"since": since["since"], "limit": {"2"}})
	if diff := cmp.Diff(rows(all), rows(paged)); diff != "" {
		t.Errorf("paged by 2 (-all +paged):\n%s", diff)
	}
	created := s.audit(t, url.Values{"since": since["since"], "action": {"alert.created"}})
	if diff := cmp.Diff(want[5:7], rows(created)); diff != "" {
		t.Errorf("filtered by alert.created (-want +got):\n%s", diff)
	}
	// Without since, the keys made before the session are there, by the
	// operator.
	everything := s.audit(t, url.Values{})
	if n := len(everything) - len(all); n != 4 {
		t.Errorf("%d entries before the session, want the 4 keys made", n)
	}
	for _, e := range everything[len(all):] {
		if e.Action != "key.created" || e.Actor != "operator" || e.KeyID != nil {
			t.Errorf("entry before the session: %+v, want a key made by the operator", e)
		}
	}
}

// TestAPIAuditRefusals: only the municipality reads the log, and a query
// it does not understand is refused rather than read as no filter.
func TestAPIAuditRefusals(t *testing.T) {
	t.Parallel()
	s := newEnv(t)
	tests := []struct {
		name, key, query string
		want             errorWant
	}{
		{"organisation", s.OrgKey, "", errorWant{403, "forbidden", ""}},
		{"app", s.AppKey, "", errorWant{403, "forbidden", ""}},
		{"since not a time", s.MuniKey, "since=yesterday", errorWant{400, "invalid_request", "since"}},
		{"unknown action", s.MuniKey, "action=post.deleted", errorWant{400, "invalid_request", "action"}},
		{"limit 0", s.MuniKey, "limit=0", errorWant{400, "invalid_request", "limit"}},
		{"limit too big", s.MuniKey, "limit=1001", errorWant{400, "invalid_request", "limit"}},
		{"bad cursor", s.MuniKey, "before=-3", errorWant{400, "invalid_request", "before"}},
		{"misspelt filter", s.MuniKey, "acton=post.created", errorWant{400, "invalid_request", "acton"}},
	}
	for _, tt := range tests {
		var got apiError
		code := s.on(t).do("GET", "/v1/audit?"+tt.query, tt.key, nil, &got)
		t.Run(tt.name, func(t *testing.T) { checkError(t, tt.want, code, got) })
	}
	// A time zone's + sent unescaped arrives as a space, and is read.
	var page auditPage
	if code := s.do("GET", "/v1/audit?since=2025-03-01T08:00:00+01:00", s.MuniKey, nil, &page); code != http.StatusOK {
		t.Errorf("since with an unescaped +01:00: %d", code)
	}
}

// lockedBuffer is a log the server writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAPIAuditWriteFails: when the audit entry of a done action cannot be
// written, the action stands and is answered as done (a client told it
// failed would only do it again), and the loss is logged at Error with
// what the entry held. The API runs as a database role that may do
// everything but add to the audit log.
func TestAPIAuditWriteFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	var b [4]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	role := "crier_noaudit_" + hex.EncodeToString(b[:])
	for _, stmt := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT ALL ON ALL TABLES IN SCHEMA public TO ` + role,
		`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ` + role,
		`REVOKE INSERT ON audit_log FROM ` + role,
	} {
		if _, err := s.db.Pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		// The role's grants are in the test's database, dropped after.
		s.db.Pool.Exec(context.Background(), `DROP OWNED BY `+role) //nolint:errcheck
		s.db.Pool.Exec(context.Background(), `DROP ROLE `+role)     //nolint:errcheck
	})
	u, err := url.Parse(s.db.Pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	db, err := storage.Open(ctx, storage.Config{URL: u.String(), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pub, err := publish.New(db, &queue{tasks: map[string]*asynq.Task{}}, publish.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	h, err := api.New(db, pub, api.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	var created postCreated
	code := testenv.Do(t, srv.URL, "POST", "/v1/posts", s.MuniKey, map[string]any{"feed": "beredskap", "title": "Vann", "body": "Stengt vann."}, &created)
	if code != http.StatusAccepted || created.ID == 0 {
		t.Fatalf("post with the audit log out of reach: %d %+v, want it accepted", code, created)
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="audit record not written"`) ||
		!strings.Contains(logs.String(), "action=post.created") || !strings.Contains(logs.String(), fmt.Sprintf("object=%d", created.ID)) {
		t.Errorf("the lost entry is not logged at Error with its action and object:\n%s", logs)
	}
	if entries, err := s.db.AuditLog(ctx, storage.AuditQuery{TenantID: s.tenant.ID, Action: storage.AuditPostCreated, Limit: 10}); err != nil || len(entries) != 0 {
		t.Errorf("audit entries of the post: %+v, %v; want none written", entries, err)
	}
}
