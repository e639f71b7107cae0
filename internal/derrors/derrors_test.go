package derrors_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/internal/derrors"
)

// gone is an error type, for errors.As through the wrap.
type gone struct{}

func (gone) Error() string { return "gone" }

// TestWrap: the deferred wrap prefixes an error once and keeps what it
// wraps visible to errors.Is and errors.As; it leaves a nil error nil.
func TestWrap(t *testing.T) {
	t.Parallel()
	f := func(fail bool) (err error) {
		defer derrors.Wrap(&err, "step %d", 7)
		if fail {
			return fmt.Errorf("%w: %w", gone{}, asynq.SkipRetry)
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
	if !errors.As(err, new(gone)) {
		t.Errorf("errors.As(%v, gone) = false", err)
	}
}
