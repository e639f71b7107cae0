package emulator

import (
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	apnsMaxPayload     = 4096
	apnsMaxVoIPPayload = 5120
	apnsMaxCollapseID  = 64
	apnsTokenMaxAge    = time.Hour
	// APNs device tokens are 32 bytes today; Apple warns they may grow, so
	// any even number of hex digits from 64 to 200 is taken.
	apnsTokenMinHex = 64
	apnsTokenMaxHex = 200
)

// apnsHeaders are the request headers a record keeps.
var apnsHeaders = []string{"apns-topic", "apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id", "apns-id"}

// pushTypes are the valid apns-push-type values, with the topic suffix each
// requires.
var pushTypes = map[string]string{
	"alert":        "",
	"background":   "",
	"location":     ".location-query",
	"voip":         ".voip",
	"complication": ".complication",
	"fileprovider": ".pushkit.fileprovider",
	"mdm":          "",
	"liveactivity": ".push-type.liveactivity",
	"pushtotalk":   ".voip-ptt",
	"controls":     ".push-type.controls",
	"widgets":      ".push-type.widgets",
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// apnsAnswer is what the APNs side answers: a status and, on error, a reason
// (and a timestamp for 410).
type apnsAnswer struct {
	status     int
	reason     string
	timestamp  int64 // ms, 410 only
	retryAfter int
}

func apnsReject(status int, reason string) *apnsAnswer {
	return &apnsAnswer{status: status, reason: reason}
}

// serveAPNs is the APNs provider API: POST /3/device/{token}.
func (e *Emulator) serveAPNs(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		// Apple speaks HTTP/2 only; an HTTP/1 client gets no APNs answer.
		w.Header().Set("Connection", "close")
		http.Error(w, "HTTP/2 required", http.StatusHTTPVersionNotSupported)
		return
	}
	apnsID := r.Header.Get("apns-id")
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return
	}
	rec := Record{Provider: "apns", Topic: r.Header.Get("apns-topic"), Body: string(body), Headers: map[string]string{}}
	for _, h := range apnsHeaders {
		if v := r.Header.Get(h); v != "" {
			rec.Headers[h] = v
		}
	}
	rec.Token, _ = strings.CutPrefix(r.URL.Path, "/3/device/")
	if !wait(r.Context(), e.cfg.Latency) {
		return
	}
	ans := e.checkAPNs(r, body)
	if ans == nil {
		if retryAfter, ok := e.throttled(); ok {
			rec.Throttled = true
			ans = &apnsAnswer{status: http.StatusTooManyRequests, reason: "TooManyRequests", retryAfter: retryAfter}
		} else {
			// A well-formed token outside the grammar fails as unknown.
			b, _ := ParseToken("apns", rec.Token)
			if kind, fails := e.failure(r, "apns", rec.Token, b); fails {
				ans = e.apnsFailure(kind, b.Arg)
			}
		}
	}
	if apnsID == "" || !uuidRE.MatchString(apnsID) {
		apnsID = newUUID()
	}
	rec.ID = apnsID
	rec.Time = e.cfg.Now()
	w.Header().Set("apns-id", apnsID)
	if ans == nil {
		rec.Status = http.StatusOK
		e.records.add(rec)
		w.WriteHeader(http.StatusOK)
		return
	}
	rec.Status, rec.Reason = ans.status, ans.reason
	e.refused(w, rec, "apns push refused", ans.retryAfter)
	out := map[string]any{"reason": ans.reason}
	if ans.timestamp != 0 {
		out["timestamp"] = ans.timestamp
	}
	writeJSON(w, ans.status, out)
}

// checkAPNs checks a request as APNs does: method and path, the provider
// token, the device token, the headers, then the payload. nil means the
// request is well formed.
func (e *Emulator) checkAPNs(r *http.Request, body []byte) *apnsAnswer {
	if r.Method != http.MethodPost {
		return apnsReject(http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
	device, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || strings.Contains(device, "/") {
		return apnsReject(http.StatusNotFound, "BadPath")
	}
	key, ans := e.checkProviderToken(r)
	if ans != nil {
		return ans
	}
	for _, h := range apnsHeaders {
		if len(r.Header.Values(h)) > 1 {
			return apnsReject(http.StatusBadRequest, "DuplicateHeaders")
		}
	}
	if device == "" {
		return apnsReject(http.StatusBadRequest, "MissingDeviceToken")
	}
	if len(device) < apnsTokenMinHex || len(device) > apnsTokenMaxHex || !isHex(device) {
		return apnsReject(http.StatusBadRequest, "BadDeviceToken")
	}
	topic := r.Header.Get("apns-topic")
	if topic == "" {
		return apnsReject(http.StatusBadRequest, "MissingTopic")
	}
	pushType := r.Header.Get("apns-push-type")
	suffix, ok := pushTypes[pushType]
	if !ok {
		return apnsReject(http.StatusBadRequest, "InvalidPushType")
	}
	base, hasSuffix := strings.CutSuffix(topic, suffix)
	if suffix != "" && !hasSuffix {
		return apnsReject(http.StatusBadRequest, "TopicDisallowed")
	}
	if len(key.topics) > 0 && !key.topics[base] {
		return apnsReject(http.StatusBadRequest, "TopicDisallowed")
	}
	if p := r.Header.Get("apns-priority"); p != "" && p != "10" && p != "5" && p != "1" {
		return apnsReject(http.StatusBadRequest, "BadPriority")
	}
	if x := r.Header.Get("apns-expiration"); x != "" {
		if n, err := strconv.ParseInt(x, 10, 64); err != nil || n < 0 {
			return apnsReject(http.StatusBadRequest, "BadExpirationDate")
		}
	}
	if len(r.Header.Get("apns-collapse-id")) > apnsMaxCollapseID {
		return apnsReject(http.StatusBadRequest, "BadCollapseId")
	}
	if id := r.Header.Get("apns-id"); id != "" && !uuidRE.MatchString(id) {
		return apnsReject(http.StatusBadRequest, "BadMessageId")
	}
	limit := apnsMaxPayload
	if pushType == "voip" {
		limit = apnsMaxVoIPPayload
	}
	switch {
	case len(body) == 0:
		return apnsReject(http.StatusBadRequest, "PayloadEmpty")
	case len(body) > limit:
		return apnsReject(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(body, &payload); err != nil {
		return apnsReject(http.StatusBadRequest, "BadPayload")
	}
	var aps map[string]json.RawMessage
	if raw, ok := payload["aps"]; !ok || json.Unmarshal(raw, &aps) != nil || aps == nil {
		return apnsReject(http.StatusBadRequest, "BadPayload")
	}
	return nil
}

// checkProviderToken verifies the ES256 provider token of the
// authorization header against the registered keys.
func (e *Emulator) checkProviderToken(r *http.Request) (*apnsKey, *apnsAnswer) {
	auth := r.Header.Get("authorization")
	if auth == "" {
		return nil, apnsReject(http.StatusForbidden, "MissingProviderToken")
	}
	scheme, tok, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "bearer") || tok == "" {
		return nil, apnsReject(http.StatusForbidden, "InvalidProviderToken")
	}
	// A provider token is signed once and reused for up to an hour, so its
	// signature is checked once (as Apple does); its age is checked on
	// every request.
	key, iat, ok := e.verifiedToken(tok)
	if !ok {
		var kid string
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
			kid, _ = t.Header["kid"].(string)
			k, ok := e.creds.apnsKey(kid)
			if !ok {
				return nil, errors.New("unknown key id")
			}
			key = k
			return k.pub, nil
		}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
		if err != nil {
			return nil, apnsReject(http.StatusForbidden, "InvalidProviderToken")
		}
		if iss, _ := claims["iss"].(string); iss != key.teamID {
			return nil, apnsReject(http.StatusForbidden, "InvalidProviderToken")
		}
		iatF, ok := claims["iat"].(float64)
		if !ok {
			return nil, apnsReject(http.StatusForbidden, "InvalidProviderToken")
		}
		iat = time.Unix(int64(iatF), 0)
		e.rememberToken(tok, verifiedToken{kid: kid, key: key, iat: iat})
	}
	now := e.cfg.Now()
	switch {
	case iat.After(now.Add(clockSkew)):
		return nil, apnsReject(http.StatusForbidden, "InvalidProviderToken")
	case now.Sub(iat) > apnsTokenMaxAge:
		return nil, apnsReject(http.StatusForbidden, "ExpiredProviderToken")
	}
	return key, nil
}

// apnsFailure is APNs' answer to a push that fails as kind, arg its
// Retry-After; a kind outside the grammar is a token unknown to the
// emulator, as to Apple.
func (e *Emulator) apnsFailure(kind BehaviourKind, arg int) *apnsAnswer {
	switch kind {
	case Unregistered:
		return &apnsAnswer{status: http.StatusGone, reason: "Unregistered", timestamp: e.cfg.Now().UnixMilli()}
	case TooManyRequests:
		return &apnsAnswer{status: http.StatusTooManyRequests, reason: "TooManyRequests", retryAfter: arg}
	case InternalError:
		return apnsReject(http.StatusInternalServerError, "InternalServerError")
	case Unavailable:
		return &apnsAnswer{status: http.StatusServiceUnavailable, reason: "ServiceUnavailable", retryAfter: arg}
	case SenderMismatch:
		return apnsReject(http.StatusBadRequest, "DeviceTokenNotForTopic")
	case Flaky:
		return apnsReject(http.StatusServiceUnavailable, "ServiceUnavailable")
	}
	return apnsReject(http.StatusBadRequest, "BadDeviceToken")
}

// newUUID returns a random (version 4) UUID in upper case, as APNs writes
// them.
func newUUID() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]))
}

// verifiedToken is a provider token whose signature was checked.
type verifiedToken struct {
	kid string
	key *apnsKey
	iat time.Time
}

// maxVerified bounds the verified-token cache; it is emptied when full.
const maxVerified = 10_000

// verifiedToken finds a token checked before, if its key is still the one
// registered under its key id.
func (e *Emulator) verifiedToken(tok string) (*apnsKey, time.Time, bool) {
	e.verifiedMu.Lock()
	v, ok := e.verified[tok]
	e.verifiedMu.Unlock()
	if !ok {
		return nil, time.Time{}, false
	}
	if k, ok := e.creds.apnsKey(v.kid); !ok || k != v.key {
		return nil, time.Time{}, false
	}
	return v.key, v.iat, true
}

func (e *Emulator) rememberToken(tok string, v verifiedToken) {
	e.verifiedMu.Lock()
	defer e.verifiedMu.Unlock()
	if e.verified == nil || len(e.verified) >= maxVerified {
		e.verified = map[string]verifiedToken{}
	}
	e.verified[tok] = v
}
