package worker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier/providers"
)

// Limiter holds each tenant's provider to its send rate and honours pauses
// (a provider's 429 Retry-After, refused credentials) across every worker
// process, through Redis: GCRA rate limiting from redis_rate, and pause keys
// with a time to live. A pause is cached in the process for up to
// pauseCheck, so a worker asks Redis about it at most that often.
type Limiter struct {
	rdb  redis.UniversalClient
	rate *redis_rate.Limiter

	mu      sync.Mutex
	pauses  map[string]pauseState
	buckets map[string]int // tokens taken from Redis and not yet used, by rate key
}

type pauseState struct {
	until   time.Time // paused until then; zero when not paused
	checked time.Time
}

const pauseCheck = 100 * time.Millisecond

// NewLimiter makes a Limiter on a Redis client.
func NewLimiter(rdb redis.UniversalClient) *Limiter {
	return &Limiter{rdb: rdb, rate: redis_rate.NewLimiter(rdb), pauses: map[string]pauseState{}, buckets: map[string]int{}}
}

// Scope names whose sends a limit or pause applies to: a tenant's provider,
// under one version of its credentials (a pause for refused credentials
// ends when they change).
type Scope struct {
	TenantID int64
	Provider string
	Version  int64
}

func (s Scope) rateKey() string {
	return "crier:rate:" + strconv.FormatInt(s.TenantID, 10) + ":" + s.Provider
}

// pauseKey is shared by throttling pauses (any credentials) and auth pauses
// (this version of the credentials).
func (s Scope) pauseKey(auth bool) string {
	k := "crier:pause:" + strconv.FormatInt(s.TenantID, 10) + ":" + s.Provider
	if auth {
		k += ":v" + strconv.FormatInt(s.Version, 10)
	}
	return k
}

// errPaused is a send not attempted because its scope is paused; it does
// not count as a failed attempt.
func errPaused(reason string, d time.Duration) error {
	return &providers.Error{Kind: providers.Throttled, Reason: reason, RetryAfter: d}
}

// Wait blocks until the scope's rate allows one more send, for at most
// maxWait; it returns a Throttled error (to retry later) if the scope is
// paused or the wait would be longer.
func (l *Limiter) Wait(ctx context.Context, s Scope, perSecond int, maxWait time.Duration) error {
	for _, auth := range []bool{false, true} {
		if d, err := l.paused(ctx, s.pauseKey(auth)); err != nil {
			return err
		} else if d > 0 {
			return errPaused("paused", d)
		}
	}
	key := s.rateKey()
	if l.take(key) {
		return nil
	}
	// Tokens are taken from Redis a hundredth of a second's worth at a time
	// (at most 50) and handed out here: one round trip serves many sends,
	// and no process ever holds more than that share of the rate.
	batch := max(1, min(50, perSecond/100))
	limit := redis_rate.Limit{Rate: perSecond, Period: time.Second, Burst: max(batch, perSecond/20)}
	deadline := time.Now().Add(maxWait)
	for {
		res, err := l.rate.AllowN(ctx, key, limit, batch)
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		}
		if res.Allowed > 0 {
			l.mu.Lock()
			l.buckets[key] += res.Allowed - 1
			l.mu.Unlock()
			return nil
		}
		if time.Now().Add(res.RetryAfter).After(deadline) {
			return errPaused("rate_limited", res.RetryAfter)
		}
		t := time.NewTimer(res.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("rate limit %s: %w", key, ctx.Err())
		case <-t.C:
		}
	}
}

// take uses a token taken from Redis before, if there is one.
func (l *Limiter) take(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets[key] > 0 {
		l.buckets[key]--
		return true
	}
	return false
}

// paused reports how much longer a pause key holds, from the cache or Redis.
func (l *Limiter) paused(ctx context.Context, key string) (time.Duration, error) {
	now := time.Now()
	l.mu.Lock()
	st, ok := l.pauses[key]
	l.mu.Unlock()
	if ok && (st.until.After(now) || now.Sub(st.checked) < pauseCheck) {
		return max(0, st.until.Sub(now)), nil
	}
	ttl, err := l.rdb.PTTL(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("check pause %s: %w", key, err)
	}
	st = pauseState{checked: now}
	if ttl > 0 {
		st.until = now.Add(ttl)
	}
	l.mu.Lock()
	l.pauses[key] = st
	l.mu.Unlock()
	return max(0, st.until.Sub(now)), nil
}

// Pause stops sends of the scope for d in every process: after a 429
// (auth false) or refused credentials (auth true). A longer pause already
// in place is kept.
func (l *Limiter) Pause(ctx context.Context, s Scope, auth bool, d time.Duration) error {
	key := s.pauseKey(auth)
	// Extend only: PEXPIRE GT keeps a longer pause set by another worker.
	pipe := l.rdb.TxPipeline()
	pipe.SetNX(ctx, key, "1", d)
	pipe.Do(ctx, "PEXPIRE", key, d.Milliseconds(), "GT")
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("pause %s: %w", key, err)
	}
	l.mu.Lock()
	l.pauses[key] = pauseState{until: time.Now().Add(d), checked: time.Now()}
	l.mu.Unlock()
	return nil
}
