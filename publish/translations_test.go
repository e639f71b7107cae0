package publish

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/apns"
	"github.com/crier-push/crier/providers/fcm"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/worker"
)

// TestPostTranslationsRefused: a post's language and translations are
// checked like its own text, each language's payload against the 4 KB
// limit, and every refusal names its field.
func TestPostTranslationsRefused(t *testing.T) {
	t.Parallel()
	s := testService(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	en := crier.Text{Title: "Match moved", Body: "Sunday's match starts at 18:00."}
	many := map[string]crier.Text{}
	for _, l := range []string{"en", "sv", "da", "de", "fr", "es", "it", "pl", "lt", "uk", "ar"} {
		many[l] = en
	}
	for _, tc := range []struct {
		name  string
		lang  string
		tr    map[string]crier.Text
		field string
	}{
		{"language that is no tag", "norsk", nil, "language"},
		{"key that is no tag", "", map[string]crier.Text{"english": en}, "translations"},
		{"key with a NUL", "", map[string]crier.Text{"en\x00": en}, "translations"},
		{"eleven languages", "", many, "translations"},
		{"no title", "", map[string]crier.Text{"en": {Body: "b"}}, "translations.en.title"},
		{"no body", "", map[string]crier.Text{"en": {Title: "t"}}, "translations.en.body"},
		{"title too long", "", map[string]crier.Text{"en": {Title: strings.Repeat("å", MaxTitle+1), Body: "b"}}, "translations.en.title"},
		{"body too long", "", map[string]crier.Text{"en": {Title: "t", Body: strings.Repeat("x", MaxBody+1)}}, "translations.en.body"},
		{"NUL in a title", "", map[string]crier.Text{"sv": {Title: "a\x00b", Body: "b"}}, "translations.sv.title"},
		{"invalid UTF-8 in a body", "", map[string]crier.Text{"sv": {Title: "t", Body: "a\xffb"}}, "translations.sv.body"},
		{"the own language again", "nb", map[string]crier.Text{"NB": en}, "translations.NB"},
		{"one language twice", "", map[string]crier.Text{"en-GB": en, "en_gb": en}, "translations.en_gb"},
		// 2000 four-byte characters: within MaxBody, not within 4 KB. The
		// own text is small, so only this language's payload is over.
		{"payload over 4 KB in one language", "nb", map[string]crier.Text{"en": en, "uk": {Title: "t", Body: strings.Repeat("😀", MaxBody)}},
			"translations.uk.body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := s.validatePost(muni, PostRequest{Feed: "f", Title: "Kampstart flyttet", Body: "Søndagens kamp starter 18:00.",
				Language: tc.lang, Translations: tc.tr})
			if e := crier.AsError(err); e == nil || e.Code != crier.EINVALID || e.Field != tc.field {
				t.Fatalf("validatePost: %v; want invalid_request naming %q", err, tc.field)
			}
		})
	}
}

// TestPayloadPerLanguage: a payload is sized as each device gets it, with
// its language in the data and an exercise's mark: a text that fits on its
// own may not fit so.
func TestPayloadPerLanguage(t *testing.T) {
	t.Parallel()
	post := storage.Post{Title: "Flom", Class: crier.ClassEmergency}
	// The largest body whose payload fits in English.
	lo, hi := 1, 4096
	for lo < hi {
		mid := (lo + hi + 1) / 2
		post.Body = strings.Repeat("x", mid)
		if checkPayloadIn(post, "en", "body") == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	post.Body = strings.Repeat("x", lo)
	if err := checkPayloadSize(post); err != nil {
		t.Fatalf("the text alone does not fit: %v", err)
	}
	if err := checkPayloadIn(post, "en-GB", "body"); err == nil {
		t.Errorf("a body that fits as en fits as en-GB, whose tag is 3 bytes longer in the payload's data")
	}
	post.Exercise = true
	if err := checkPayloadIn(post, "en", "body"); err == nil {
		t.Errorf("a body that just fits fits as an exercise too, whose title is marked")
	}
	post.Language = "en"
	m := worker.Message(post, 1, "x", "en")
	if !strings.HasPrefix(m.Title, "EXERCISE") || m.Data[crier.DataLanguage] != "en" {
		t.Fatalf("the worker's message is %q with data %v: the sizing above sized something else", m.Title, m.Data)
	}
}

// TestAcceptedFitsEveryDevice: an exercise's text that just fits is
// within 4 KB for a device of any language, which marks it in its own.
func TestAcceptedFitsEveryDevice(t *testing.T) {
	t.Parallel()
	post := storage.Post{ID: 1 << 53, Title: "Flom", Class: crier.ClassEmergency, Exercise: true, Language: "nb", TenantLanguage: "nb"}
	lo, hi := 1, 4096
	for lo < hi {
		mid := (lo + hi + 1) / 2
		post.Body = strings.Repeat("x", mid)
		if checkPayloadIn(post, "nb", "body") == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	post.Body = strings.Repeat("x", lo)
	for _, locale := range []string{"nb", "sv", "de", "fr", "en", "es", ""} {
		m := worker.Message(post, 1<<53, "x", locale)
		fm, _ := json.Marshal(fcm.Build(m))
		an, _ := json.Marshal(apns.Build(m, "topic").Payload)
		if len(fm) > MaxPayload || len(an) > MaxPayload {
			t.Errorf("a %q device gets %q: payloads of %d (FCM) and %d (APNs) bytes, over %d", locale, m.Title, len(fm), len(an), MaxPayload)
		}
	}
}

// TestPushInIsWorkersMessage: the payload publish sizes for a language is
// the one the worker sends a device of that language, ids aside.
func TestPushInIsWorkersMessage(t *testing.T) {
	t.Parallel()
	expires := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	post := storage.Post{ID: 1 << 53, Title: "Flom", Body: "Elva går over.", URL: "https://example.org", Class: crier.ClassEmergency,
		Data: map[string]string{"k": "v"}, CollapseKey: "incident-1", ExpiresAt: &expires, TenantLanguage: "nb",
		Translations: crier.Translations{"en-GB": {Title: "Flood", Body: "The river floods."}}}
	for _, exercise := range []bool{false, true} {
		post.Exercise = exercise
		for _, tc := range []struct {
			lang   string
			text   crier.Text
			device string
		}{
			{"nb", crier.Text{Title: post.Title, Body: post.Body}, "nb"},
			{"nb", crier.Text{Title: post.Title, Body: post.Body}, "fr"}, // the tenant's text, marked in French
			{"en-GB", post.Translations["en-GB"], "en-GB"},
			{"en-GB", post.Translations["en-GB"], "en"},
		} {
			want := worker.Message(post, 1<<53, "x", tc.device)
			p := post
			p.Title, p.Body = tc.text.Title, tc.text.Body
			if diff := cmp.Diff(want, pushIn(p, tc.lang, tc.device)); diff != "" {
				t.Errorf("exercise %v, %s device: sized message differs from the worker's (-worker +sized):\n%s", exercise, tc.device, diff)
			}
		}
	}
	// Each text is sized with the widest mark, as a device of any language
	// may read it.
	for _, l := range []string{"nb", "nn", "no", "da", "sv", "de", "fr", "es", "fi", "uk"} {
		if len(crier.ExerciseMark(l)) > len(crier.ExerciseMark(widestMarkLocale)) {
			t.Errorf("the exercise mark in %s, %q, is wider than %q", l, crier.ExerciseMark(l), crier.ExerciseMark(widestMarkLocale))
		}
	}
}

// TestPostTranslationsStored: valid translations come back in canonical
// tags, are stored with the post, and each device gets its language.
func TestPostTranslationsStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.DB(t)
	rds := testenv.StartRedis(t)
	client := asynq.NewClient(rds.AsynqOpt())
	t.Cleanup(func() { client.Close() })
	s, err := New(db, client, Config{})
	if err != nil {
		t.Fatal(err)
	}
	tn := testenv.Tenant(t, db, "sandefjord", "Sandefjord kommune", "Europe/Oslo")
	pub := testenv.Publisher(t, db, tn.ID, "kommunen", "Sandefjord kommune", crier.RoleMunicipality)
	testenv.Feed(t, db, tn.ID, pub.ID, "nyheter", "Nyheter", false)
	p := crier.Principal{TenantID: tn.ID, Kind: crier.KeyPublisher, Publisher: &pub}

	c, err := s.CreatePost(ctx, p, PostRequest{Feed: "nyheter", Title: "Vannet er stengt", Body: "Storgata i dag.", Language: "NB",
		Translations: map[string]crier.Text{"en_gb": {Title: "Water is off", Body: "Storgata today."},
			"uk": {Title: "Воду відключено", Body: "Сторгата сьогодні."}}})
	if err != nil {
		t.Fatalf("CreatePost: %v", err)
	}
	got, err := db.PostByID(ctx, c.Post.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := crier.Translations{"en-GB": {Title: "Water is off", Body: "Storgata today."},
		"uk": {Title: "Воду відключено", Body: "Сторгата сьогодні."}}
	if got.Language != "nb" {
		t.Errorf("language %q stored, want nb", got.Language)
	}
	if diff := cmp.Diff(want, got.Translations); diff != "" {
		t.Errorf("translations stored (-want +got):\n%s", diff)
	}
	for locale, title := range map[string]string{"en": "Water is off", "uk-UA": "Воду відключено", "nn": "Vannet er stengt", "de": "Vannet er stengt"} {
		if m := worker.Message(got, 1, "x", locale); m.Title != title {
			t.Errorf("a %s device gets %q, want %q", locale, m.Title, title)
		}
	}

	// A post without translations stores none.
	c, err = s.CreatePost(ctx, p, PostRequest{Feed: "nyheter", Title: "Bare norsk", Body: "Kun på norsk."})
	if err != nil {
		t.Fatalf("CreatePost: %v", err)
	}
	if got, err = db.PostByID(ctx, c.Post.ID); err != nil || got.Language != "" || got.Translations != nil {
		t.Errorf("post without translations stored language %q and %v (%v)", got.Language, got.Translations, err)
	}
}

// TestCAPTexts: met.no's gale warning (info blocks no and en-GB) is one
// post in Norwegian with an English translation, reaching an en device in
// English and a nb one in Norwegian.
func TestCAPTexts(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../cap/testdata/no-metno-gale-marine-polygon-emma-2info-no-en.cap.xml")
	if err != nil {
		t.Fatal(err)
	}
	a := parseCAP(t, string(raw))
	post := storage.Post{Class: crier.ClassEmergency, TenantLanguage: "nb"}
	warnings, err := capTexts(a, &post)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("capTexts: %v, warnings %q", err, warnings)
	}
	if post.Language != "no" || len(post.Translations) != 1 || post.Translations["en-GB"].Title == "" {
		t.Fatalf("post in %q with translations %v; want no, and en-GB", post.Language, post.Translations)
	}
	for locale, prefix := range map[string]string{"en": "Gale, yellow level", "en-US": "Gale, yellow level",
		"nb": "Kuling, gult nivå", "nn-NO": "Kuling, gult nivå", "de": "Kuling, gult nivå"} {
		if m := worker.Message(post, 1, "x", locale); !strings.HasPrefix(m.Title, prefix) {
			t.Errorf("a %s device gets %q, want it to start %q", locale, m.Title, prefix)
		}
	}
}

// TestCAPTextsBlocks: every language's body is shortened to fit its own
// payload; blocks that cannot be a language of their own are skipped with a
// warning, and the first block's text is the post's own.
func TestCAPTextsBlocks(t *testing.T) {
	t.Parallel()
	wide := strings.Repeat("警報", 900)
	doc := capDoc{Status: "Exercise", Infos: []capInfo{
		{Language: "no", Event: "Flom", Headline: "Flom i sentrum", Description: "Elva går over sine bredder."},
		{Language: "zh-hant", Event: "洪水", Description: wide},
		{Language: "english", Event: "Flood", Description: "The river floods."},
		{Language: "NO", Event: "Flom igjen", Description: "Andre blokk på norsk."},
		{Language: "en_GB", Event: "Flood", Headline: "Flood in the centre", Description: "The river floods."},
	}}
	a := parseCAP(t, doc.xml())
	post := storage.Post{Class: crier.ClassEmergency, Exercise: true, URL: "https://example.org/flom"}
	warnings, err := capTexts(a, &post)
	if err != nil {
		t.Fatal(err)
	}
	if post.Language != "no" || post.Title != "Flom i sentrum" {
		t.Errorf("own text %q in %q; want the first block's", post.Title, post.Language)
	}
	if diff := cmp.Diff([]string{"en-GB", "zh-Hant"}, slices.Sorted(maps.Keys(post.Translations))); diff != "" {
		t.Errorf("translations (-want +got):\n%s", diff)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "alert.info[2].language") || !strings.Contains(warnings[1], "alert.info[3].language") {
		t.Errorf("warnings %q; want info[2] (no tag) and info[3] (no again)", warnings)
	}
	zh := post.Translations["zh-Hant"]
	if len(zh.Body) >= len(wide) {
		t.Errorf("the wide body was not shortened")
	}
	p := post
	p.Title, p.Body = zh.Title, zh.Body
	if err := checkPayloadIn(p, "zh-Hant", "body"); err != nil {
		t.Errorf("the shortened zh-Hant text does not fit as sent: %v", err)
	}
	if m := worker.Message(post, 1, "x", "zh-TW"); !strings.HasPrefix(m.Title, "EXERCISE: 洪水") {
		t.Errorf("a zh-TW device gets %q", m.Title)
	}

	// The first block's tag is none: its text is the tenant's language.
	doc.Infos = []capInfo{{Language: "norsk", Event: "Flom", Description: "Elva går over."}, doc.Infos[4]}
	post = storage.Post{Class: crier.ClassEmergency}
	if warnings, err = capTexts(parseCAP(t, doc.xml()), &post); err != nil {
		t.Fatal(err)
	}
	if post.Language != "" || post.Translations["en-GB"].Title != "Flood in the centre" || len(warnings) != 1 {
		t.Errorf("post in %q, translations %v, warnings %q; want the tenant's language and en-GB", post.Language, post.Translations, warnings)
	}
}
