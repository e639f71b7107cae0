package publish

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
)

// checkRejection asserts what every rejection must be: a *crier.Error of a
// client's kind (the API answers it with a 4xx), with a message.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	e := crier.AsError(err)
	if e == nil {
		t.Fatalf("rejection %v (%T) is not a *crier.Error", err, err)
	}
	if (e.Code != crier.EINVALID && e.Code != crier.EFORBIDDEN) || e.Message == "" {
		t.Fatalf("rejection %+v: want invalid_request or forbidden, with a message", e)
	}
}

var (
	muni = crier.Principal{TenantID: 1, Kind: crier.KeyPublisher,
		Publisher: &crier.Publisher{ID: 1, TenantID: 1, Role: crier.RoleMunicipality}}
	club = crier.Principal{TenantID: 1, Kind: crier.KeyPublisher,
		Publisher: &crier.Publisher{ID: 2, TenantID: 1, Role: crier.RoleOrganisation}}
)

func testService(now time.Time) *Service {
	return &Service{cfg: Config{Now: func() time.Time { return now }}.WithDefaults()}
}

// FuzzPostBody feeds arbitrary bodies to a post's decoding and validation:
// no panic, and every rejection a clear client error.
func FuzzPostBody(f *testing.F) {
	for _, seed := range []string{
		`{"feed":"fotball","title":"Kamp","body":"Søndag 18:00","url":"https://example.org","data":{"a":"b"},"tags":["fotball"]}`,
		`{"feed":"x","title":"t","body":"b","class":"emergency","publish_at":"2026-12-01T18:00:00Z","expires_at":"2026-12-02T18:00:00+01:00"}`,
		`{"feed":"x","title":"t","body":"b","data":{"from":"x","google.a":"y"}}`,
		`{"title":5}`, `[]`, `{}`, `{"feed":"x"} {}`, `{"titel":"x"}`, `{"title":"\u0000"}`, "",
	} {
		f.Add([]byte(seed))
	}
	s := testService(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r PostRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&r) != nil {
			return // the API's decoder holds its errors (api.FuzzDeviceBody)
		}
		for _, p := range []crier.Principal{muni, club} {
			if _, err := s.validatePost(p, r); err != nil {
				checkRejection(t, err)
			}
		}
	})
}

// FuzzCAPAlert feeds arbitrary bodies to the CAP reader and the making of
// an alert's post (all but the audience, which needs PostGIS): no panic,
// every rejection a clear client error, and every accepted alert a post
// within the bounds of any other, however long its texts or wide their
// characters. A long alert is shortened, never refused for its size: a
// refusal for the payload's size fails.
func FuzzCAPAlert(f *testing.F) {
	files, _ := filepath.Glob("../cap/testdata/*.xml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	long := strings.Repeat("Evakuer umiddelbart. ", 200)
	wide := strings.Repeat("警報", 900)
	for _, text := range []string{long, wide} {
		f.Add([]byte(capAlert(text)))
	}
	s := testService(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) // before the fixtures expire
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := cap.Parse(body)
		if err != nil {
			return // cap's own fuzz test holds its errors
		}
		for i := range a.Infos {
			post, err := s.capPost(muni, a, i)
			if err != nil {
				checkRejection(t, err)
				if strings.Contains(err.Error(), "payload would be") {
					t.Fatalf("an alert was refused for its size instead of shortened: %v", err)
				}
				continue
			}
			if _, err := s.validatePost(muni, PostRequest{Title: post.Title, Body: post.Body, URL: post.URL,
				Class: string(post.Class), ExternalID: post.ExternalID}); err != nil {
				t.Fatalf("the post of an accepted alert does not validate again: %v", err)
			}
		}
	})
}

// capAlert is a CAP alert whose description is the text.
func capAlert(text string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>test-1</identifier><sender>test@example.org</sender><sent>2026-11-27T12:00:00+01:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>no</language><category>Met</category><event>Flom</event><urgency>Immediate</urgency>
    <severity>Severe</severity><certainty>Observed</certainty><headline>Flom i sentrum</headline>
    <description>` + text + `</description>
    <area><areaDesc>Sentrum</areaDesc><circle>59.13,10.22 1</circle></area></info>
</alert>`
}

// TestLongAlertsAreShortened: an alert whose text outgrows the providers'
// payload is shortened to fit, in a narrow and in a wide script.
func TestLongAlertsAreShortened(t *testing.T) {
	t.Parallel()
	s := testService(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	for _, text := range []string{"Flom: " + strings.Repeat("€", 1990), strings.Repeat("警報", 900)} {
		a, err := cap.Parse([]byte(capAlert(text)))
		if err != nil {
			t.Fatal(err)
		}
		post, err := s.capPost(muni, a, 0)
		if err != nil {
			t.Fatalf("a long alert was refused: %v", err)
		}
		if len([]rune(post.Body)) >= len([]rune(text)) || !strings.HasSuffix(post.Body, "…") {
			t.Errorf("body of %d characters kept at %d, not shortened", len([]rune(text)), len([]rune(post.Body)))
		}
		if err := checkPayloadSize(post); err != nil {
			t.Errorf("shortened body still too large: %v", err)
		}
	}
}
