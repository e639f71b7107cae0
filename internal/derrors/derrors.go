// Package derrors prefixes a function's error with what the function was
// doing, once for all its returns (golang/pkgsite's internal/derrors).
package derrors

import "fmt"

// Wrap, deferred, prefixes *errp, if it is not nil, with the formatted
// step. %w keeps what it wraps visible: errors.Is for asynq.SkipRetry,
// errors.As for *providers.Error.
func Wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
	}
}
