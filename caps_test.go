package crier_test

import (
	"testing"

	"github.com/crier-push/crier"
)

// TestCapsRule: only an organisation's posts are capped, and not those in
// a mandatory feed nor alerts; the municipality sets every organisation's
// limits, an organisation reads its own.
func TestCapsRule(t *testing.T) {
	t.Parallel()
	feed := crier.Feed{TenantID: 1, PublisherID: 2, Slug: "fotball"}
	mandatory := crier.Feed{TenantID: 1, PublisherID: 2, Slug: "banen-stengt", Mandatory: true}
	capped := []struct {
		name string
		got  bool
		want bool
	}{
		{"a club's community post", club.PostCapped(feed, crier.ClassCommunity), true},
		{"a club's post in a mandatory feed", club.PostCapped(mandatory, crier.ClassCommunity), false},
		{"a club's alert", club.PostCapped(feed, crier.ClassEmergency), false},
		{"the municipality's post", muni.PostCapped(feed, crier.ClassOfficial), false},
		{"the municipality's community post", muni.PostCapped(feed, crier.ClassCommunity), false},
		{"the app", app.PostCapped(feed, crier.ClassCommunity), false},
	}
	for _, tt := range capped {
		if tt.got != tt.want {
			t.Errorf("%s capped: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	may := []struct {
		name string
		got  error
		want crier.Code
	}{
		{"the municipality sets limits", muni.MaySetLimits(), ""},
		{"a club sets limits", club.MaySetLimits(), crier.EFORBIDDEN},
		{"the app sets limits", app.MaySetLimits(), crier.EFORBIDDEN},
		{"the municipality reads a club's limits", muni.MayReadLimits(2), ""},
		{"a club reads its own limits", club.MayReadLimits(2), ""},
		{"a club reads another's limits", club.MayReadLimits(3), crier.EFORBIDDEN},
		{"the app reads limits", app.MayReadLimits(2), crier.EFORBIDDEN},
	}
	for _, tt := range may {
		if got := code(tt.got); got != tt.want {
			t.Errorf("%s: %q (%v), want %q", tt.name, got, tt.got, tt.want)
		}
	}
}
