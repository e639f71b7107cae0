package emulator

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A flaky token fails exactly pct of every 100 pushes, spread evenly, and
// about pct % of flaky tokens fail their first push.
func TestFlakySpread(t *testing.T) {
	t.Parallel()
	const tokens = 1000
	for _, pct := range []int{0, 1, 20, 30, 50, 75, 99, 100} {
		t.Run(fmt.Sprint(pct), func(t *testing.T) {
			t.Parallel()
			var c flakyCounts
			firstFailed, twoInARow := 0, 0
			for i := range tokens {
				tok := FCMToken(Behaviour{Kind: Flaky, Arg: pct}, fmt.Sprint(i))
				if i%2 == 1 {
					tok = APNsToken(Behaviour{Kind: Flaky, Arg: pct}, uint64(i))
				}
				failed, prev := 0, false
				for k := range 200 {
					f := c.fails("fcm", tok, pct)
					if f {
						failed++
					}
					if k == 0 && f {
						firstFailed++
					}
					if f && prev {
						twoInARow++
					}
					prev = f
				}
				if failed != 2*pct {
					t.Fatalf("token %s: %d of 200 pushes failed, want %d", tok, failed, 2*pct)
				}
			}
			if pct < 50 && twoInARow > 0 {
				t.Errorf("%d failures followed a failure, want none below 50 %%", twoInARow)
			}
			// The hash spreads the starting points: pct % of the tokens,
			// give or take 4 points, fail their first push.
			if got := firstFailed * 100 / tokens; got < pct-4 || got > pct+4 {
				t.Errorf("%d %% of tokens failed their first push, want about %d %%", got, pct)
			}
		})
	}
}

// Through the FCM and APNs sides a flaky token answers 503 in its pattern,
// counted per provider and token, and Reset starts the pattern again.
func TestFlakyAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	bearer := f.accessToken(t)
	fcmTok := FCMToken(Behaviour{Kind: Flaky, Arg: 50}, "x")
	apnsTok := APNsToken(Behaviour{Kind: Flaky, Arg: 50}, 9)
	pushes := func() []int {
		var got []int
		for range 4 {
			status, _, _ := f.postFCM(t, testProject, bearer, `{"message":{"token":"`+fcmTok+`"}}`)
			got = append(got, status)
		}
		for range 4 {
			res := f.doAPNs(t, apnsRequest{path: "/3/device/" + apnsTok, body: `{"aps":{"alert":"x"}}`, headers: map[string]string{
				"authorization":  "bearer " + providerToken(t, f.p8, testTeam, testKeyID, time.Now()),
				"apns-topic":     testTopic,
				"apns-push-type": "alert",
			}})
			got = append(got, res.Status)
		}
		return got
	}
	first := pushes()
	fails := 0
	for _, s := range first {
		if s == http.StatusServiceUnavailable {
			fails++
		} else if s != http.StatusOK {
			t.Fatalf("answers %v: want only 200 and 503", first)
		}
	}
	if fails != 4 {
		t.Errorf("answers %v: want 2 of each provider's 4 pushes to fail", first)
	}
	f.emu.Reset()
	if again := pushes(); !cmp.Equal(first, again) {
		t.Errorf("after Reset answers %v, want %v again", again, first)
	}
}
