package publish

import (
	"fmt"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// allClearTexts is the all-clear a cancel without text of its own says, by
// language: a title, and a body that names the alert it ends.
var allClearTexts = map[string]struct{ title, body string }{
	"nb": {"Faren er over", "Varselet «%s» er opphevet."},
	"no": {"Faren er over", "Varselet «%s» er opphevet."},
	"nn": {"Faren er over", "Varselet «%s» er oppheva."},
	"en": {"All clear", "The alert “%s” has been cancelled."},
	"sv": {"Faran är över", "Varningen ”%s” har hävts."},
	"da": {"Faren er overstået", "Varslet »%s« er ophævet."},
	"de": {"Entwarnung", "Die Warnung „%s“ wurde aufgehoben."},
}

// allClear is the default text of a cancel: in the language of each text
// the incident's first message has, and in the tenant's, each naming the
// alert by its title in that language.
func (s *Service) allClear(p crier.Principal, inc incident, externalID string) (storage.Post, error) {
	first := inc.messages[0]
	lang := first.Language
	if lang == "" {
		lang = first.TenantLanguage
	}
	text := func(lang, title string) (crier.Text, bool) {
		t, ok := allClearTexts[crier.PrimaryLanguage(lang)]
		if !ok {
			return crier.Text{}, false
		}
		return crier.Text{Title: t.title, Body: truncate(fmt.Sprintf(t.body, title), MaxBody)}, true
	}
	own, ok := text(lang, first.Title)
	if !ok {
		own, _ = text("en", first.Title)
		lang = "en"
	}
	tr := crier.Translations{}
	for l, t := range first.Translations {
		if x, ok := text(l, t.Title); ok {
			tr[l] = x
		}
	}
	// The tenant's language and English, naming the alert by its own title,
	// for devices of a language the alert did not have.
	for _, l := range []string{first.TenantLanguage, "en"} {
		if _, ok := tr[l]; !ok && l != lang && l != "" {
			if x, ok := text(l, first.Title); ok {
				tr[l] = x
			}
		}
	}
	delete(tr, lang)
	if len(tr) == 0 {
		tr = nil
	}
	post, err := s.validatePost(p, PostRequest{Title: own.Title, Body: own.Body, ExternalID: externalID,
		Class: string(crier.ClassEmergency)})
	if err != nil {
		return storage.Post{}, err
	}
	post.Language, post.Translations = lang, tr
	return post, nil
}
