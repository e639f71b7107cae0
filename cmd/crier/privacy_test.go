package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/crier-push/crier/storage"
)

// TestCLITenantPrivacy: the operator turns a tenant's ID-only pushes on and
// off; each change is stored and in the audit log, and a run without the
// flag changes nothing.
func TestCLITenantPrivacy(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.run("migrate")
	c.run("tenant", "create", "-slug", "larvik", "-name", "Larvik kommune")
	setting := func() bool {
		t.Helper()
		db, err := storage.Open(context.Background(), storage.Config{URL: c.dbURL, MaxConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tn, err := db.TenantBySlug(context.Background(), "larvik")
		if err != nil {
			t.Fatal(err)
		}
		on, err := db.TenantIDOnlyPushes(context.Background(), tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		return on
	}

	if out := c.run("tenant", "privacy", "-slug", "larvik", "-id-only=true"); !strings.Contains(out, "pushes of larvik: id-only true") {
		t.Errorf("tenant privacy on: %q", out)
	}
	if !setting() {
		t.Errorf("ID-only pushes are not on after tenant privacy -id-only=true")
	}
	err := run(context.Background(), []string{"tenant", "privacy", "-slug", "larvik"}, c.getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "missing -id-only") {
		t.Errorf("tenant privacy without -id-only: %v, want it refused", err)
	}
	err = run(context.Background(), []string{"tenant", "privacy", "-slug", "larvik", "-id-only", "maybe"}, c.getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-id-only must be true or false") {
		t.Errorf("tenant privacy -id-only maybe: %v, want it refused", err)
	}
	if !setting() {
		t.Errorf("a refused run turned ID-only pushes off")
	}
	if out := c.run("tenant", "privacy", "-slug", "larvik", "-id-only", "false"); !strings.Contains(out, "id-only false") {
		t.Errorf("tenant privacy off: %q", out)
	}
	if setting() {
		t.Errorf("ID-only pushes are still on after tenant privacy -id-only false")
	}
	out := c.run("audit", "-tenant", "larvik", "-action", "tenant.privacy")
	if strings.Count(out, "tenant.privacy") != 2 || !strings.Contains(out, `"id_only_pushes": true`) && !strings.Contains(out, `"id_only_pushes":true`) {
		t.Errorf("the audit log does not hold both changes:\n%s", out)
	}
}
