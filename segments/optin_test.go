package segments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
)

// orgSegment is a random segment an organisation may send: the grammar
// without all and device (refused for organisations), whose place holds
// the attacks that once reached everyone: not of something nobody has, and
// the union of the platforms.
func (w *world) orgSegment(r *rand.Rand, depth int) map[string]any {
	s := w.randomSegment(r, depth)
	if _, ok := s["all"]; ok {
		return map[string]any{"not": map[string]any{"interest": "zzz"}}
	}
	if _, ok := s["device"]; ok {
		return map[string]any{"or": []any{map[string]any{"platform": "android"}, map[string]any{"platform": "ios"}}}
	}
	for _, k := range []string{"and", "or"} {
		if cs, ok := s[k].([]any); ok {
			for i := range cs {
				if _, leaf := cs[i].(map[string]any)["all"]; leaf {
					cs[i] = w.orgSegment(r, depth+1)
				}
			}
		}
	}
	return s
}

// TestOrganisationsStayInsideTheirOptIns: whatever segment and target an
// organisation sends, the audience the dispatcher and the preview compile
// (segments.Audience) holds only devices that follow the post's feed or
// have an interest in one of its tags, held to the Go evaluator, and is
// exactly the opt-ins narrowed by the segment and the target.
func TestOrganisationsStayInsideTheirOptIns(t *testing.T) {
	t.Parallel()
	const nSegments, nDevices = 600, 1500
	r := rand.New(rand.NewPCG(*seed, 3))
	w := newWorld(t, r, nDevices)
	org := crier.Principal{TenantID: w.tenant, Kind: crier.KeyPublisher,
		Publisher: &crier.Publisher{ID: 2, TenantID: w.tenant, Slug: "klubben", Role: crier.RoleOrganisation}}
	opt := segments.Options{Principal: &org, OwnFeeds: feedSlugs}

	type attempt struct {
		post    segments.Post
		segment []byte
		target  []byte
	}
	named := []string{`{"not": {"interest": "zzz"}}`, `{"or": [{"platform": "android"}, {"platform": "ios"}]}`,
		`{"not": {"feed": "fotball"}}`, `{"or": [{"not": {"locale": "xx"}}, {"platform": "ios"}]}`}
	var cases []attempt
	for i := 0; len(cases) < nSegments; i++ {
		a := attempt{post: segments.Post{Feed: pick(r, feedSlugs), FeedMandatory: r.IntN(4) == 0, Tags: subset(r, tags, 0.3),
			Organisation: true}}
		if i < len(named) {
			a.segment = []byte(named[i])
		} else {
			raw, _ := json.Marshal(w.orgSegment(r, 1))
			a.segment = raw
		}
		if r.IntN(3) == 0 {
			raw, _ := json.Marshal(w.randomCircle(r))
			a.target = raw
		}
		seg, err := segments.Parse(a.segment, opt)
		if err != nil {
			if i < len(named) {
				t.Fatalf("named attack %s refused (%v): it must be accepted and narrowed", a.segment, err)
			}
			continue // finer than an organisation may target: drawn again
		}
		if a.segment, err = json.Marshal(seg); err != nil {
			t.Fatal(err)
		}
		if a.target != nil {
			tgt, err := segments.ParseTarget(a.target, opt)
			if err != nil {
				a.target = nil
			} else if a.target, err = json.Marshal(tgt); err != nil {
				t.Fatal(err)
			}
		}
		cases = append(cases, a)
	}

	ctx := context.Background()
	var mu sync.Mutex
	failures, reached := 0, 0
	parallel(len(cases), 4, func(i int) {
		a := cases[i]
		e, err := segments.Audience(a.post, a.target, a.segment)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			return
		}
		sqlIDs, err := w.sqlAudience(ctx, segments.Compile(e, segments.Params{TenantParam: 2, ArgBase: 3}))
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			return
		}
		optIns := w.goAudience(segments.OptIns(a.post))
		goIDs := w.goAudience(e)
		mu.Lock()
		defer mu.Unlock()
		reached += len(sqlIDs)
		for _, id := range sqlIDs {
			if _, in := slices.BinarySearch(optIns, id); !in && failures < 5 {
				failures++
				t.Errorf("case %d: device %s is reached but follows neither feed %s nor any of the tags %v\nsegment %s target %s",
					i, id, a.post.Feed, a.post.Tags, a.segment, a.target)
			}
		}
		if failures < 5 && !w.compare(t, fmt.Sprintf("case %d", i), e, sqlIDs, goIDs) {
			failures++
		}
		if i < len(named) && len(sqlIDs) > len(optIns) {
			t.Errorf("named attack %s reached %d devices, its opt-ins are %d", a.segment, len(sqlIDs), len(optIns))
		}
	})
	if reached == 0 {
		t.Fatalf("no case reached anyone: the test would pass with an empty audience")
	}
	t.Logf("%d organisation segments, mean audience %.0f of %d devices", len(cases), float64(reached)/float64(len(cases)), nDevices)
}
