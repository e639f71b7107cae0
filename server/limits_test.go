package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/crier-push/crier/internal/configtest"
	"github.com/crier-push/crier/server"
)

// TestLimitsConfigValidate: limits that cannot hold are refused before
// anything is connected, naming the field.
func TestLimitsConfigValidate(t *testing.T) {
	t.Parallel()
	ok := server.Config{DatabaseURL: "postgres://nowhere.invalid/x", RedisURL: "redis://nowhere.invalid:1/0"}
	use := func(c server.Config) error { _, err := server.New(context.Background(), c); return err }
	configtest.Refuses(t, ok, use, []configtest.Case[server.Config]{
		{Field: "ReadHeaderTimeout", Change: func(c *server.Config) { c.ReadHeaderTimeout = -time.Second }},
		{Field: "ReadTimeout", Change: func(c *server.Config) { c.ReadTimeout = -time.Second }},
		{Field: "IdleTimeout", Change: func(c *server.Config) { c.IdleTimeout = -time.Second }},
		{Field: "MaxHeaderBytes", Change: func(c *server.Config) { c.MaxHeaderBytes = -1 }},
		{Field: "RequestTimeout", Change: func(c *server.Config) { c.RequestTimeout = -time.Second }},
		{Field: "StatementTimeout", Change: func(c *server.Config) { c.StatementTimeout = -time.Second }},
		{Name: "WriteTimeout within the request deadline", Field: "WriteTimeout", Change: func(c *server.Config) {
			c.RequestTimeout, c.WriteTimeout = 30*time.Second, 30*time.Second
		}},
		{Name: "Previews negative", Field: "Previews", Change: func(c *server.Config) { c.Previews = -1 }},
		{Name: "Previews taking half the pool", Field: "Previews", Change: func(c *server.Config) { c.Previews = 11 }},
		{Name: "PProf without a metrics listener", Field: "PProf", Change: func(c *server.Config) { c.PProf = true }},
	})
}
