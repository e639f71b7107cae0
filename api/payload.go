package api

import (
	"encoding/json"
	"errors"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/apns"
	"github.com/crier-push/crier/providers/fcm"
	"github.com/crier-push/crier/storage"
)

// maxPayload is FCM's and APNs' limit on a notification payload.
const maxPayload = 4096

// checkDataKey refuses data keys FCM reserves.
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
		return invalid("", "cannot build the FCM payload: %v", err)
	}
	if len(fm) > maxPayload {
		return invalid("body", "the FCM payload would be %d bytes, over the %d-byte limit: shorten title, body, url or data", len(fm), maxPayload)
	}
	an, err := json.Marshal(apns.Build(m, "topic").Payload)
	if err != nil {
		return invalid("", "cannot build the APNs payload: %v", err)
	}
	if len(an) > maxPayload {
		return invalid("body", "the APNs payload would be %d bytes, over the %d-byte limit: shorten title, body, url or data", len(an), maxPayload)
	}
	return nil
}

func isTaskConflict(err error) bool { return errors.Is(err, asynq.ErrTaskIDConflict) }
