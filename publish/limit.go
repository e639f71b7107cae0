package publish

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter answers whether one more request under key may go now, and if
// not, when to come back. server gives the API one in Redis, shared by
// every process; LocalLimiter is the one of a single process.
type Limiter interface {
	Allow(ctx context.Context, key string) (retryAfter time.Duration, err error)
}

// Default preview limits per publisher: enough for a console that counts
// as its user edits, far too few to map a town by differencing counts.
const (
	DefaultPreviewsPerMinute = 60
	DefaultPreviewBurst      = 20
)

// LocalLimiter is a token bucket per key in this process.
type LocalLimiter struct {
	perMinute, burst int
	mu               sync.Mutex
	buckets          map[string]*rate.Limiter
}

// NewLocalLimiter allows perMinute requests a minute per key, burst at
// once.
func NewLocalLimiter(perMinute, burst int) *LocalLimiter {
	return &LocalLimiter{perMinute: perMinute, burst: burst, buckets: map[string]*rate.Limiter{}}
}

// Allow takes a token of key's bucket, or says when one will be there.
func (l *LocalLimiter) Allow(_ context.Context, key string) (time.Duration, error) {
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	r := b.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d, nil
	}
	return 0, nil
}
