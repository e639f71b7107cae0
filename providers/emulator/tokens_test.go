package emulator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	for k := Accept; k <= Flaky; k++ {
		for _, arg := range []int{0, 1, 30, 3600} {
			b := Behaviour{Kind: k, Arg: arg}
			fcm := FCMToken(b, "dev-1")
			if got, ok := ParseToken("fcm", fcm); !ok || got != b {
				t.Errorf("ParseToken(fcm, %q) = %+v, %v; want %+v", fcm, got, ok, b)
			}
			apns := APNsToken(b, 1<<40+7)
			if len(apns) != 64 || !isHex(apns) {
				t.Errorf("APNsToken(%+v) = %q: not 64 hex digits", b, apns)
			}
			if got, ok := ParseToken("apns", apns); !ok || got != b {
				t.Errorf("ParseToken(apns, %q) = %+v, %v; want %+v", apns, got, ok, b)
			}
		}
	}
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider, token string
		want            Behaviour
		ok              bool
	}{
		{"fcm", "emu-ok-1", Behaviour{Kind: Accept}, true},
		{"fcm", "emu-429.30-abc-def", Behaviour{Kind: TooManyRequests, Arg: 30}, true},
		{"fcm", "emu-slow.200-x", Behaviour{Kind: Slow, Arg: 200}, true},
		{"fcm", "emu-ok", Behaviour{}, false},
		{"fcm", "emu-ok-", Behaviour{}, false},
		{"fcm", "emu-nope-1", Behaviour{}, false},
		{"fcm", "emu-429.x-1", Behaviour{}, false},
		{"fcm", "emu-429.-3-1", Behaviour{}, false},
		{"fcm", "emu-ok-a b", Behaviour{}, false},
		{"fcm", "fXyz:APA91b", Behaviour{}, false},
		{"apns", "e1e10700000064" + "00000000000000000000000000000000000000000000000001", Behaviour{Kind: Slow, Arg: 100}, true},
		{"apns", "e1e1ff00000000" + "00000000000000000000000000000000000000000000000001", Behaviour{}, false},
		{"apns", "e1e10100000000", Behaviour{}, false},
		{"apns", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Behaviour{}, false},
		{"apns", "emu-ok-1", Behaviour{}, false},
		{"webpush", "emu-ok-1", Behaviour{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.token, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseToken(tt.provider, tt.token)
			if diff := cmp.Diff(tt.want, got); diff != "" || ok != tt.ok {
				t.Errorf("ParseToken = %v (-want +got):\n%s", ok, diff)
			}
		})
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("fcm", "emu-429.30-a")
	f.Add("apns", APNsToken(Behaviour{Kind: Slow, Arg: 5}, 9))
	f.Fuzz(func(t *testing.T, provider, token string) {
		b, ok := ParseToken(provider, token)
		if !ok {
			return
		}
		// Whatever parses must come back from the constructors unchanged
		// in meaning.
		var again Behaviour
		switch provider {
		case "fcm":
			_, id, _ := cutTwice(token)
			again, ok = ParseToken("fcm", FCMToken(b, id))
		case "apns":
			again, ok = ParseToken("apns", APNsToken(b, 1))
		}
		if !ok || again != b {
			t.Errorf("round trip of %q: %+v, %v; want %+v", token, again, ok, b)
		}
	})
}

func cutTwice(token string) (string, string, bool) {
	rest := token[len(fcmPrefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '-' {
			return rest[:i], rest[i+1:], true
		}
	}
	return rest, "", false
}
