package publish

import (
	"encoding/json"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/apns"
	"github.com/crier-push/crier/providers/fcm"
	"github.com/crier-push/crier/storage"
)

// MaxPayload is FCM's and APNs' limit on a notification payload.
const MaxPayload = 4096

// checkDataKey refuses data keys FCM or APNs reserve.
func checkDataKey(k string) error {
	if err := fcm.CheckDataKey(k); err != nil {
		return err
	}
	return apns.CheckDataKey(k)
}

// checkPayloadSize builds the FCM and APNs payloads the worker would send for
// the post and refuses it if either is over the providers' limit, so it
// never gets as far as a provider rejecting it a million times.
func checkPayloadSize(p storage.Post) error {
	m := providers.Message{PostID: 1 << 53, DeviceID: 1 << 53, Token: "x", Title: p.Title, Body: p.Body,
		URL: p.URL, Data: p.Data, Class: p.Class, CollapseKey: p.CollapseKey}
	fm, err := json.Marshal(fcm.Build(m))
	if err != nil {
		return crier.Invalid("", "cannot build the FCM payload: %v", err)
	}
	if len(fm) > MaxPayload {
		return crier.Invalid("body", "the FCM payload would be %d bytes, over the %d-byte limit: shorten title, body, url or data", len(fm), MaxPayload)
	}
	an, err := json.Marshal(apns.Build(m, "topic").Payload)
	if err != nil {
		return crier.Invalid("", "cannot build the APNs payload: %v", err)
	}
	if len(an) > MaxPayload {
		return crier.Invalid("body", "the APNs payload would be %d bytes, over the %d-byte limit: shorten title, body, url or data", len(an), MaxPayload)
	}
	return nil
}
