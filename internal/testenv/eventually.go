package testenv

import (
	"testing"
	"time"
)

// Eventually calls f every interval until it returns nil, and fails the
// test with f's last error if d passes first: the wait for asynchronous
// work, instead of a sleep.
func Eventually(t testing.TB, d, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %v", d, err)
		}
		time.Sleep(interval)
	}
}
