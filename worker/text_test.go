package worker_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/worker"
)

// TestMessageLanguage: each device gets the post in its own language, and
// its data says which.
func TestMessageLanguage(t *testing.T) {
	t.Parallel()
	post := storage.Post{ID: 7, Title: "Vannet er stengt", Body: "Storgata i dag.", Class: crier.ClassOfficial,
		TenantLanguage: "nb", Data: map[string]string{"kind": "notice"},
		Translations: crier.Translations{"en": {Title: "Water is off", Body: "Storgata today."},
			"nn": {Title: "Vatnet er stengt", Body: "Storgata i dag."}}}
	// A CAP alert as publish stores it: the first info block (met.no's
	// "no") its own text, the others (en-GB) its translations.
	capPost := storage.Post{ID: 8, Title: "Kuling, gult nivå", Body: "Sørvest stiv kuling 15 m/s.", Language: "no",
		Class: crier.ClassEmergency, TenantLanguage: "nb",
		Translations: crier.Translations{"en-GB": {Title: "Gale, yellow level", Body: "Southwest gale force 7."}}}
	for _, tc := range []struct {
		name   string
		post   storage.Post
		locale string
		title  string
		lang   string
	}{
		{"en device", post, "en", "Water is off", "en"},
		{"en-GB device", post, "en-GB", "Water is off", "en"},
		{"nb device: the own text", post, "nb", "Vannet er stengt", "nb"},
		{"nn device", post, "nn-NO", "Vatnet er stengt", "nn"},
		{"de device: the tenant's default", post, "de", "Vannet er stengt", "nb"},
		{"CAP: en device", capPost, "en", "Gale, yellow level", "en-GB"},
		{"CAP: en-GB device", capPost, "en-GB", "Gale, yellow level", "en-GB"},
		{"CAP: nb device reads no", capPost, "nb", "Kuling, gult nivå", "no"},
		{"CAP: nn device reads no", capPost, "nn", "Kuling, gult nivå", "no"},
		{"CAP: sv device: the tenant's nb is the own no", capPost, "sv", "Kuling, gult nivå", "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := worker.Message(tc.post, 3, "tok", tc.locale)
			if m.Title != tc.title || m.Data[crier.DataLanguage] != tc.lang {
				t.Errorf("device %q got %q in %q, want %q in %q", tc.locale, m.Title, m.Data[crier.DataLanguage], tc.title, tc.lang)
			}
			if _, ok := m.Data[crier.DataExercise]; ok {
				t.Errorf("a real post is marked an exercise: %v", m.Data)
			}
		})
	}
	m := worker.Message(post, 3, "tok", "en")
	if diff := cmp.Diff(map[string]string{"kind": "notice", "lang": "en"}, m.Data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"kind": "notice"}, post.Data); diff != "" {
		t.Errorf("Message changed the post's own data, which every send shares (-want +got):\n%s", diff)
	}
	if m.PostID != 7 || m.DeviceID != 3 || m.Token != "tok" || m.Body != "Storgata today." || m.Class != crier.ClassOfficial {
		t.Errorf("message = %+v", m)
	}
}

// TestMessageExercise: an exercise's title is marked in the device's
// language, once, whatever language its text is in.
func TestMessageExercise(t *testing.T) {
	t.Parallel()
	post := storage.Post{Title: "Flom i sentrum", Body: "Øvelse.", Exercise: true, TenantLanguage: "nb",
		Translations: crier.Translations{"en": {Title: "Flood in the centre"}, "sv": {Title: "Översvämning"},
			"de": {Title: "Übungsplatz brennt"}, "fr": {Title: "Inondation"}, "da": {Title: "Oversvømmelse"},
			"es": {Title: "Inundación"}, "nn": {Title: "ØVELSE: Flaum i sentrum"}}}
	for locale, want := range map[string]string{
		"nb":    "ØVELSE: Flom i sentrum",
		"no-NO": "ØVELSE: Flom i sentrum",
		"en-GB": "EXERCISE: Flood in the centre",
		"sv":    "ÖVNING: Översvämning",
		"de":    "ÜBUNG: Übungsplatz brennt", // a word that starts like the mark is no mark
		"fr":    "EXERCICE: Inondation",
		"da":    "ØVELSE: Oversvømmelse",
		"es":    "EXERCISE: Inundación",
		"nn":    "ØVELSE: Flaum i sentrum", // marked already: not twice
		"":      "ØVELSE: Flom i sentrum",
		"pl":    "EXERCISE: Flom i sentrum", // the tenant's text, marked in English: no mark in Polish  // the tenant's language
	} {
		m := worker.Message(post, 1, "tok", locale)
		if m.Title != want {
			t.Errorf("device %q: title %q, want %q", locale, m.Title, want)
		}
		if m.Data[crier.DataExercise] != "true" {
			t.Errorf("device %q: data %v, want exercise=true", locale, m.Data)
		}
	}
}

// TestMessageExerciseForeignText: a device that reads the text in another
// language than its own still sees the mark in its own.
func TestMessageExerciseForeignText(t *testing.T) {
	t.Parallel()
	post := storage.Post{Title: "Flom i sentrum", Body: "Øvelse.", Language: "nb-NO", Exercise: true, TenantLanguage: "nb"}
	for locale, want := range map[string]string{"nb-NO": "ØVELSE: Flom i sentrum", "en-GB": "EXERCISE: Flom i sentrum",
		"de": "ÜBUNG: Flom i sentrum", "": "ØVELSE: Flom i sentrum"} {
		if m := worker.Message(post, 1, "tok", locale); m.Title != want || m.Data[crier.DataLanguage] != "nb-NO" {
			t.Errorf("device %q: %q in %q, want %q in nb-NO", locale, m.Title, m.Data[crier.DataLanguage], want)
		}
	}
}
