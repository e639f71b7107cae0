package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/publish"
)

// noQueue refuses every task: a preview must enqueue nothing.
type noQueue struct{}

func (noQueue) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return nil, errors.New("a preview enqueued a task")
}

// TestPreviewAlertHandler: POST /v1/alerts/preview answers a JSON or CAP
// alert's area with its size, audience and whether it meets the
// territory, 200 even when sending would refuse it; organisations are
// forbidden, other bodies unsupported, bad areas 400 naming the field. The
// route is served as server.go is to serve it.
func TestPreviewAlertHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.DB(t)
	pub, err := publish.New(db, noQueue{}, publish.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, pub, Config{})
	if err != nil {
		t.Fatal(err)
	}
	tn := testenv.Tenant(t, db, "vestfold", "Vestfold", "Europe/Oslo")
	muni := testenv.Publisher(t, db, tn.ID, "kommunen", "Kommunen", crier.RoleMunicipality)
	keys := testenv.NewPublishers(t, db, tn.ID, muni)
	raw, err := os.ReadFile("../demo/vestfold-kommuner-2024.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := areas.Import(ctx, db, tn.ID, raw, areas.Options{SlugProperty: "kommunenavn", NameProperty: "kommunenavn"}); err != nil {
		t.Fatal(err)
	}
	h := s.limitPreviews(s.auth(crier.KeyPublisher, s.previewAlert))

	capAlert := func(area string) string {
		return `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>p-1</identifier><sender>beredskap@example.org</sender><sent>2026-11-27T12:00:00+01:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>nb-NO</language><category>Met</category><event>Flom</event><urgency>Immediate</urgency>
  <severity>Severe</severity><certainty>Observed</certainty><headline>Flom</headline>
  <area><areaDesc>Test</areaDesc>` + area + `</area></info>
</alert>`
	}
	type answer struct {
		AreaKM2     float64 `json:"area_km2"`
		InTerritory bool    `json:"in_territory"`
		Refusal     string  `json:"refusal"`
		Error       struct {
			Code, Field string
		} `json:"error"`
	}
	for _, c := range []struct {
		name, key, contentType, body string
		status                       int
		in                           bool
		refused                      bool
		field                        string
	}{
		{"JSON inside", keys.MuniKey, "application/json", `{"area":{"lat":59.265,"lon":10.07,"radius_m":500}}`, 200, true, false, ""},
		{"JSON in Oslo", keys.MuniKey, "application/json", `{"area":{"lat":59.91,"lon":10.75,"radius_m":5000}}`, 200, false, true, ""},
		{"JSON named", keys.MuniKey, "", `{"area":["sandefjord"]}`, 200, true, false, ""},
		{"CAP inside", keys.MuniKey, "application/cap+xml", capAlert(`<circle>59.265,10.07 0.5</circle>`), 200, true, false, ""},
		{"CAP in Oslo", keys.MuniKey, "text/xml", capAlert(`<circle>59.91,10.75 5</circle>`), 200, false, true, ""},
		{"a bad circle", keys.MuniKey, "application/json", `{"area":{"lat":59.91,"lon":10.75,"radius_m":0}}`, 400, false, false, "area.radius_m"},
		{"no area", keys.MuniKey, "application/json", `{"title":"x"}`, 400, false, false, "area"},
		{"an organisation", keys.OrgKey, "application/json", `{"area":["sandefjord"]}`, 403, false, false, ""},
		{"the app", keys.AppKey, "application/json", `{"area":["sandefjord"]}`, 403, false, false, ""},
		{"plain text", keys.MuniKey, "text/plain", `sandefjord`, 415, false, false, ""},
	} {
		r := httptest.NewRequest("POST", "/v1/alerts/preview", strings.NewReader(c.body))
		r.Header.Set("Authorization", "Bearer "+c.key)
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var got answer
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %d %s: %v", c.name, w.Code, w.Body, err)
		}
		if w.Code != c.status || got.InTerritory != c.in || (got.Refusal != "") != c.refused || got.Error.Field != c.field {
			t.Errorf("%s: %d %s; want %d, in territory %v, refused %v, field %q", c.name, w.Code, w.Body, c.status, c.in, c.refused, c.field)
		}
		if w.Code == 200 && got.AreaKM2 <= 0 {
			t.Errorf("%s: %s, want an area", c.name, w.Body)
		}
	}
}
