package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/crier-push/crier"
)

// devicePostJSON is a post as GET /v1/devices/{installation_id}/posts/{post}
// shows it to the installation's app: the text in the device's language
// (as a push with its content would carry it), and its delivery.
type devicePostJSON struct {
	ID    int64          `json:"id"`
	Feed  devicePostFeed `json:"feed"`
	Class crier.Class    `json:"class"`
	Title string         `json:"title"`
	Body  string         `json:"body"`
	URL   string         `json:"url,omitempty"`
	// Data is what a push with the content carries in its data beside
	// post_id and url: the publisher's keys, lang and exercise.
	Data map[string]string `json:"data"`
	// Lang is the language of title and body.
	Lang     string     `json:"lang,omitempty"`
	Exercise bool       `json:"exercise,omitempty"`
	SentAt   *time.Time `json:"sent_at"`
}

type devicePostFeed struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// getDevicePost is the app's fetch of a post it was pushed, for ID-only
// pushes (which carry only the post id) above all, but for any post the
// device has a delivery of. It needs the installation's device secret; a
// post the device has no delivery of is a 404 like one that does not exist,
// and so is a cancelled post, whose publisher withdrew it. Reads are the
// receipts' light ones: after an ID-only post every phone asks at once.
func (s *Server) getDevicePost(w http.ResponseWriter, r *http.Request) error {
	inst := r.PathValue("installation_id")
	if !installationRE.MatchString(inst) {
		return crier.Invalid("installation_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
	}
	postID, err := strconv.ParseInt(r.PathValue("post"), 10, 64)
	if err != nil || postID <= 0 {
		return crier.Invalid("post", "must be a post id")
	}
	// Without a secret nothing is read: not even whether the installation
	// exists is told.
	if r.Header.Get(DeviceSecretHeader) == "" {
		return crier.Errorf(crier.EUNAUTHORIZED, DeviceSecretHeader, "reading a post needs the installation's device secret")
	}
	tenantID := principal(r.Context()).TenantID
	d, err := s.db.ReceiptDevice(r.Context(), tenantID, inst)
	if err != nil {
		return err
	}
	if err := ownSecret(r, d); err != nil {
		return err
	}
	dp, err := s.db.DevicePost(r.Context(), tenantID, d.ID, postID)
	if err != nil {
		return err
	}
	post := dp.Post
	if post.State == crier.PostCancelled {
		return crier.Errorf(crier.ENOTFOUND, "post", "post %d was withdrawn by its publisher", postID)
	}
	text, lang := crier.DeviceText(dp.Locale, crier.Text{Title: post.Title, Body: post.Body}, post.Language,
		post.Translations, post.TenantLanguage, post.Exercise)
	writeJSON(w, http.StatusOK, devicePostJSON{ID: post.ID, Feed: devicePostFeed{Slug: post.FeedSlug, Name: dp.FeedName},
		Class: post.Class, Title: text.Title, Body: text.Body, URL: post.URL,
		Data: crier.PushData(post.Data, lang, post.Exercise), Lang: lang, Exercise: post.Exercise, SentAt: dp.SentAt})
	return nil
}
