package worker_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/worker"
)

// TestRetryDelay: the backoff between a send's tries is 1 s doubling to 10
// minutes, each delay drawn from half to one and a half times that, so that
// sends failing together do not come back together; a provider's
// Retry-After is waited out whole, with up to a tenth more, and rounded up
// to the whole second asynq keeps retry times in.
func TestRetryDelay(t *testing.T) {
	t.Parallel()
	const samples = 2000
	backoff := []struct {
		retried int
		base    time.Duration
	}{
		{0, time.Second}, {1, 2 * time.Second}, {2, 4 * time.Second}, {3, 8 * time.Second},
		{4, 16 * time.Second}, {5, 32 * time.Second}, {6, 64 * time.Second}, {7, 128 * time.Second},
		{8, 256 * time.Second}, {9, 512 * time.Second},
		// 1,024 s is over the cap.
		{10, 10 * time.Minute}, {11, 10 * time.Minute}, {12, 10 * time.Minute}, {40, 10 * time.Minute},
	}
	retry := &providers.Error{Kind: providers.Retry, Reason: "INTERNAL"}
	for _, c := range backoff {
		t.Run(fmt.Sprintf("retried %d", c.retried), func(t *testing.T) {
			t.Parallel()
			lo, hi := c.base/2, c.base*3/2
			least, most := hi, lo
			for range samples {
				d := worker.RetryDelay(c.retried, retry, nil)
				if d < lo || d >= hi {
					t.Fatalf("RetryDelay(%d) = %s, want %s <= d < %s", c.retried, d, lo, hi)
				}
				least, most = min(least, d), max(most, d)
			}
			// Jitter over the whole range: of 2,000 draws, some fall in
			// its lowest and its highest tenth.
			if least >= lo+c.base/10 || most < hi-c.base/10 {
				t.Errorf("RetryDelay(%d) drew only %s..%s of %s..%s: not spread", c.retried, least, most, lo, hi)
			}
		})
	}

	retryAfter := []struct {
		name string
		err  error
		wait time.Duration
	}{
		{"503 with Retry-After", &providers.Error{Kind: providers.Retry, Reason: "ServiceUnavailable", RetryAfter: 3 * time.Second}, 3 * time.Second},
		{"429 with Retry-After, wrapped", fmt.Errorf("send s:1:2: %w",
			&providers.Error{Kind: providers.Throttled, Reason: "QUOTA_EXCEEDED", RetryAfter: 20 * time.Second}), 20 * time.Second},
		// Retry-After beyond the backoff's cap is still waited out.
		{"Retry-After of an hour", &providers.Error{Kind: providers.Retry, RetryAfter: time.Hour}, time.Hour},
	}
	for _, c := range retryAfter {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Whatever the try: Retry-After wins over the backoff.
			for _, retried := range []int{0, 5, 11} {
				for range samples / 10 {
					// RetryDelay reads the clock somewhere between before
					// and after: a whole second must lie in that window
					// shifted by d (a busy machine under -race can take
					// several milliseconds between the two).
					before := time.Now()
					d := worker.RetryDelay(retried, c.err, nil)
					after := time.Now()
					if hi := c.wait + c.wait/10 + time.Second + time.Millisecond; d < c.wait || d >= hi {
						t.Fatalf("RetryDelay(%d) = %s, want %s <= d < %s", retried, d, c.wait, hi)
					}
					from, to := before.Add(d), after.Add(d)
					if whole := from.Truncate(time.Second); !whole.Equal(from) && whole.Add(time.Second).After(to) {
						t.Fatalf("RetryDelay(%d) = %s ends between %s and %s, not on a whole second", retried, d, from.Format("15:04:05.000"), to.Format("15:04:05.000"))
					}
				}
			}
		})
	}

	// An error that says nothing of when to come back gets the backoff.
	if d := worker.RetryDelay(3, errors.New("connection reset"), nil); d < 4*time.Second || d >= 12*time.Second {
		t.Errorf("RetryDelay(3) of a plain error = %s, want 4s <= d < 12s", d)
	}
}
