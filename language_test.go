package crier_test

import (
	"testing"
	"unicode/utf8"

	"github.com/crier-push/crier"
)

func TestChooseText(t *testing.T) {
	t.Parallel()
	own := crier.Text{Title: "own", Body: "own body"}
	tx := func(s string) crier.Text { return crier.Text{Title: s, Body: s + " body"} }
	tr := crier.Translations{"en": tx("en"), "en-US": tx("en-US"), "nn": tx("nn"), "de-AT": tx("de-AT"), "sv": tx("sv")}
	for _, tc := range []struct {
		name          string
		locale        string
		ownLang       string
		tr            crier.Translations
		tenantDefault string
		want          string // the title chosen
		wantLang      string
	}{
		{"exact", "en-US", "nb", tr, "nb", "en-US", "en-US"},
		{"exact, case and underscore", "EN_us", "nb", tr, "nb", "en-US", "en-US"},
		{"exact own", "nb", "nb", tr, "nb", "own", "nb"},
		{"primary: the bare tag before a region", "en-GB", "nb", tr, "nb", "en", "en"},
		{"primary of a region-only translation", "de", "nb", tr, "nb", "de-AT", "de-AT"},
		{"primary of a device with script and region", "de-Latn-DE", "nb", tr, "nb", "de-AT", "de-AT"},
		{"own language's region", "nb-NO", "nb", tr, "nb", "own", "nb"},
		{"family: nn device, nn exists", "nn-NO", "nb", tr, "nb", "nn", "nn"},
		{"family: no device gets the own nb", "no", "nb", tr, "nb", "own", "nb"},
		{"family: nb device gets nn when nothing closer", "nb-NO", "en", crier.Translations{"nn": tx("nn"), "sv": tx("sv")}, "en", "nn", "nn"},
		{"family: nb device prefers no to nn", "nb", "en", crier.Translations{"nn": tx("nn"), "no": tx("no")}, "en", "no", "no"},
		{"family: no device prefers nb to nn", "no-NO", "en", crier.Translations{"nn": tx("nn"), "nb": tx("nb")}, "en", "nb", "nb"},
		{"family: nn device takes no or nb", "nn", "en", crier.Translations{"no": tx("no"), "de": tx("de")}, "en", "no", "no"},
		{"primary beats family", "nn-NO", "nb", crier.Translations{"nn-NO": tx("nn-NO"), "nn": tx("nn")}, "nb", "nn-NO", "nn-NO"},
		{"tenant default", "fr", "en", crier.Translations{"nb": tx("nb"), "de": tx("de")}, "nb", "nb", "nb"},
		{"tenant default by family", "fr", "en", crier.Translations{"nn": tx("nn"), "de": tx("de")}, "nb", "nn", "nn"},
		{"tenant default is the own text", "fr", "", tr, "nb", "own", "nb"},
		{"first: nothing related", "fr", "de", crier.Translations{"sv": tx("sv")}, "nb", "own", "de"},
		{"no translations", "en", "nb", nil, "nb", "own", "nb"},
		{"empty locale: tenant default", "", "en", crier.Translations{"nb": tx("nb")}, "nb", "nb", "nb"},
		{"odd locale", "-", "en", crier.Translations{"nb": tx("nb")}, "nb", "nb", "nb"},
		{"POSIX locale", "sv_SE.UTF-8", "nb", tr, "nb", "sv", "sv"},
		{"no tenant default, no own language", "fr", "", crier.Translations{"en": tx("en")}, "", "own", ""},
		{"a translation in the own language loses to the own text", "nb", "nb", crier.Translations{"nb": tx("nb")}, "nb", "own", "nb"},
		{"ties: shorter, then alphabetical", "en-GB", "nb", crier.Translations{"en-US": tx("en-US"), "en-AU": tx("en-AU")}, "nb", "en-AU", "en-AU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, lang := crier.ChooseText(tc.locale, own, tc.ownLang, tc.tr, tc.tenantDefault)
			if got.Title != tc.want || lang != tc.wantLang {
				t.Errorf("ChooseText(%q, own in %q, tenant %q) = %q in %q, want %q in %q",
					tc.locale, tc.ownLang, tc.tenantDefault, got.Title, lang, tc.want, tc.wantLang)
			}
		})
	}
}

// TestChooseTextStable: the choice does not depend on the map's iteration
// order (a tie broken by order would flip between runs).
func TestChooseTextStable(t *testing.T) {
	t.Parallel()
	tr := crier.Translations{}
	for _, l := range []string{"en-US", "en-AU", "en-CA", "en-NZ", "en-IE", "en-ZA", "nn", "no"} {
		tr[l] = crier.Text{Title: l}
	}
	for i := range 200 {
		if got, _ := crier.ChooseText("en-GB", crier.Text{Title: "own"}, "nb", tr, "nb"); got.Title != "en-AU" {
			t.Fatalf("run %d: chose %q, want en-AU", i, got.Title)
		}
		if got, _ := crier.ChooseText("nb", crier.Text{Title: "own"}, "de", tr, "de"); got.Title != "no" {
			t.Fatalf("run %d: chose %q, want no", i, got.Title)
		}
	}
}

func TestCanonicalLanguage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"nb", "nb", true},
		{"EN", "en", true},
		{"en_gb", "en-GB", true},
		{" en-GB ", "en-GB", true},
		{"zh-hant-tw", "zh-Hant-TW", true},
		{"es-419", "es-419", true},
		{"sr-Latn", "sr-Latn", true},
		{"de-CH-1996", "de-CH-1996", true},
		{"smj", "smj", true}, // Lule Sami
		{"", "", false},
		{"e", "", false},
		{"engl", "", false},
		{"1e", "", false},
		{"en-", "", false},
		{"en--GB", "", false},
		{"en-toolongsub", "", false},
		{"en-GB!", "", false},
		{"nb-NØ", "", false},
		{"en-" + string(make([]byte, 40)), "", false},
		{"en-aaaaaaaa-bbbbbbbb-cccccccc-dddddd", "", false}, // 36 bytes
		{"en-aaaaaaaa-bbbbbbbb-cccccccc-dddd", "en-aaaaaaaa-bbbbbbbb-cccccccc-dddd", true},
	} {
		got, ok := crier.CanonicalLanguage(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CanonicalLanguage(%q) = %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if _, err := crier.CheckLanguage("language", "english"); crier.AsError(err) == nil || crier.AsError(err).Field != "language" {
		t.Errorf("CheckLanguage(english) = %v, want an invalid-input error naming the field", err)
	}
}

func TestLanguageFamily(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"nb": "no", "nn-NO": "no", "NO": "no", "no_NO.UTF-8": "no", "nb@x": "no",
		"en-GB": "en", "se": "se", "": ""} {
		if got := crier.LanguageFamily(in); got != want {
			t.Errorf("LanguageFamily(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzChooseText: any locale and tags choose one of the texts there are,
// in a language that is the one it is stored under, and a canonical tag is
// a fixed point that is still valid.
func FuzzChooseText(f *testing.F) {
	f.Add("nn-NO", "nb", "en", "nb")
	f.Add("en_GB", "", "en-US", "nb")
	f.Add("", "de", "NO", "")
	f.Add("zh-Hant-TW", "zh-hant", "zh", "sv")
	f.Fuzz(func(t *testing.T, locale, ownLang, trLang, tenant string) {
		own := crier.Text{Title: "own"}
		tr := crier.Translations{trLang: {Title: "tr"}, "en": {Title: "en"}}
		got, lang := crier.ChooseText(locale, own, ownLang, tr, tenant)
		switch got.Title {
		case "own":
			if want := ownLang; want == "" && lang != tenant || want != "" && lang != want {
				t.Errorf("own text chosen in %q; own language %q, tenant %q", lang, ownLang, tenant)
			}
		case "tr", "en":
			if tr[lang] != got {
				t.Errorf("chose %q under %q, which holds %q", got.Title, lang, tr[lang].Title)
			}
		default:
			t.Fatalf("chose a text that does not exist: %+v", got)
		}
		if c, ok := crier.CanonicalLanguage(locale); ok {
			if !utf8.ValidString(c) || len(c) > crier.MaxLocaleLength {
				t.Errorf("canonical %q of %q is no tag", c, locale)
			}
			if c2, ok2 := crier.CanonicalLanguage(c); !ok2 || c2 != c {
				t.Errorf("CanonicalLanguage(%q) = %q, %v: not a fixed point", c, c2, ok2)
			}
			if !crier.ValidLocale(c) {
				t.Errorf("canonical %q is refused by ValidLocale", c)
			}
		}
	})
}

func TestMarkExercise(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ title, lang, want string }{
		{"Flom i sentrum", "nb", "ØVELSE: Flom i sentrum"},
		{"Flaum", "nn-NO", "ØVELSE: Flaum"},
		{"Flom", "no", "ØVELSE: Flom"},
		{"Oversvømmelse", "da", "ØVELSE: Oversvømmelse"},
		{"Översvämning", "sv-SE", "ÖVNING: Översvämning"},
		{"Hochwasser", "de-AT", "ÜBUNG: Hochwasser"},
		{"Inondation", "fr", "EXERCICE: Inondation"},
		{"Flood", "en-GB", "EXERCISE: Flood"},
		{"Inundación", "es", "EXERCISE: Inundación"},
		{"Flom", "", "EXERCISE: Flom"},
		{"ØVELSE: Flom", "nb", "ØVELSE: Flom"},                    // marked already
		{"Øvelse - Flom", "nb", "Øvelse - Flom"},                  // in any case
		{"Übungsplatz brennt", "de", "ÜBUNG: Übungsplatz brennt"}, // a word that starts like the mark
		{"ØV", "nb", "ØVELSE: ØV"},
	} {
		if got := crier.MarkExercise(tc.title, tc.lang); got != tc.want {
			t.Errorf("MarkExercise(%q, %q) = %q, want %q", tc.title, tc.lang, got, tc.want)
		}
	}
}
