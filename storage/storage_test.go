package storage_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// TestConfigValidate: a config no pool can be made with is refused before
// anything is connected, naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	use := func(c storage.Config) error { _, err := storage.Open(context.Background(), c); return err }
	configtest.Refuses(t, storage.Config{URL: "postgres://nowhere.invalid/x"}, use, []configtest.Case[storage.Config]{
		{Field: "MaxConns", Change: func(c *storage.Config) { c.MaxConns = -1 }},
	})
}

// TestMaxConns: MaxConns sizes the pool when set; when it is zero, the
// URL's pool_max_conns does, but never below DefaultMaxConns.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	base, _ := testenv.DBURL(t)
	tests := []struct {
		name     string
		maxConns int32
		urlMax   string // the URL's pool_max_conns; "" for none
		want     int32
	}{
		{"default", 0, "", storage.DefaultMaxConns},
		{"url asks for fewer", 0, "5", storage.DefaultMaxConns},
		{"url asks for more", 0, "50", 50},
		{"config", 3, "", 3},
		{"config over url", 3, "50", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			if tt.urlMax != "" {
				q := u.Query()
				q.Set("pool_max_conns", tt.urlMax)
				u.RawQuery = q.Encode()
			}
			db, err := storage.Open(context.Background(), storage.Config{URL: u.String(), MaxConns: tt.maxConns})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.Pool.Config().MaxConns; got != tt.want {
				t.Errorf("MaxConns %d, want %d", got, tt.want)
			}
		})
	}
}
