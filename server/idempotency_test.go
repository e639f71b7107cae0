package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/crier-push/crier/providers/emulator"
	"github.com/google/go-cmp/cmp"
)

// postCreated is the answer to POST /v1/posts.
type postCreated struct {
	ID        int64  `json:"id"`
	State     string `json:"state"`
	Duplicate bool   `json:"duplicate"`
	StatusURL string `json:"status_url"`
}

// TestAPIIdempotency: an external id makes one post, whose pushes go out
// once, however often and however concurrently the CMS sends it. The API's
// validation and authorisation are tested in package api.
func TestAPIIdempotency(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.Org, "fotball", "fotball", false)
	s.feed(t, s.muni, "veiarbeid", "veiarbeid", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	followers := map[string]string{ // installation id: token
		"android-1": emulator.FCMToken(ok, "idem1"),
		"android-2": emulator.FCMToken(ok, "idem2"),
		"iphone-1":  emulator.APNsToken(ok, 71),
	}
	for inst, token := range followers {
		provider := "fcm"
		if strings.HasPrefix(inst, "iphone") {
			provider = "apns"
		}
		body := map[string]any{"provider": provider, "token": token, "follows": []string{"fotball"}}
		if code := s.do("PUT", "/v1/devices/"+inst, s.AppKey, body, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", inst, code)
		}
	}
	bystander := emulator.FCMToken(ok, "idem9")
	if code := s.do("PUT", "/v1/devices/android-9", s.AppKey,
		map[string]any{"provider": "fcm", "token": bystander, "follows": []string{"veiarbeid"}}, nil); code != http.StatusCreated {
		t.Fatalf("register android-9: %d", code)
	}

	// pushesOnce checks that each follower got exactly one push since the
	// last reset, and nobody else any.
	pushesOnce := func(t *testing.T) {
		t.Helper()
		got := map[string]int{}
		for _, r := range s.emu.Records() {
			got[r.Token]++
		}
		want := map[string]int{}
		for _, token := range followers {
			want[token] = 1
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pushes per token (-want +got):\n%s", diff)
		}
	}
	post := func(extID string) map[string]any {
		return map[string]any{"feed": "fotball", "title": "Kampstart flyttet", "body": "Kampen starter 18:00.",
			"external_id": extID}
	}

	// One after the other.
	var first, again postCreated
	if code := s.do("POST", "/v1/posts", s.OrgKey, post("cms-1"), &first); code != http.StatusAccepted {
		t.Fatalf("first POST: %d, want 202", code)
	}
	if code := s.do("POST", "/v1/posts", s.OrgKey, post("cms-1"), &again); code != http.StatusOK {
		t.Fatalf("replayed POST: %d, want 200", code)
	}
	if first.Duplicate || !again.Duplicate || again.ID != first.ID || again.StatusURL != first.StatusURL {
		t.Errorf("first %+v, replay %+v: want the same post, the replay a duplicate", first, again)
	}
	st := s.waitDone(s.MuniKey, first.ID)
	if st.Counts["sent"] != len(followers) {
		t.Errorf("counts %v, want %d sent", st.Counts, len(followers))
	}
	pushesOnce(t)

	// A replay after the post is done is still the same post, and sends
	// nothing more.
	s.emu.Reset()
	var late postCreated
	if code := s.do("POST", "/v1/posts", s.OrgKey, post("cms-1"), &late); code != http.StatusOK || late.ID != first.ID || !late.Duplicate {
		t.Errorf("replay after done: %d %+v, want 200 and post %d as a duplicate", code, late, first.ID)
	}

	// Five at once.
	const n = 5
	type answer struct {
		code int
		post postCreated
		err  error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	body := `{"feed": "fotball", "title": "Kampen avlyst", "body": "Kampen er avlyst.", "external_id": "cms-2"}`
	h := http.Header{"Authorization": {"Bearer " + s.OrgKey}, "Content-Type": {"application/json"}}
	for i := range n {
		wg.Go(func() {
			<-start
			code, _, raw, err := s.send("POST", "/v1/posts", h, body)
			answers[i] = answer{code: code, err: err}
			if err == nil {
				answers[i].err = json.Unmarshal(raw, &answers[i].post)
			}
		})
	}
	close(start)
	wg.Wait()
	codes := map[int]int{}
	ids := map[int64]bool{}
	duplicates := 0
	for _, a := range answers {
		if a.err != nil {
			t.Fatal(a.err)
		}
		codes[a.code]++
		ids[a.post.ID] = true
		if a.post.Duplicate {
			duplicates++
		}
	}
	if diff := cmp.Diff(map[int]int{http.StatusAccepted: 1, http.StatusOK: n - 1}, codes); diff != "" {
		t.Errorf("statuses of %d concurrent POSTs (-want +got):\n%s", n, diff)
	}
	if len(ids) != 1 || duplicates != n-1 {
		t.Fatalf("concurrent POSTs: post ids %v, %d duplicates; want one id and %d duplicates", ids, duplicates, n-1)
	}
	id := answers[0].post.ID
	if id == first.ID {
		t.Fatalf("a new external id gave the old post %d", id)
	}
	st = s.waitDone(s.MuniKey, id)
	if st.Counts["sent"] != len(followers) || *st.Audience != len(followers) {
		t.Errorf("audience %v, counts %v; want %d sent", *st.Audience, st.Counts, len(followers))
	}
	pushesOnce(t)

	// The external id is the publisher's own: another publisher using the
	// same one makes its own post.
	var muni postCreated
	m := post("cms-2")
	m["feed"] = "veiarbeid"
	if code := s.do("POST", "/v1/posts", s.MuniKey, m, &muni); code != http.StatusAccepted || muni.ID == id || muni.Duplicate {
		t.Errorf("the municipality's cms-2: %d %+v, want 202 and a new post", code, muni)
	}
}
