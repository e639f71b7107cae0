package publish

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/tasks"
)

// capDoc is a small CAP alert to vary one element at a time: Actual,
// Public, an Alert unless said otherwise.
type capDoc struct {
	Status, MsgType, Scope string
	// Extra is elements of the alert after its scope: restriction,
	// addresses, references.
	Extra string
	Infos []capInfo
}

// capInfo is one info block; an empty field leaves its element out.
type capInfo struct {
	Language, Event, Headline, Description, Instruction string
}

func (d capDoc) xml() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>cap-test-1</identifier><sender>beredskap@example.org</sender><sent>2026-11-27T12:00:00+01:00</sent>
  <status>%s</status><msgType>%s</msgType><scope>%s</scope>%s
`, cmpOr(d.Status, "Actual"), cmpOr(d.MsgType, "Alert"), cmpOr(d.Scope, "Public"), d.Extra)
	for _, in := range d.Infos {
		b.WriteString("  <info>")
		if in.Language != "" {
			fmt.Fprintf(&b, "<language>%s</language>", in.Language)
		}
		fmt.Fprintf(&b, "<category>Met</category><event>%s</event>", in.Event)
		b.WriteString("<urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>")
		for _, el := range []struct{ name, v string }{
			{"headline", in.Headline}, {"description", in.Description}, {"instruction", in.Instruction},
		} {
			if el.v != "" {
				fmt.Fprintf(&b, "<%s>%s</%s>", el.name, el.v, el.name)
			}
		}
		b.WriteString("<area><areaDesc>Sentrum</areaDesc><circle>59.13,10.22 0.5</circle></area></info>\n")
	}
	b.WriteString("</alert>")
	return b.String()
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func parseCAP(t *testing.T, doc string) *cap.Alert {
	t.Helper()
	a, err := cap.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("cap.Parse: %v\n%s", err, doc)
	}
	return a
}

// TestCAPPostFallbacks: the post of an info block takes its title from the
// headline, or the event when there is none; its body from the
// description and the instruction, or the event when there are neither.
func TestCAPPostFallbacks(t *testing.T) {
	t.Parallel()
	s := testService(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	type text struct{ Title, Body string }
	for _, tc := range []struct {
		name string
		info capInfo
		want text
	}{
		{"all of it", capInfo{Event: "Flom", Headline: "Flom i sentrum", Description: "Elva går over sine bredder.",
			Instruction: "Hold deg unna elvebredden."},
			text{"Flom i sentrum", "Elva går over sine bredder.\n\nHold deg unna elvebredden."}},
		{"no headline: the event is the title", capInfo{Event: "Flom", Description: "Elva går over sine bredder."},
			text{"Flom", "Elva går over sine bredder."}},
		{"only an instruction", capInfo{Event: "Flom", Headline: "Flom i sentrum", Instruction: "Hold deg unna."},
			text{"Flom i sentrum", "Hold deg unna."}},
		{"no headline, no text: the event is both", capInfo{Event: "Kraftig vind"}, text{"Kraftig vind", "Kraftig vind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := parseCAP(t, capDoc{Infos: []capInfo{tc.info}}.xml())
			post, err := s.capPost(muni, a, 0)
			if err != nil {
				t.Fatalf("capPost: %v", err)
			}
			if diff := cmp.Diff(tc.want, text{post.Title, post.Body}); diff != "" {
				t.Errorf("post of %+v (-want +got):\n%s", tc.info, diff)
			}
			if post.Class != crier.ClassEmergency {
				t.Errorf("class %s, want emergency", post.Class)
			}
		})
	}
}

// capRefusals are alerts crier must not send to residents, and the CAP
// element each refusal names.
var capRefusals = []struct {
	name  string
	doc   capDoc
	field string
	says  string // the refusal's message names the value
}{
	{"Restricted", capDoc{Scope: "Restricted", Extra: "<restriction>Kun for nødetatene</restriction>"}, "alert.scope", "Restricted"},
	{"Private", capDoc{Scope: "Private", Extra: "<addresses>ops@example.org</addresses>"}, "alert.scope", "Private"},
	{"Draft", capDoc{Status: "Draft"}, "alert.status", "Draft"},
	{"System", capDoc{Status: "System"}, "alert.status", "System"},
	{"Error", capDoc{MsgType: "Error", Extra: "<references>beredskap@example.org,cap-test-0,2026-11-27T11:00:00+01:00</references>"},
		"alert.msgType", "Error"},
	{"Ack", capDoc{MsgType: "Ack", Extra: "<references>beredskap@example.org,cap-test-0,2026-11-27T11:00:00+01:00</references>"},
		"alert.msgType", "Ack"},
	{"a Cancel naming nothing", capDoc{MsgType: "Cancel"}, "alert.references", "Cancel"},
}

func oneInfo(d capDoc) capDoc {
	d.Infos = []capInfo{{Language: "no", Event: "Flom", Headline: "Flom i sentrum", Description: "Evakuer."}}
	return d
}

// TestCAPSendable: only Public messages of type Alert, Update or Cancel
// (naming what it cancels) are sent: Actual ones to residents, Exercise and
// Test ones to test devices; every other is refused naming its CAP element.
func TestCAPSendable(t *testing.T) {
	t.Parallel()
	for _, tc := range capRefusals {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sendable(parseCAP(t, oneInfo(tc.doc).xml()))
			checkRejection(t, err)
			e := crier.AsError(err)
			if e.Code != crier.EINVALID || e.Field != tc.field || !strings.Contains(e.Message, tc.says) {
				t.Errorf("refusal %q (%s) naming %q; want invalid_request naming %q and saying %q",
					e.Message, e.Code, e.Field, tc.field, tc.says)
			}
		})
	}
	for _, ok := range []capDoc{
		{}, {MsgType: "Update", Extra: "<references>beredskap@example.org,cap-test-0,2026-11-27T11:00:00+01:00</references>"},
		{MsgType: "Cancel", Extra: "<references>beredskap@example.org,cap-test-0,2026-11-27T11:00:00+01:00</references>"},
		{MsgType: "Update"},                    // an Update naming nothing is a new alert
		{Status: "Exercise"}, {Status: "Test"}, // for the test devices
	} {
		if err := sendable(parseCAP(t, oneInfo(ok).xml())); err != nil {
			t.Errorf("%s %s %s refused: %v", cmpOr(ok.Status, "Actual"), cmpOr(ok.Scope, "Public"), cmpOr(ok.MsgType, "Alert"), err)
		}
	}
}

// TestCreateCAPAlertFallbacksAndRefusals runs CAP alerts through
// CreateCAPAlert on a real database and Redis: an alert in neither
// Norwegian nor English has its first info block as its own text, titled
// by its event when it has no headline, the other as a translation, as an
// emergency dispatch; the refusals make no
// post and queue nothing.
func TestCreateCAPAlertFallbacksAndRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.DB(t)
	rds := testenv.StartRedis(t)
	client := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { client.Close() })
	insp := asynq.NewInspector(rds.AsynqOpt())
	t.Cleanup(func() { insp.Close() })
	s, err := New(db, client, Config{Now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	tn := testenv.Tenant(t, db, "sandefjord", "Sandefjord kommune", "Europe/Oslo")
	pub := testenv.Publisher(t, db, tn.ID, "kommunen", "Sandefjord kommune", crier.RoleMunicipality)
	testenv.Feed(t, db, tn.ID, pub.ID, "beredskap", "Beredskap", false)
	p := crier.Principal{TenantID: tn.ID, Kind: crier.KeyPublisher, Publisher: &pub}
	posts := func() int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM posts WHERE tenant_id = $1`, tn.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	queued := func() int {
		t.Helper()
		n := 0
		for q := range tasks.Queues() {
			if info, err := insp.GetQueueInfo(q); err == nil {
				n += info.Size
			}
		}
		return n
	}

	for _, tc := range capRefusals {
		_, err := s.CreateCAPAlert(ctx, p, "beredskap", []byte(oneInfo(tc.doc).xml()))
		if e := crier.AsError(err); e == nil || e.Code != crier.EINVALID || e.Field != tc.field {
			t.Errorf("%s: CreateCAPAlert: %v; want invalid_request naming %q", tc.name, err, tc.field)
		}
	}
	if n, q := posts(), queued(); n != 0 || q != 0 {
		t.Fatalf("the refused alerts made %d posts and queued %d tasks; want none", n, q)
	}

	doc := capDoc{Infos: []capInfo{
		{Language: "de-DE", Event: "Hochwasser", Description: "Der Fluss tritt über die Ufer."},
		{Language: "fr-FR", Event: "Inondation", Headline: "Inondation au centre", Description: "La rivière déborde."},
	}}
	res, err := s.CreateCAPAlert(ctx, p, "beredskap", []byte(doc.xml()))
	if err != nil {
		t.Fatalf("CreateCAPAlert: %v", err)
	}
	type sent struct {
		Language    string
		Title, Body string
		Class       crier.Class
		New         bool
		ExternalID  string
	}
	want := sent{Language: "de-DE", Title: "Hochwasser", Body: "Der Fluss tritt über die Ufer.", Class: crier.ClassEmergency, New: true,
		ExternalID: "cap:beredskap@example.org,cap-test-1,2026-11-27T11:00:00Z"}
	got := sent{res.Post.Language, res.Post.Title, res.Post.Body, res.Post.Class, res.New, res.Post.ExternalID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the alert in German and French (-want +got):\n%s", diff)
	}
	stored, err := db.Post(ctx, tn.ID, res.Post.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Title != want.Title || stored.Body != want.Body {
		t.Errorf("stored post titled %q with body %q; want %q, %q", stored.Title, stored.Body, want.Title, want.Body)
	}
	if fr := stored.Translations["fr-FR"]; fr.Title != "Inondation au centre" || fr.Body != "La rivière déborde." || len(stored.Translations) != 1 {
		t.Errorf("stored translations %+v; want the French block as fr-FR", stored.Translations)
	}
	if info, err := insp.GetQueueInfo(tasks.QueueEmergency); err != nil || info.Size != 1 {
		t.Errorf("emergency queue after the alert: %+v, %v; want its dispatch queued", info, err)
	}
}
