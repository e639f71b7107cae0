package emulator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/crier-push/crier/internal/jsontree"
)

// The FCM HTTP v1 request is parsed as Google parses proto3 JSON: unknown
// names, values of the wrong type, bad enums and durations are refused with
// "Invalid JSON payload received" / "Invalid value at" messages and
// google.rpc.BadRequest field violations. Field names are accepted in
// snake_case and lowerCamelCase, as proto3 JSON does.

type fieldType int

const (
	fString fieldType = iota
	fBool
	fInt
	fNumber
	fDuration
	fTimestamp
	fStringMap
	fStruct // google.protobuf.Struct: any JSON object
	fEnum
	fMessage
	fStringList
	fDurationList
)

type field struct {
	t    fieldType
	msg  *msgSchema
	enum *enumSchema
}

type msgSchema struct {
	name   string // proto type, e.g. google.firebase.fcm.v1.Notification
	fields map[string]field
}

type enumSchema struct {
	name   string
	values []string
}

const fcmPkg = "google.firebase.fcm.v1."

func msg(name string, fields map[string]field) *msgSchema {
	return &msgSchema{name: fcmPkg + name, fields: fields}
}

func enum(name string, values ...string) field {
	return field{t: fEnum, enum: &enumSchema{name: fcmPkg + name, values: values}}
}

var (
	str     = field{t: fString}
	boolean = field{t: fBool}
	strMap  = field{t: fStringMap}
)

func sub(m *msgSchema) field { return field{t: fMessage, msg: m} }

// sendRequestSchema mirrors SendMessageRequest and the Message it carries.
var sendRequestSchema = func() *msgSchema {
	analytics := msg("FcmOptions", map[string]field{"analytics_label": str})
	color := &msgSchema{name: "google.type.Color", fields: map[string]field{
		"red": {t: fNumber}, "green": {t: fNumber}, "blue": {t: fNumber}, "alpha": {t: fNumber},
	}}
	androidNotification := msg("AndroidNotification", map[string]field{
		"title": str, "body": str, "icon": str, "color": str, "sound": str, "tag": str,
		"click_action": str, "body_loc_key": str, "body_loc_args": {t: fStringList},
		"title_loc_key": str, "title_loc_args": {t: fStringList}, "channel_id": str,
		"ticker": str, "sticky": boolean, "event_time": {t: fTimestamp}, "local_only": boolean,
		"notification_priority": enum("AndroidNotification.NotificationPriority",
			"PRIORITY_UNSPECIFIED", "PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"),
		"default_sound": boolean, "default_vibrate_timings": boolean, "default_light_settings": boolean,
		"vibrate_timings":    {t: fDurationList},
		"visibility":         enum("AndroidNotification.Visibility", "VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"),
		"notification_count": {t: fInt},
		"light_settings": sub(msg("LightSettings", map[string]field{
			"color": sub(color), "light_on_duration": {t: fDuration}, "light_off_duration": {t: fDuration},
		})),
		"image": str, "bypass_proxy_notification": boolean,
		"proxy": enum("AndroidNotification.Proxy", "PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"),
	})
	android := msg("AndroidConfig", map[string]field{
		"collapse_key":             str,
		"priority":                 enum("AndroidMessagePriority", "NORMAL", "HIGH"),
		"ttl":                      {t: fDuration},
		"restricted_package_name":  str,
		"data":                     strMap,
		"notification":             sub(androidNotification),
		"fcm_options":              sub(msg("AndroidFcmOptions", map[string]field{"analytics_label": str})),
		"direct_boot_ok":           boolean,
		"bandwidth_constrained_ok": boolean,
		"restricted_satellite_ok":  boolean,
	})
	webpush := msg("WebpushConfig", map[string]field{
		"headers": strMap, "data": strMap, "notification": {t: fStruct},
		"fcm_options": sub(msg("WebpushFcmOptions", map[string]field{"link": str, "analytics_label": str})),
	})
	apns := msg("ApnsConfig", map[string]field{
		"headers": strMap, "payload": {t: fStruct},
		"fcm_options":         sub(msg("ApnsFcmOptions", map[string]field{"analytics_label": str, "image": str})),
		"live_activity_token": str,
	})
	message := msg("Message", map[string]field{
		"name": str, "data": strMap,
		"notification": sub(msg("Notification", map[string]field{"title": str, "body": str, "image": str})),
		"android":      sub(android), "webpush": sub(webpush), "apns": sub(apns),
		"fcm_options": sub(analytics),
		"token":       str, "topic": str, "condition": str,
	})
	return msg("SendMessageRequest", map[string]field{"validate_only": boolean, "message": sub(message)})
}()

var targetFields = map[string]bool{"token": true, "topic": true, "condition": true}

// violation is one google.rpc.BadRequest field violation.
type violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// checkSchema walks n against s and returns every violation, in order.
func checkSchema(n *jsontree.Node, s *msgSchema, path string) []violation {
	var out []violation
	target := ""
	for _, m := range n.Members {
		name, f, ok := s.lookup(m.Name)
		if !ok {
			at := ""
			if path != "" {
				at = " at '" + path + "'"
			}
			out = append(out, violation{Field: path, Description: fmt.Sprintf("Invalid JSON payload received. Unknown name %q%s: Cannot find field.", m.Name, at)})
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		if m.Value.Kind == jsontree.Null {
			continue
		}
		if s == sendRequestSchema.fields["message"].msg && targetFields[name] {
			if target != "" {
				out = append(out, violation{Field: path, Description: fmt.Sprintf("Invalid JSON payload received. Oneof field 'target' is already set. Cannot set '%s'", name)})
				continue
			}
			target = name
		}
		out = append(out, checkValue(m.Value, f, p)...)
	}
	return out
}

func (s *msgSchema) lookup(name string) (string, field, bool) {
	if f, ok := s.fields[name]; ok {
		return name, f, true
	}
	snake := camelToSnake(name)
	if snake != name {
		if f, ok := s.fields[snake]; ok {
			return snake, f, true
		}
	}
	return "", field{}, false
}

func camelToSnake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func invalid(path, typ string, n *jsontree.Node) violation {
	return violation{Field: path, Description: fmt.Sprintf("Invalid value at '%s' (%s), %s", path, typ, n)}
}

var durationRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,9})?s$`)

func checkValue(n *jsontree.Node, f field, path string) []violation {
	switch f.t {
	case fString:
		if n.Kind != jsontree.String {
			return []violation{invalid(path, "TYPE_STRING", n)}
		}
	case fBool:
		if n.Kind != jsontree.Bool {
			return []violation{invalid(path, "TYPE_BOOL", n)}
		}
	case fInt:
		if !isInt32(n) {
			return []violation{invalid(path, "TYPE_INT32", n)}
		}
	case fNumber:
		if n.Kind != jsontree.Number {
			return []violation{invalid(path, "TYPE_FLOAT", n)}
		}
	case fDuration:
		if n.Kind != jsontree.String || !durationRE.MatchString(n.Str) {
			return []violation{invalid(path, "type.googleapis.com/google.protobuf.Duration", n)}
		}
	case fTimestamp:
		if _, err := time.Parse(time.RFC3339Nano, stringOf(n)); n.Kind != jsontree.String || err != nil {
			return []violation{invalid(path, "type.googleapis.com/google.protobuf.Timestamp", n)}
		}
	case fStringMap:
		if n.Kind != jsontree.Object {
			return []violation{invalid(path, "type.googleapis.com/google.protobuf.Map", n)}
		}
		var out []violation
		for i, m := range n.Members {
			if m.Value.Kind != jsontree.String {
				out = append(out, invalid(fmt.Sprintf("%s[%d].value", path, i), "TYPE_STRING", m.Value))
			}
		}
		return out
	case fStruct:
		if n.Kind != jsontree.Object {
			return []violation{invalid(path, "type.googleapis.com/google.protobuf.Struct", n)}
		}
	case fEnum:
		if !f.enum.accepts(n) {
			return []violation{invalid(path, "type.googleapis.com/"+f.enum.name, n)}
		}
	case fMessage:
		if n.Kind != jsontree.Object {
			return []violation{invalid(path, "type.googleapis.com/"+f.msg.name, n)}
		}
		return checkSchema(n, f.msg, path)
	case fStringList, fDurationList:
		if n.Kind != jsontree.Array {
			return []violation{invalid(path, "TYPE_STRING", n)}
		}
		elem := field{t: fString}
		if f.t == fDurationList {
			elem = field{t: fDuration}
		}
		var out []violation
		for i, it := range n.Items {
			out = append(out, checkValue(it, elem, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	return nil
}

func isInt32(n *jsontree.Node) bool {
	if n.Kind != jsontree.Number {
		return false
	}
	_, err := strconv.ParseInt(n.Num.String(), 10, 32)
	return err == nil
}

func stringOf(n *jsontree.Node) string {
	if n != nil && n.Kind == jsontree.String {
		return n.Str
	}
	return ""
}

// accepts takes enum names in any case (FCM takes "high" for HIGH) and
// numbers in range, as proto3 JSON does.
func (e *enumSchema) accepts(n *jsontree.Node) bool {
	switch n.Kind {
	case jsontree.String:
		for _, v := range e.values {
			if strings.EqualFold(v, n.Str) {
				return true
			}
		}
	case jsontree.Number:
		i, err := strconv.Atoi(n.Num.String())
		return err == nil && i >= 0 && i < len(e.values)
	}
	return false
}

// get returns the member of an object by its snake_case name, accepting the
// lowerCamelCase spelling too; nil if absent or null.
func member(n *jsontree.Node, snake string) *jsontree.Node {
	if n == nil || n.Kind != jsontree.Object {
		return nil
	}
	for _, m := range n.Members {
		if (m.Name == snake || camelToSnake(m.Name) == snake) && m.Value.Kind != jsontree.Null {
			return m.Value
		}
	}
	return nil
}

// parseProtoDuration parses a checked "3.5s" duration.
func parseProtoDuration(s string) (time.Duration, error) {
	return time.ParseDuration(s)
}
