package publish

import (
	"context"
	"strings"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// TEMPORARY until the helpers' parts land.

func primaryLanguage(tag string) string {
	p, _, _ := strings.Cut(strings.ToLower(strings.ReplaceAll(tag, "_", "-")), "-")
	if p == "no" {
		return "nb"
	}
	return p
}

func checkAlertTranslations(post storage.Post, lang string, tr map[string]crier.Text) (string, crier.Translations, error) {
	return lang, tr, nil
}

func (s *Service) checkAlertArea(ctx context.Context, p crier.Principal, seg []byte) error {
	return nil
}
