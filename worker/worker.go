// Package worker sends push tasks: it loads the post (cached), picks the
// tenant's provider client, sends, classifies the provider's answer through
// one table into a delivery state and an action, and records outcomes in
// group-committed batches.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/internal/derrors"
	"github.com/crier-push/crier/metrics"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// Sender pushes one message through one provider; providers/fcm and
// providers/apns clients are Senders.
type Sender interface {
	Send(ctx context.Context, m providers.Message) (string, error)
}

// Senders finds the Sender of a tenant's provider, with its limits.
type Senders interface {
	Sender(ctx context.Context, tenantID int64, provider string) (TenantSender, error)
	// AuthCleared is told when a provider takes credentials it had refused.
	AuthCleared(tenantID int64, provider string)
}

// Observer is told what sends do, for metrics; *metrics.Metrics is one.
type Observer interface {
	Send(tenantID int64, provider, outcome string, took time.Duration)
	RateWait(provider string, d time.Duration)
	Pause(tenantID int64, provider, reason string)
}

// ErrNotConfigured: the tenant has no credentials for the provider.
var ErrNotConfigured = errors.New("provider not configured for tenant")

// Config tunes a Worker.
type Config struct {
	// PostCacheTTL is how long a loaded post is trusted; a cancellation is
	// seen within it. Default DefaultPostCacheTTL.
	PostCacheTTL time.Duration
	// MaxRateWait is the longest a send waits in the worker for its rate;
	// beyond that the task is retried later instead. Default
	// DefaultMaxRateWait.
	MaxRateWait time.Duration
	// AuthPause is how long a tenant's provider rests after refusing its
	// credentials before a send tries them again. Default DefaultAuthPause.
	AuthPause time.Duration
	// SendTimeout bounds one send, SDK retries included. Default
	// DefaultSendTimeout.
	SendTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
	// Observer defaults to none.
	Observer Observer
}

// Defaults of the Config.
const (
	// DefaultPostCacheTTL is well inside the second a cancellation has to
	// take hold in.
	DefaultPostCacheTTL = 250 * time.Millisecond
	DefaultMaxRateWait  = time.Second
	DefaultAuthPause    = 30 * time.Second
	// DefaultSendTimeout is within the 10–30 s deadline providers/fcm
	// asks for, which leaves the SDK room for its own retries.
	DefaultSendTimeout = 20 * time.Second
)

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.PostCacheTTL = cmp.Or(c.PostCacheTTL, DefaultPostCacheTTL)
	c.MaxRateWait = cmp.Or(c.MaxRateWait, DefaultMaxRateWait)
	c.AuthPause = cmp.Or(c.AuthPause, DefaultAuthPause)
	c.SendTimeout = cmp.Or(c.SendTimeout, DefaultSendTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = metrics.Nop{}
	}
	return c
}

// validate refuses a config the worker cannot run with, naming the field.
func (c Config) validate() error {
	return configcheck.First("worker config",
		configcheck.NotNegative("PostCacheTTL", c.PostCacheTTL),
		configcheck.NotNegative("MaxRateWait", c.MaxRateWait),
		configcheck.NotNegative("AuthPause", c.AuthPause),
		configcheck.NotNegative("SendTimeout", c.SendTimeout),
	)
}

// Worker handles push:send tasks.
type Worker struct {
	db       *storage.DB
	senders  Senders
	limiter  *Limiter
	posts    *postCache
	recorder *Recorder
	cfg      Config
}

// New makes a Worker. Its recorder must be running (see Recorder.Run).
func New(db *storage.DB, senders Senders, limiter *Limiter, recorder *Recorder, cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Worker{db: db, senders: senders, limiter: limiter, recorder: recorder, cfg: cfg,
		posts: newPostCache(db, cfg.PostCacheTTL, cfg.Now)}, nil
}

// action is what crier does about one kind of provider answer.
type action struct {
	state        crier.DeliveryState // the delivery's state; pending means "will retry"
	retry        bool                // let asynq retry the task
	deactivate   bool                // the device's token is dead
	countAttempt bool                // counts against the retry budget
}

// actions is the one table from provider outcome to what crier does.
var actions = map[providers.Kind]action{
	0:                    {state: crier.DeliverySent, countAttempt: true},
	providers.Retry:      {state: crier.DeliveryPending, retry: true, countAttempt: true},
	providers.Throttled:  {state: crier.DeliveryPending, retry: true},
	providers.TokenDead:  {state: crier.DeliveryDeadToken, deactivate: true, countAttempt: true},
	providers.Invalid:    {state: crier.DeliveryFailed, countAttempt: true},
	providers.AuthBroken: {state: crier.DeliveryPending, retry: true},
}

// ProcessTask handles a push:send task: the push, then its outcome,
// recorded before the task is acknowledged.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	growStack()
	s, err := tasks.ParseSend(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	out, err := w.send(ctx, s)
	if out == nil {
		return err
	}
	return w.record(ctx, *out, err)
}

// send makes a task's push. It returns the outcome to record (nil: none)
// and the error for asynq once that is recorded.
func (w *Worker) send(ctx context.Context, s tasks.Send) (_ *storage.Outcome, err error) {
	defer derrors.Wrap(&err, "send %s", tasks.SendID(s.PostID, s.DeviceID))
	post, err := w.posts.get(ctx, s.PostID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return nil, err
	}
	if out, settled, err := w.settled(ctx, s, post); settled || err != nil {
		return out, err
	}
	if !w.recorder.Healthy() {
		// Outcomes cannot be written: a send now would be pushed again
		// when the database is back. Wait instead; not a failure.
		return nil, &providers.Error{Kind: providers.Throttled, Reason: "database_unavailable", RetryAfter: 2 * time.Second}
	}
	sender, err := w.senders.Sender(ctx, s.TenantID, s.Provider)
	if errors.Is(err, ErrNotConfigured) {
		return &storage.Outcome{PostID: s.PostID, DeviceID: s.DeviceID, State: crier.DeliveryFailed,
			Reason: "provider_not_configured", Error: err.Error(), CountAttempt: true}, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return nil, err
	}
	a, err := w.push(ctx, s, sender, post)
	if errors.Is(err, errSuperseded) {
		// Its delivery was cancelled with the message: nothing to record.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := w.react(ctx, sender, a.kind, a.err); err != nil {
		return nil, err
	}
	out, taskErr := w.outcome(ctx, s, a)
	if actions[a.kind].deactivate {
		if err := w.db.DeactivateDevice(ctx, s.DeviceID, s.Token, out.Reason); err != nil {
			return nil, err
		}
	}
	return &out, taskErr
}

// settled reports whether a send is over before its push: its post
// cancelled (which cancelled its unsent deliveries already) or expired (an
// outcome to record), or, for a task of a resumed dispatch, its delivery
// sent already by the task the dispatch raced.
func (w *Worker) settled(ctx context.Context, s tasks.Send, post storage.Post) (*storage.Outcome, bool, error) {
	switch {
	case post.State == crier.PostCancelled:
		return nil, true, nil
	case post.ExpiresAt != nil && !w.cfg.Now().Before(*post.ExpiresAt):
		return &storage.Outcome{PostID: s.PostID, DeviceID: s.DeviceID, State: crier.DeliveryExpired, Reason: "post_expired"}, true, nil
	}
	// A task asynq runs again is checked too: its earlier run may have
	// pushed and recorded, with asynq's acknowledgement lost (a Redis
	// outage: asynq 0.26 retries the acknowledgement with a context it
	// has cancelled, so every send running then is run again later).
	if retried, _ := asynq.GetRetryCount(ctx); !s.Check && retried == 0 {
		return nil, false, nil
	}
	open, err := w.db.DeliveryOpen(ctx, s.PostID, s.DeviceID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, false, err
	}
	return nil, !open, nil
}

// errSuperseded is a send whose alert a follow-up superseded while the
// send waited for its rate.
var errSuperseded = errors.New("superseded while waiting for the rate")

// answer is what a provider said to one push.
type answer struct {
	id   string         // the provider's message id
	kind providers.Kind // 0: sent
	err  error          // the provider's error; nil: sent
}

// push waits for the tenant's provider rate, then sends the post to the
// device, in its language (Message), within SendTimeout. An error is a
// push not made: paused or over its rate, it is retried later, not a
// failed attempt, with nothing to record.
func (w *Worker) push(ctx context.Context, s tasks.Send, sender TenantSender, post storage.Post) (answer, error) {
	waitStart := time.Now()
	if err := w.limiter.Wait(ctx, sender.Scope, sender.PerSecond, w.cfg.MaxRateWait); err != nil {
		return answer{}, err
	}
	w.cfg.Observer.RateWait(s.Provider, time.Since(waitStart))
	if post.IncidentID != 0 {
		// The wait for the rate can outlast a follow-up's SupersedeWait:
		// a message superseded meanwhile must not reach the phone after
		// the new one. The cache's copy is at most its TTL old, less than
		// the follow-up waits.
		p, err := w.posts.get(ctx, s.PostID)
		if err != nil {
			return answer{}, err
		}
		if p.State == crier.PostCancelled {
			return answer{}, errSuperseded
		}
	}
	msg := Message(post, s.DeviceID, s.Token, s.Locale)
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	sendStart := time.Now()
	id, err := sender.Send(sendCtx, msg)
	took := time.Since(sendStart)
	cancel()
	a := answer{id: id, err: err}
	outcome := "sent"
	if err != nil {
		a.kind = providers.KindOf(err)
		outcome = a.kind.String()
	}
	w.cfg.Observer.Send(s.TenantID, s.Provider, outcome, took)
	return a, nil
}

// outcome turns a provider's answer into the delivery's outcome through the
// actions table, and into the error that has asynq retry the task, nil when
// it is done: sent, failed for good, or out of retries.
func (w *Worker) outcome(ctx context.Context, s tasks.Send, a answer) (storage.Outcome, error) {
	act := actions[a.kind]
	out := storage.Outcome{PostID: s.PostID, DeviceID: s.DeviceID, State: act.state, ProviderMessageID: a.id,
		CountAttempt: act.countAttempt}
	if a.err != nil {
		out.Error = a.err.Error()
		out.Reason = a.kind.String()
		var pe *providers.Error
		if errors.As(a.err, &pe) && pe.Reason != "" {
			out.Reason = pe.Reason
		}
		// A throttle of this device alone counts (see IsFailure).
		out.CountAttempt = out.CountAttempt || IsFailure(a.err)
	}
	if !act.retry {
		if a.err != nil && act.state != crier.DeliverySent {
			w.cfg.Logger.Debug("send failed for good", slog.Int64("post_id", s.PostID), slog.Int64("device_id", s.DeviceID),
				slog.String("reason", out.Reason))
		}
		return out, nil
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if retried >= maxRetry {
		out.State = crier.DeliveryFailed
		return out, nil
	}
	if a.kind == providers.AuthBroken {
		// Come back when the pause is over.
		return out, &providers.Error{Kind: providers.AuthBroken, Reason: out.Reason, RetryAfter: w.cfg.AuthPause, Err: a.err}
	}
	return out, a.err
}

// react does what an answer means beyond its delivery: a 429 pauses the
// tenant's provider for its Retry-After in every process; refused
// credentials pause it for AuthPause and are recorded on the tenant, and a
// success clears that record.
func (w *Worker) react(ctx context.Context, s TenantSender, kind providers.Kind, err error) error {
	var pe *providers.Error
	errors.As(err, &pe)
	switch kind {
	case providers.Throttled:
		// Even a throttle Apple says concerns one token pauses the tenant's
		// provider briefly: many of them at once mean the connection is
		// being throttled. It counts as a failed attempt (IsFailure), so a
		// device throttled for good ends failed.
		d := time.Second
		if pe != nil && pe.RetryAfter > 0 {
			d = pe.RetryAfter
		}
		w.cfg.Observer.Pause(s.Scope.TenantID, s.Scope.Provider, "throttled")
		return w.limiter.Pause(ctx, s.Scope, false, d)
	case providers.AuthBroken:
		reason := "auth_broken"
		if pe != nil && pe.Reason != "" {
			reason = pe.Reason
		}
		w.cfg.Logger.Warn("provider refused the tenant's credentials; pausing", slog.Int64("tenant_id", s.Scope.TenantID),
			slog.String("provider", s.Scope.Provider), slog.String("reason", reason), slog.Duration("pause", w.cfg.AuthPause))
		w.cfg.Observer.Pause(s.Scope.TenantID, s.Scope.Provider, "auth_broken")
		if err := w.limiter.Pause(ctx, s.Scope, true, w.cfg.AuthPause); err != nil {
			return err
		}
		return w.db.SetAuthError(ctx, s.Scope.TenantID, s.Scope.Provider, reason)
	case 0:
		if s.AuthError {
			if err := w.db.SetAuthError(ctx, s.Scope.TenantID, s.Scope.Provider, ""); err != nil {
				return err
			}
			w.senders.AuthCleared(s.Scope.TenantID, s.Scope.Provider)
		}
	}
	return nil
}

// IsFailure tells asynq which errors count against a send's retries:
// throttling of the tenant, pauses and refused credentials do not, since the
// device is not at fault and the send was not really tried. A throttle of
// one device token (APNs' 429) does count, so that a device Apple keeps
// throttling cannot keep its post open for ever.
func IsFailure(err error) bool {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Kind == providers.Throttled && pe.Device {
		return true
	}
	k := providers.KindOf(err)
	return k != providers.Throttled && k != providers.AuthBroken
}

// record writes the outcome (group-committed with other sends) before the
// task is acknowledged, so an acknowledged send always has its outcome.
func (w *Worker) record(ctx context.Context, out storage.Outcome, taskErr error) error {
	if err := w.recorder.Record(ctx, out); err != nil {
		return fmt.Errorf("record outcome of %s: %w", tasks.SendID(out.PostID, out.DeviceID), err)
	}
	return taskErr
}

// RetryDelay is asynq's RetryDelayFunc for sends: the provider's Retry-After
// (or a pause's remainder) when there is one, plus up to 10% jitter so that
// paused sends do not all come back at once; otherwise exponential backoff
// from 1s up to 10 minutes with jitter around it.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		return toWholeSecond(pe.RetryAfter + rand.N(pe.RetryAfter/10+time.Millisecond))
	}
	base := time.Second << min(n, 10)
	base = min(base, 10*time.Minute)
	return base/2 + rand.N(base)
}

// toWholeSecond lengthens a delay so that it ends on a whole second: asynq
// keeps a retry's time in whole seconds and runs it once that second has
// begun, so a retry due at 2.3 s would run at 2 s, before the provider's
// Retry-After (dispatcher.dueAt rounds up for the same reason).
func toWholeSecond(d time.Duration) time.Duration {
	now := time.Now()
	at := now.Add(d)
	if r := at.Truncate(time.Second); !r.Equal(at) {
		at = r.Add(time.Second)
	}
	return at.Sub(now)
}
