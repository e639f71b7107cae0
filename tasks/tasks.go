// Package tasks defines crier's asynq tasks: their types, payloads, ids and
// queues, so the API, the dispatcher and the worker agree on them in one
// place.
package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/hibiken/asynq"
)

// Task types.
const (
	TypeDispatch = "post:dispatch"
	TypeSend     = "push:send"
)

// Queues. An emergency alert (its dispatch and its sends) has a queue of its
// own, dispatches of other posts another, and routine sends two, official
// news before community posts.
const (
	QueueEmergency = "emergency"
	QueueDispatch  = "dispatch"
	QueueOfficial  = "official"
	QueueCommunity = "community"
)

// Queues returns every queue with its priority.
func Queues() map[string]int {
	return map[string]int{QueueEmergency: 8, QueueDispatch: 4, QueueOfficial: 2, QueueCommunity: 1}
}

// Group is a set of queues that one kind of asynq server serves, in strict
// priority order.
type Group struct {
	Name   string
	Queues map[string]int
}

// Groups are the queue groups a worker process serves, each with asynq
// servers of its own. An asynq server asks Redis for a task once per queue
// it looks at, one queue after the other, so each group has as few queues
// as it can: a routine send costs one round trip to dequeue, not four.
//
//   - urgent: emergency alerts. While an alert is dispatched and until its
//     sends have all been taken, the Holder pauses the routine queues, so
//     the alert has every worker to itself.
//   - dispatch: other posts' dispatches, which never wait behind sends.
//   - routine: official, then community sends.
func Groups() []Group {
	return []Group{
		{Name: "urgent", Queues: map[string]int{QueueEmergency: 1}},
		{Name: "dispatch", Queues: map[string]int{QueueDispatch: 1}},
		{Name: "routine", Queues: map[string]int{QueueOfficial: 2, QueueCommunity: 1}},
	}
}

// SendQueue is the queue for a class's sends.
func SendQueue(class crier.Class) string {
	switch class {
	case crier.ClassEmergency:
		return QueueEmergency
	case crier.ClassOfficial:
		return QueueOfficial
	}
	return QueueCommunity
}

// MaxSendAttempts bounds how often one send is tried before it fails: the
// first try and its retries.
const MaxSendAttempts = 12

// Send is one push to one device: ids, the provider and the token only
// (about 150 bytes); the content is read from the post.
type Send struct {
	PostID   int64  `json:"p"`
	DeviceID int64  `json:"d"`
	TenantID int64  `json:"t"`
	Provider string `json:"v"`
	Token    string `json:"k"`
	// Check asks the worker to make sure the delivery is still pending
	// before sending: set by a resumed dispatch, whose pages may be read
	// just before some of their sends finish, and on a send deferred to
	// the end of quiet hours, which waits long enough for its device to be
	// deleted meanwhile (the deletion marks the delivery skipped).
	Check bool `json:"c,omitempty"`
	// Locale is the device's language tag when the send was queued: the
	// worker sends the post's text in the language that matches it best.
	Locale string `json:"l,omitempty"`
}

// SendID is the task id of a send: one per post and device, so an enqueue
// repeated after a crash is refused while the first is still queued.
func SendID(postID, deviceID int64) string {
	return "s:" + strconv.FormatInt(postID, 10) + ":" + strconv.FormatInt(deviceID, 10)
}

// NewSend makes the task of a send and its options. No Retention: the
// history of a send lives in Postgres.
func NewSend(s Send, class crier.Class) (*asynq.Task, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode send task: %w", err)
	}
	return asynq.NewTask(TypeSend, b,
		asynq.TaskID(SendID(s.PostID, s.DeviceID)),
		asynq.Queue(SendQueue(class)),
		asynq.MaxRetry(MaxSendAttempts-1), // retries after the first try
		asynq.Timeout(30*time.Second),
	), nil
}

// ParseSend decodes a send task's payload.
func ParseSend(payload []byte) (Send, error) {
	var s Send
	if err := json.Unmarshal(payload, &s); err != nil {
		return Send{}, fmt.Errorf("decode send task: %w", err)
	}
	if s.PostID == 0 || s.DeviceID == 0 || s.Token == "" || s.Provider == "" {
		return Send{}, fmt.Errorf("decode send task: missing fields in %q", payload)
	}
	return s, nil
}

// Dispatch asks for a post to be dispatched.
type Dispatch struct {
	PostID int64 `json:"post_id"`
}

// NewDispatch makes the dispatch task of a post, to be processed at its
// publish time. The id makes enqueuing it twice harmless.
func NewDispatch(postID int64, class crier.Class, at time.Time) (*asynq.Task, error) {
	b, err := json.Marshal(Dispatch{PostID: postID})
	if err != nil {
		return nil, fmt.Errorf("encode dispatch task: %w", err)
	}
	queue := QueueDispatch
	if class == crier.ClassEmergency {
		queue = QueueEmergency
	}
	opts := []asynq.Option{
		asynq.TaskID("dispatch:" + strconv.FormatInt(postID, 10)),
		asynq.Queue(queue),
		asynq.MaxRetry(25),
		asynq.Timeout(30 * time.Minute),
	}
	// A post due now goes straight to its queue: a scheduled task waits for
	// asynq's forwarder, which polls only every few seconds.
	if time.Until(at) > 0 {
		opts = append(opts, asynq.ProcessAt(WholeSecondFrom(at)))
	}
	return asynq.NewTask(TypeDispatch, b, opts...), nil
}

// WholeSecondFrom rounds a time up to the whole second: asynq keeps a
// scheduled task's time in whole seconds and forwards it once that second
// has begun, so a task for 12:00:09.4 given as such would run at 12:00:09,
// before its time.
func WholeSecondFrom(at time.Time) time.Time {
	if r := at.Truncate(time.Second); !r.Equal(at) {
		return r.Add(time.Second)
	}
	return at
}

// ParseDispatch decodes a dispatch task's payload.
func ParseDispatch(payload []byte) (Dispatch, error) {
	var d Dispatch
	if err := json.Unmarshal(payload, &d); err != nil || d.PostID == 0 {
		return Dispatch{}, fmt.Errorf("decode dispatch task %q: %w", payload, err)
	}
	return d, nil
}
