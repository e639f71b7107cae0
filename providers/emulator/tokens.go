package emulator

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BehaviourKind is what the emulator does with a push to a token.
type BehaviourKind int

// The behaviours a token can choose. The zero value is not a behaviour.
const (
	// Accept: the push is accepted (200).
	Accept BehaviourKind = iota + 1
	// Unregistered: FCM 404 UNREGISTERED, APNs 410 Unregistered with a timestamp.
	Unregistered
	// BadToken: FCM 400 INVALID_ARGUMENT (not a valid registration token),
	// APNs 400 BadDeviceToken.
	BadToken
	// TooManyRequests: FCM 429 QUOTA_EXCEEDED, APNs 429 TooManyRequests; Arg
	// is the Retry-After in seconds (no header when 0).
	TooManyRequests
	// InternalError: FCM 500 INTERNAL, APNs 500 InternalServerError.
	InternalError
	// Unavailable: FCM 503 UNAVAILABLE, APNs 503 ServiceUnavailable; Arg is
	// the Retry-After in seconds (no header when 0).
	Unavailable
	// Slow: accepted after Arg milliseconds.
	Slow
	// SenderMismatch: FCM 403 SENDER_ID_MISMATCH, APNs 400
	// DeviceTokenNotForTopic: the token belongs to another app.
	SenderMismatch
	// Flaky: Arg percent of pushes fail as Unavailable (without Retry-After),
	// the others are accepted. The failures are spread evenly over the
	// pushes to the token, starting where a hash of the token says (see the
	// package comment).
	Flaky
)

// kindNames are the FCM spellings; kind codes are the APNs ones (the index).
var kindNames = [...]string{
	Accept:          "ok",
	Unregistered:    "unregistered",
	BadToken:        "badtoken",
	TooManyRequests: "429",
	InternalError:   "500",
	Unavailable:     "503",
	Slow:            "slow",
	SenderMismatch:  "mismatch",
	Flaky:           "flaky",
}

func (k BehaviourKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

func kindByName(name string) (BehaviourKind, bool) {
	for k, n := range kindNames {
		if n != "" && n == name {
			return BehaviourKind(k), true
		}
	}
	return 0, false
}

// Behaviour is what a token asks the emulator to do, and its argument
// (seconds of Retry-After, milliseconds of delay, percent of failures).
type Behaviour struct {
	Kind BehaviourKind
	Arg  int
}

// failure does the part of a token's behaviour both providers share (a
// slow push waits, a flaky one fails or not) and says whether the push
// fails, and as what, for the provider to answer in its own words. A flaky
// push that fails is Flaky: unavailable, without Retry-After.
func (e *Emulator) failure(r *http.Request, provider, token string, b Behaviour) (BehaviourKind, bool) {
	switch b.Kind {
	case Accept:
		return 0, false
	case Slow:
		wait(r.Context(), time.Duration(b.Arg)*time.Millisecond)
		return 0, false
	case Flaky:
		return Flaky, e.flaky.fails(provider, token, b.Arg)
	}
	return b.Kind, true
}

const (
	fcmPrefix = "emu-"
	// apnsMagic starts every emulator APNs token; real tokens are random, so
	// a collision only means a real token gets an emulated answer.
	apnsMagic    = "e1e1"
	apnsTokenLen = 64
)

// FCMToken returns the FCM registration token that asks for b:
//
//	emu-<kind>[.<arg>]-<id>
//
// e.g. emu-ok-42, emu-unregistered-7, emu-429.30-a, emu-slow.200-x. An empty
// id becomes "0".
func FCMToken(b Behaviour, id string) string {
	if id == "" {
		id = "0"
	}
	k := b.Kind.String()
	if b.Arg != 0 {
		k += "." + strconv.Itoa(b.Arg)
	}
	return fcmPrefix + k + "-" + id
}

// APNsToken returns the 64-hex-digit APNs device token that asks for b:
//
//	e1e1 KK AAAAAAAA IIII...I
//
// "e1e1" marks an emulator token, KK is the kind code (two hex digits, the
// BehaviourKind value: 01 ok, 02 unregistered, 03 badtoken, 04 429, 05 500,
// 06 503, 07 slow, 08 mismatch, 09 flaky), AAAAAAAA the argument (uint32)
// and the last 50 digits the id, zero-padded.
func APNsToken(b Behaviour, id uint64) string {
	return fmt.Sprintf("%s%02x%08x%050x", apnsMagic, uint8(b.Kind), uint32(b.Arg), id)
}

// ParseToken reports the behaviour a token asks for. provider is "fcm" or
// "apns". Tokens outside the grammar report false: the emulator answers them
// as the real service answers a token it does not know.
func ParseToken(provider, token string) (Behaviour, bool) {
	switch provider {
	case "fcm":
		return parseFCMToken(token)
	case "apns":
		return parseAPNsToken(token)
	}
	return Behaviour{}, false
}

func parseFCMToken(token string) (Behaviour, bool) {
	rest, ok := strings.CutPrefix(token, fcmPrefix)
	if !ok {
		return Behaviour{}, false
	}
	spec, id, ok := strings.Cut(rest, "-")
	if !ok || id == "" || !validFCMID(id) {
		return Behaviour{}, false
	}
	name, argText, hasArg := strings.Cut(spec, ".")
	kind, ok := kindByName(name)
	if !ok {
		return Behaviour{}, false
	}
	b := Behaviour{Kind: kind}
	if hasArg {
		n, err := strconv.Atoi(argText)
		if err != nil || n < 0 || argText != strconv.Itoa(n) {
			return Behaviour{}, false
		}
		b.Arg = n
	}
	return b, true
}

func validFCMID(id string) bool {
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-', r == '_', r == '.', r == ':':
		default:
			return false
		}
	}
	return len(id) <= 200
}

func parseAPNsToken(token string) (Behaviour, bool) {
	if len(token) != apnsTokenLen || !strings.HasPrefix(token, apnsMagic) || !isHex(token) {
		return Behaviour{}, false
	}
	kind, err := strconv.ParseUint(token[4:6], 16, 8)
	if err != nil || kind == 0 || int(kind) >= len(kindNames) {
		return Behaviour{}, false
	}
	arg, err := strconv.ParseUint(token[6:14], 16, 32)
	if err != nil || arg > 1<<31-1 {
		return Behaviour{}, false
	}
	return Behaviour{Kind: BehaviourKind(kind), Arg: int(arg)}, true
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
