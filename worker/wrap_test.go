package worker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"
)

// TestWrap: the deferred wrap prefixes an error once and keeps what it
// wraps visible to errors.Is; it leaves a nil error nil.
func TestWrap(t *testing.T) {
	t.Parallel()
	f := func(fail bool) (err error) {
		defer wrap(&err, "step %d", 7)
		if fail {
			return fmt.Errorf("%w: %w", errors.New("gone"), asynq.SkipRetry)
		}
		return nil
	}
	if err := f(false); err != nil {
		t.Errorf("f(false) = %v, want nil", err)
	}
	err := f(true)
	if want := "step 7: gone: skip retry for the task"; err == nil || err.Error() != want {
		t.Errorf("f(true) = %v, want %q", err, want)
	}
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("errors.Is(%v, asynq.SkipRetry) = false", err)
	}
}
