package publish

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// Bounds on the catalogue of interests.
const (
	MaxInterests    = 200
	MaxInterestName = 100
)

// Interest is an entry of the tenant's catalogue as the API shows and takes
// it.
type Interest struct {
	Slug  string            `json:"slug"`
	Names map[string]string `json:"names"`
	// Granted, shown to an organisation, says whether it may tag posts
	// with the interest.
	Granted *bool `json:"granted,omitempty"`
}

// Interests lists the tenant's catalogue: what the app lets residents
// choose and what posts are tagged with. An organisation sees which ones
// it was granted.
func (s *Service) Interests(ctx context.Context, p crier.Principal) ([]Interest, error) {
	list, err := s.db.Interests(ctx, p.TenantID)
	if err != nil {
		return nil, err
	}
	var granted map[string]bool
	if p.IsOrganisation() {
		g, err := s.db.GrantedInterests(ctx, p.TenantID, p.PublisherID())
		if err != nil {
			return nil, err
		}
		granted = map[string]bool{}
		for _, sl := range g {
			granted[sl] = true
		}
	}
	out := make([]Interest, 0, len(list))
	for _, it := range list {
		i := Interest{Slug: it.Slug, Names: it.Names}
		if granted != nil {
			g := granted[it.Slug]
			i.Granted = &g
		}
		out = append(out, i)
	}
	return out, nil
}

// PutInterests replaces the tenant's catalogue (the municipality's).
func (s *Service) PutInterests(ctx context.Context, p crier.Principal, in []Interest) error {
	if err := p.MayManageInterests(); err != nil {
		return err
	}
	if len(in) > MaxInterests {
		return crier.Invalid("interests", "at most %d interests", MaxInterests)
	}
	seen := map[string]bool{}
	list := make([]storage.Interest, 0, len(in))
	for i, it := range in {
		f := fmt.Sprintf("interests[%d]", i)
		if !crier.ValidTag(it.Slug) {
			return crier.Invalid(f+".slug", "must be a lowercase tag of at most %d characters (letters, digits, - and _), not %q", crier.MaxTagLength, it.Slug)
		}
		if seen[it.Slug] {
			return crier.Invalid(f+".slug", "%q is listed twice", it.Slug)
		}
		seen[it.Slug] = true
		for lang, name := range it.Names {
			nf := f + ".names." + lang
			if !crier.ValidLocale(lang) {
				return crier.Invalid(nf, "must be keyed by a language tag such as nb or en")
			}
			if name == "" || utf8.RuneCountInString(name) > MaxInterestName {
				return crier.Invalid(nf, "must be 1 to %d characters", MaxInterestName)
			}
			if err := crier.CheckText(nf, name); err != nil {
				return err
			}
		}
		list = append(list, storage.Interest{Slug: it.Slug, Names: it.Names})
	}
	return s.db.PutInterests(ctx, p.TenantID, list)
}

// GrantInterests replaces the interests an organisation may tag its posts
// with (the municipality's to grant).
func (s *Service) GrantInterests(ctx context.Context, p crier.Principal, publisher string, interests []string) error {
	if err := p.MayManageInterests(); err != nil {
		return err
	}
	pub, err := s.db.PublisherBySlug(ctx, p.TenantID, publisher)
	if err != nil {
		return err
	}
	if pub.Role == crier.RoleMunicipality {
		return crier.Invalid("publisher", "the municipality may tag posts with every interest of its catalogue")
	}
	if err := crier.CheckTags("interests", interests); err != nil {
		return err
	}
	if len(interests) > MaxInterests {
		return crier.Invalid("interests", "at most %d interests", MaxInterests)
	}
	missing, err := s.db.GrantInterests(ctx, p.TenantID, pub.ID, crier.Distinct(interests))
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return crier.Invalid("interests", "not in the tenant's catalogue: %s", strings.Join(missing, ", "))
	}
	return nil
}
