package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/crier-push/crier/internal/jsontree"
)

const (
	fcmErrorType        = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
	badRequestType      = "type.googleapis.com/google.rpc.BadRequest"
	errorInfoType       = "type.googleapis.com/google.rpc.ErrorInfo"
	fcmMaxPayload       = 4096
	fcmMaxTopicPayload  = 2048
	fcmMaxTTL           = 28 * 24 * time.Hour
	fcmMaxRequestBody   = 1 << 20
	invalidTokenMessage = "The registration token is not a valid FCM registration token"
)

// googleError is the error body of Google APIs:
// {"error":{"code":..,"message":..,"status":..,"details":[..]}}.
type googleError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`

	retryAfter int    // seconds, 0 for none
	reason     string // what the record keeps
}

func fcmError(status int, statusName, errorCode, message string) *googleError {
	return &googleError{
		Code: status, Message: message, Status: statusName,
		Details: []any{map[string]string{"@type": fcmErrorType, "errorCode": errorCode}},
		reason:  errorCode,
	}
}

func invalidArgument(message string) *googleError {
	return fcmError(http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", message)
}

func badRequest(vs []violation) *googleError {
	msgs := make([]string, len(vs))
	for i, v := range vs {
		msgs[i] = v.Description
	}
	return &googleError{
		Code: http.StatusBadRequest, Message: strings.Join(msgs, "\n"), Status: "INVALID_ARGUMENT",
		Details: []any{map[string]any{"@type": badRequestType, "fieldViolations": vs}},
		reason:  "INVALID_ARGUMENT",
	}
}

// quotaExceeded is FCM's answer to a project over its send quota.
func quotaExceeded() *googleError {
	return fcmError(http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com'.")
}

func unauthenticated(message, reason string) *googleError {
	return &googleError{
		Code: http.StatusUnauthorized, Message: message, Status: "UNAUTHENTICATED",
		Details: []any{map[string]any{"@type": errorInfoType, "reason": reason, "domain": "googleapis.com",
			"metadata": map[string]string{"service": "fcm.googleapis.com", "method": "google.firebase.fcm.v1.FcmService.SendMessage"}}},
		reason: "UNAUTHENTICATED",
	}
}

func (e *Emulator) fcmMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", e.serveToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", e.serveFCMSend)
	mux.HandleFunc("GET /emulator/summary", e.serveSummary)
	mux.HandleFunc("GET /emulator/records", e.serveRecords)
	mux.HandleFunc("POST /emulator/reset", e.serveReset)
	mux.HandleFunc("POST /emulator/throttle", e.serveThrottle)
	mux.HandleFunc("GET /emulator/ca.pem", e.serveCACert)
	return mux
}

// serveFCMSend is projects.messages.send of the FCM HTTP v1 API.
func (e *Emulator) serveFCMSend(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fcmMaxRequestBody))
	rec := Record{Provider: "fcm", Project: project, Body: string(body)}
	if err != nil {
		e.answerFCM(w, r, rec, invalidArgument("Request payload size exceeds the limit: 1048576 bytes."))
		return
	}
	if !wait(r.Context(), e.cfg.Latency) {
		return
	}
	gerr, name := e.checkFCMSend(r, project, body, &rec)
	if gerr == nil {
		rec.ID = name
	}
	e.answerFCM(w, r, rec, gerr)
}

// checkFCMSend checks the request in the order Google does (credentials,
// then the body, then the target) and applies the token's behaviour. It
// returns the error to answer, or the message name.
func (e *Emulator) checkFCMSend(r *http.Request, project string, body []byte, rec *Record) (*googleError, string) {
	if gerr := e.checkBearer(r, project); gerr != nil {
		return gerr, ""
	}
	root, err := jsontree.Parse(body)
	if err != nil {
		return badRequest([]violation{{Description: "Invalid JSON payload received. " + syntaxMessage(err)}}), ""
	}
	if root.Kind != jsontree.Object {
		return badRequest([]violation{{Description: fmt.Sprintf("Invalid JSON payload received. Expected an object, got %s.", root)}}), ""
	}
	if vs := checkSchema(root, sendRequestSchema, ""); len(vs) > 0 {
		return badRequest(vs), ""
	}
	if v := member(root, "validate_only"); v != nil {
		rec.ValidateOnly = v.Bool
	}
	m := member(root, "message")
	if m == nil {
		return invalidArgument("Request contains an invalid argument."), ""
	}
	token, topic, cond := stringOf(member(m, "token")), stringOf(member(m, "topic")), stringOf(member(m, "condition"))
	rec.Token = token
	rec.Topic = topic + cond
	if gerr := checkFCMMessage(m, token, topic, cond); gerr != nil {
		return gerr, ""
	}
	if retryAfter, ok := e.throttled(); ok {
		rec.Throttled = true
		g := quotaExceeded()
		g.retryAfter = retryAfter
		return g, ""
	}
	name := fmt.Sprintf("projects/%s/messages/0:%d%%%s", project, e.cfg.Now().UnixNano(), randomHex(8))
	if token == "" { // topic or condition: no device to ask
		return nil, name
	}
	b, ok := ParseToken("fcm", token)
	if !ok {
		return invalidArgument(invalidTokenMessage), ""
	}
	if kind, fails := e.failure(r, "fcm", token, b); fails {
		return fcmFailure(kind, b.Arg), name
	}
	return nil, name
}

func (e *Emulator) checkBearer(r *http.Request, project string) *googleError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return unauthenticated("Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", "CREDENTIALS_MISSING")
	}
	scheme, tok, _ := strings.Cut(auth, " ")
	at, ok := e.creds.accessToken(tok)
	if !strings.EqualFold(scheme, "Bearer") || !ok {
		return unauthenticated("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", "ACCESS_TOKEN_TYPE_UNSUPPORTED")
	}
	if !e.cfg.Now().Before(at.expires) {
		return unauthenticated("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", "ACCESS_TOKEN_EXPIRED")
	}
	if at.project != project {
		return &googleError{
			Code: http.StatusForbidden, Status: "PERMISSION_DENIED",
			Message: fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", project),
			Details: []any{map[string]any{"@type": errorInfoType, "reason": "IAM_PERMISSION_DENIED", "domain": "cloudresourcemanager.googleapis.com",
				"metadata": map[string]string{"resource": "projects/" + project, "permission": "cloudmessaging.messages.create"}}},
			reason: "PERMISSION_DENIED",
		}
	}
	return nil
}

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9\-_.~%]{1,900}$`)

// checkFCMMessage checks what the schema cannot: the target, reserved data
// keys, the TTL and the size.
func checkFCMMessage(m *jsontree.Node, token, topic, cond string) *googleError {
	if token == "" && topic == "" && cond == "" {
		return invalidArgument("Recipient of the message is not set.")
	}
	if topic != "" && !topicRE.MatchString(strings.TrimPrefix(topic, "/topics/")) {
		return invalidArgument("Invalid topic name.")
	}
	for _, data := range []*jsontree.Node{member(m, "data"), member(member(m, "android"), "data")} {
		for _, kv := range dataMembers(data) {
			if reservedDataKey(kv.Name) {
				return invalidArgument(fmt.Sprintf("Invalid data payload key: %s", kv.Name))
			}
		}
	}
	if ttl := member(member(m, "android"), "ttl"); ttl != nil {
		d, err := parseProtoDuration(ttl.Str)
		if err != nil || d < 0 || d > fcmMaxTTL {
			return invalidArgument(fmt.Sprintf("Invalid value at 'message.android.ttl': TTL must be between 0 and %d seconds (4 weeks), got %s.", int(fcmMaxTTL/time.Second), ttl.Str))
		}
	}
	limit := fcmMaxPayload
	if token == "" {
		limit = fcmMaxTopicPayload
	}
	if payloadSize(m) > limit {
		return invalidArgument("Message is too big")
	}
	return nil
}

func dataMembers(n *jsontree.Node) []jsontree.Member {
	if n == nil || n.Kind != jsontree.Object {
		return nil
	}
	return n.Members
}

// reservedDataKey reports keys FCM keeps for itself.
func reservedDataKey(k string) bool {
	switch {
	case k == "from", k == "message_type", k == "gcm", k == "google":
		return true
	case strings.HasPrefix(k, "gcm."), strings.HasPrefix(k, "google."):
		return true
	}
	return false
}

// payloadSize approximates what FCM counts against its limit: the keys and
// values of the data maps and the size of the notification payloads.
func payloadSize(m *jsontree.Node) int {
	size := 0
	for _, data := range []*jsontree.Node{member(m, "data"), member(member(m, "android"), "data"), member(member(m, "webpush"), "data")} {
		for _, kv := range dataMembers(data) {
			size += len(kv.Name) + len(kv.Value.Str)
		}
	}
	for _, n := range []*jsontree.Node{member(m, "notification"), member(member(m, "android"), "notification"),
		member(member(m, "apns"), "payload"), member(member(m, "webpush"), "notification")} {
		if n != nil {
			size += len(n.Raw)
		}
	}
	return size
}

// fcmFailure is FCM's answer to a send that fails as kind, arg its
// Retry-After.
func fcmFailure(kind BehaviourKind, arg int) *googleError {
	switch kind {
	case Unregistered:
		return fcmError(http.StatusNotFound, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
	case BadToken:
		return invalidArgument(invalidTokenMessage)
	case TooManyRequests:
		g := quotaExceeded()
		g.retryAfter = arg
		return g
	case InternalError:
		return fcmError(http.StatusInternalServerError, "INTERNAL", "INTERNAL", "Internal error encountered.")
	case Unavailable:
		g := fcmError(http.StatusServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
		g.retryAfter = arg
		return g
	case SenderMismatch:
		return fcmError(http.StatusForbidden, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch")
	case Flaky:
		return fcmError(http.StatusServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
	}
	return invalidArgument(invalidTokenMessage)
}

// answerFCM writes the answer and records it.
func (e *Emulator) answerFCM(w http.ResponseWriter, r *http.Request, rec Record, gerr *googleError) {
	rec.Time = e.cfg.Now()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if gerr == nil {
		rec.Status = http.StatusOK
		e.records.add(rec)
		writeJSON(w, http.StatusOK, map[string]string{"name": rec.ID})
		return
	}
	rec.Status, rec.Reason = gerr.Code, gerr.reason
	e.refused(w, rec, "fcm send refused", gerr.retryAfter)
	writeJSON(w, gerr.Code, map[string]any{"error": gerr})
}

func syntaxMessage(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "Unexpected end of input."
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("Unexpected token at offset %d: %s.", se.Offset, se.Error())
	}
	return err.Error()
}
