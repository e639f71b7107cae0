package testenv

import (
	"context"
	"testing"

	"github.com/crier-push/crier/internal/apiclient"
)

// Do sends a JSON request with key to the crier API at base and decodes
// the JSON answer into out (if not nil); it returns the status. A request
// that cannot be made, or an answer that cannot be read, fails the test.
func Do(t testing.TB, base, method, path, key string, body, out any) int {
	t.Helper()
	status, err := apiclient.Client{Base: base, Key: key}.Do(context.Background(), method, path, body, out)
	if err != nil {
		t.Fatal(err)
	}
	return status
}
