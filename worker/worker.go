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
	// seen within it. Default 250ms, well inside the second a cancellation
	// has to take hold in.
	PostCacheTTL time.Duration
	// MaxRateWait is the longest a send waits in the worker for its rate;
	// beyond that the task is retried later instead. Default 1s.
	MaxRateWait time.Duration
	// AuthPause is how long a tenant's provider rests after refusing its
	// credentials before a send tries them again. Default 30s.
	AuthPause time.Duration
	// SendTimeout bounds one send, SDK retries included. Default 20s.
	SendTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
	// Observer defaults to none.
	Observer Observer
}

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.PostCacheTTL = cmp.Or(c.PostCacheTTL, 250*time.Millisecond)
	c.MaxRateWait = cmp.Or(c.MaxRateWait, time.Second)
	c.AuthPause = cmp.Or(c.AuthPause, 30*time.Second)
	c.SendTimeout = cmp.Or(c.SendTimeout, 20*time.Second)
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
func New(db *storage.DB, senders Senders, limiter *Limiter, recorder *Recorder, cfg Config) *Worker {
	cfg = cfg.WithDefaults()
	return &Worker{db: db, senders: senders, limiter: limiter, recorder: recorder, cfg: cfg,
		posts: newPostCache(db, cfg.PostCacheTTL, cfg.Now)}
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

// ProcessTask handles a push:send task.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	growStack()
	s, err := tasks.ParseSend(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	post, err := w.posts.get(ctx, s.PostID)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("send %s: %w: %w", tasks.SendID(s.PostID, s.DeviceID), err, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID), err)
	}
	out := storage.Outcome{PostID: s.PostID, DeviceID: s.DeviceID}
	switch {
	case post.State == crier.PostCancelled:
		// Cancelling the post cancelled its unsent deliveries already.
		return nil
	case post.ExpiresAt != nil && !w.cfg.Now().Before(*post.ExpiresAt):
		out.State, out.Reason = crier.DeliveryExpired, "post_expired"
		return w.record(ctx, out, nil)
	}

	if s.Check {
		open, err := w.db.DeliveryOpen(ctx, s.PostID, s.DeviceID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID), err)
		}
		if !open {
			return nil // sent already, by the task a resumed dispatch raced
		}
	}
	if !w.recorder.Healthy() {
		// Outcomes cannot be written: a send now would be pushed again
		// when the database is back. Wait instead; not a failure.
		return fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID),
			&providers.Error{Kind: providers.Throttled, Reason: "database_unavailable", RetryAfter: 2 * time.Second})
	}
	sender, err := w.senders.Sender(ctx, s.TenantID, s.Provider)
	if errors.Is(err, ErrNotConfigured) {
		out.State, out.Reason, out.Error, out.CountAttempt = crier.DeliveryFailed, "provider_not_configured", err.Error(), true
		return w.record(ctx, out, fmt.Errorf("send %s: %w: %w", tasks.SendID(s.PostID, s.DeviceID), err, asynq.SkipRetry))
	}
	if err != nil {
		return fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID), err)
	}
	// Paused or over its rate: retried later, not a failed attempt, nothing
	// to record.
	waitStart := time.Now()
	if err := w.limiter.Wait(ctx, sender.Scope, sender.PerSecond, w.cfg.MaxRateWait); err != nil {
		return fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID), err)
	}
	w.cfg.Observer.RateWait(s.Provider, time.Since(waitStart))
	msg := providers.Message{PostID: post.ID, DeviceID: s.DeviceID, Token: s.Token, Title: post.Title,
		Body: post.Body, URL: post.URL, Data: post.Data, Class: post.Class, CollapseKey: post.CollapseKey}
	if post.ExpiresAt != nil {
		msg.ExpiresAt = *post.ExpiresAt
	}
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	sendStart := time.Now()
	id, sendErr := sender.Send(sendCtx, msg)
	took := time.Since(sendStart)
	cancel()
	kind := providers.Kind(0)
	outcome := "sent"
	if sendErr != nil {
		kind = providers.KindOf(sendErr)
		outcome = kind.String()
	}
	w.cfg.Observer.Send(s.TenantID, s.Provider, outcome, took)
	if err := w.react(ctx, sender, kind, sendErr); err != nil {
		return fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID), err)
	}
	act := actions[kind]
	out.State, out.ProviderMessageID, out.CountAttempt = act.state, id, act.countAttempt
	if sendErr != nil {
		out.Error = sendErr.Error()
		out.Reason = kind.String()
		var pe *providers.Error
		if errors.As(sendErr, &pe) && pe.Reason != "" {
			out.Reason = pe.Reason
		}
		// A throttle of this device alone counts (see IsFailure).
		out.CountAttempt = out.CountAttempt || IsFailure(sendErr)
	}
	var taskErr error
	if act.retry {
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if retried >= maxRetry {
			out.State = crier.DeliveryFailed
		} else {
			if kind == providers.AuthBroken {
				// Come back when the pause is over.
				sendErr = &providers.Error{Kind: providers.AuthBroken, Reason: out.Reason, RetryAfter: w.cfg.AuthPause, Err: sendErr}
			}
			taskErr = fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID), sendErr)
		}
	} else if sendErr != nil && act.state != crier.DeliverySent {
		w.cfg.Logger.Debug("send failed for good", slog.Int64("post_id", s.PostID), slog.Int64("device_id", s.DeviceID),
			slog.String("reason", out.Reason))
	}
	if act.deactivate {
		if err := w.db.DeactivateDevice(ctx, s.DeviceID, s.Token, out.Reason); err != nil {
			return fmt.Errorf("send %s: %w", tasks.SendID(s.PostID, s.DeviceID), err)
		}
	}
	return w.record(ctx, out, taskErr)
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
		return pe.RetryAfter + rand.N(pe.RetryAfter/10+time.Millisecond)
	}
	base := time.Second << min(n, 10)
	base = min(base, 10*time.Minute)
	return base/2 + rand.N(base)
}
