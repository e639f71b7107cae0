package crier_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier"
)

var (
	muni = crier.Principal{TenantID: 1, Kind: crier.KeyPublisher,
		Publisher: &crier.Publisher{ID: 1, TenantID: 1, Role: crier.RoleMunicipality}}
	club = crier.Principal{TenantID: 1, Kind: crier.KeyPublisher,
		Publisher: &crier.Publisher{ID: 2, TenantID: 1, Role: crier.RoleOrganisation}}
	app = crier.Principal{TenantID: 1, Kind: crier.KeyApp}
)

// code is the code of an authorisation answer, "" for yes.
func code(err error) crier.Code {
	if err == nil {
		return ""
	}
	return crier.ErrorCode(err)
}

func TestAuthorisation(t *testing.T) {
	t.Parallel()
	ownFeed := crier.Feed{TenantID: 1, PublisherID: 2, Slug: "fotball"}
	muniFeed := crier.Feed{TenantID: 1, PublisherID: 1, Slug: "viktig"}
	otherTenant := crier.Feed{TenantID: 9, PublisherID: 2, Slug: "fotball"}
	tests := []struct {
		name string
		got  error
		want crier.Code
	}{
		{"club posts to its feed", club.MayPublishTo(ownFeed), ""},
		{"club posts to the municipality's feed", club.MayPublishTo(muniFeed), crier.EFORBIDDEN},
		{"municipality posts to a club's feed", muni.MayPublishTo(ownFeed), ""},
		{"a feed of another tenant does not exist", muni.MayPublishTo(otherTenant), crier.EINVALID},
		{"the app posts", app.MayPublishTo(ownFeed), crier.EFORBIDDEN},
		{"club sends community", club.MaySend(crier.ClassCommunity), ""},
		{"club sends official", club.MaySend(crier.ClassOfficial), crier.EFORBIDDEN},
		{"club sends emergency", club.MaySend(crier.ClassEmergency), crier.EFORBIDDEN},
		{"municipality sends emergency", muni.MaySend(crier.ClassEmergency), ""},
		{"club uses all", club.MayUseSegmentNode("all"), crier.EFORBIDDEN},
		{"club uses device", club.MayUseSegmentNode("device"), crier.EFORBIDDEN},
		{"club uses near", club.MayUseSegmentNode("near"), ""},
		{"municipality uses all", muni.MayUseSegmentNode("all"), ""},
		{"club sends alerts", club.MaySendAlerts(), crier.EFORBIDDEN},
		{"municipality sends alerts", muni.MaySendAlerts(), ""},
		{"club imports areas", club.MayManageAreas(), crier.EFORBIDDEN},
	}
	for _, tt := range tests {
		if got := code(tt.got); got != tt.want {
			t.Errorf("%s: %q (%v), want %q", tt.name, got, tt.got, tt.want)
		}
	}
	if !muni.MaySee(2) || !club.MaySee(2) || club.MaySee(1) || app.MaySee(2) {
		t.Error("MaySee: the municipality sees every post, an organisation its own, the app none")
	}
	if muni.DefaultClass() != crier.ClassOfficial || club.DefaultClass() != crier.ClassCommunity {
		t.Error("DefaultClass: official for the municipality, community for an organisation")
	}
}

// TestCounts: an organisation sees counts under ten as "<10" and the
// others rounded to tens; the municipality sees them as they are. A count
// reads back as it was shown.
func TestCounts(t *testing.T) {
	t.Parallel()
	var got []string
	for _, p := range []crier.Principal{muni, club} {
		for _, n := range []int{0, 9, 10, 14, 15, 412} {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // as the API writes
			if err := enc.Encode(p.Count(n)); err != nil {
				t.Fatal(err)
			}
			got = append(got, strings.TrimSpace(b.String()))
			var back crier.Count
			if err := json.Unmarshal([]byte(b.String()), &back); err != nil || back != p.Count(n) {
				t.Errorf("%s read back as %+v (%v), want %+v", b.String(), back, err, p.Count(n))
			}
		}
	}
	want := []string{"0", "9", "10", "14", "15", "412", `"<10"`, `"<10"`, "10", "10", "20", "410"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestGeographyFloor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		p              crier.Principal
		radius, areaM2 float64
	}{
		{"organisation", club, 500, 500_000},
		{"municipality", muni, 0, 0},
		{"app", app, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, a := tt.p.GeographyFloor()
			if diff := cmp.Diff([2]float64{tt.radius, tt.areaM2}, [2]float64{r, a}); diff != "" {
				t.Errorf("GeographyFloor (-want +got):\n%s", diff)
			}
		})
	}
}
