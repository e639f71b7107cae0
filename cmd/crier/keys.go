package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crier-push/crier/storage"
)

// The operator's key and audit commands. Every change they make is in the
// audit log as the operator's, one request id for each run of a command.

func cmdKey(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	const want = "key create, key list, key revoke or key rotate"
	if len(args) == 0 {
		return fmt.Errorf("key: want a subcommand: %s", want)
	}
	fs := newFlags("key "+args[0], stderr)
	var c common
	c.register(fs, getenv)
	switch args[0] {
	case "create":
		return keyCreate(ctx, fs, c, args[1:], stdout, stderr)
	case "list":
		tenant := fs.String("tenant", "", "only this tenant's keys (slug); default every tenant's")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return keyList(ctx, c, *tenant, stdout)
	case "revoke", "rotate":
		tenant := fs.String("tenant", "", "look for the key in this tenant only (slug)")
		grace := fs.Duration("grace", 0, "let the old key work this long yet, e.g. 24h (default: refused at once)")
		pos, err := parseWithArgs(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("key %s: want one key: its id, its prefix or the key itself", args[0])
		}
		if *grace < 0 {
			return fmt.Errorf("key %s: -grace must not be negative", args[0])
		}
		return keyChange(ctx, c, args[0], *tenant, pos[0], *grace, stdout, stderr)
	}
	return fmt.Errorf("key: unknown subcommand %q: want %s", args[0], want)
}

// parseWithArgs parses flags given before, between or after the positional
// arguments, and returns those.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func keyCreate(ctx context.Context, fs *flag.FlagSet, c common, args []string, stdout, stderr io.Writer) error {
	tenant := fs.String("tenant", "", "tenant slug")
	publisher := fs.String("publisher", "", "publisher slug for a publisher key; none for an app key")
	label := fs.String("label", "", "whose key it is: the person or system (default the publisher's slug, or app)")
	fs.StringVar(label, "name", "", "the same as -label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "tenant"); err != nil {
		return err
	}
	return withTenant(ctx, c, *tenant, func(db *storage.DB, t storage.Tenant) error {
		nk := storage.NewKey{TenantID: t.ID, Label: *label}
		if *publisher != "" {
			p, err := db.PublisherBySlug(ctx, t.ID, *publisher)
			if err != nil {
				return err
			}
			nk.PublisherID = &p.ID
		}
		if strings.TrimSpace(nk.Label) == "" {
			nk.Label = "app"
			if *publisher != "" {
				nk.Label = *publisher
			}
			fmt.Fprintf(stderr, "no -label given: the key is labelled %q\n", nk.Label)
		}
		_, secret, err := db.CreateKey(ctx, storage.Operator(storage.NewRequestID()), nk)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintln(stderr, "keep this key: it is stored hashed and cannot be shown again")
		return nil
	})
}

func keyList(ctx context.Context, c common, tenant string, stdout io.Writer) error {
	db, err := openDB(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	tenantID, err := optionalTenant(ctx, db, tenant)
	if err != nil {
		return err
	}
	keys, err := db.Keys(ctx, tenantID)
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tKIND\tPUBLISHER\tPREFIX\tLABEL\tCREATED\tLAST USED\tREVOKED")
	for _, k := range keys {
		revoked := showTime(k.RevokedAt)
		if k.RevokedAt != nil && k.RevokedAt.After(now) {
			revoked += " (grace)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.TenantSlug, k.Kind, orDash(k.PublisherSlug),
			k.Prefix, k.Label, showTime(&k.CreatedAt), showTime(k.LastUsedAt), revoked)
	}
	return tw.Flush()
}

// keyChange revokes or rotates the key ref names.
func keyChange(ctx context.Context, c common, what, tenant, ref string, grace time.Duration, stdout, stderr io.Writer) error {
	db, err := openDB(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	tenantID, err := optionalTenant(ctx, db, tenant)
	if err != nil {
		return err
	}
	k, err := db.FindKey(ctx, tenantID, ref)
	if err != nil {
		return err
	}
	by := storage.Operator(storage.NewRequestID())
	if what == "revoke" {
		old, err := db.RevokeKey(ctx, by, k.TenantID, k.ID, grace)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %d (%s, %q, tenant %s) revoked from %s\n", old.ID, old.Prefix, old.Label, old.TenantSlug, showTime(old.RevokedAt))
		return nil
	}
	fresh, secret, old, err := db.RotateKey(ctx, by, k.TenantID, k.ID, grace)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "key %d (%s, %q, tenant %s) replaced by key %d (%s), printed above: keep it, it cannot be shown again; the old key is revoked from %s\n",
		old.ID, old.Prefix, old.Label, old.TenantSlug, fresh.ID, fresh.Prefix, showTime(old.RevokedAt))
	return nil
}

func cmdAudit(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlags("audit", stderr)
	var c common
	c.register(fs, getenv)
	tenant := fs.String("tenant", "", "only this tenant's entries (slug); default every tenant's")
	since := fs.String("since", "", "only entries from this time on: RFC 3339 (2025-03-01T08:00:00Z) or a duration back from now (24h)")
	action := fs.String("action", "", fmt.Sprintf("only entries of this action: one of %v", storage.AuditActions))
	limit := fs.Int("limit", 100, "at most this many entries, newest first")
	before := fs.Int64("before", 0, "only entries older than this entry id (the next page)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	aq := storage.AuditQuery{Action: storage.AuditAction(*action), Limit: *limit, Before: *before}
	if *limit < 1 {
		return fmt.Errorf("audit: -limit must be positive")
	}
	if *since != "" {
		t, err := sinceTime(*since, time.Now())
		if err != nil {
			return fmt.Errorf("audit: -since %q: want an RFC 3339 time or a duration such as 24h", *since)
		}
		aq.Since = t
	}
	db, err := openDB(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	if aq.TenantID, err = optionalTenant(ctx, db, *tenant); err != nil {
		return err
	}
	entries, err := db.AuditLog(ctx, aq)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tTENANT\tBY\tACTION\tOBJECT\tREQUEST\tDETAIL")
	for _, e := range entries {
		by := "operator"
		if e.KeyID != nil {
			by = fmt.Sprintf("key %d %q", *e.KeyID, e.KeyLabel)
			if e.PublisherSlug != "" {
				by += " of " + e.PublisherSlug
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, showTime(&e.At), e.TenantSlug, by, e.Action,
			orDash(e.Object), orDash(e.RequestID), e.Detail)
	}
	return tw.Flush()
}

// sinceTime reads -since: an RFC 3339 time, or a duration back from now.
func sinceTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// showTime shows a time in UTC, "-" for none.
func showTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orDash is s, or "-" for none.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// optionalTenant is the id of the tenant a -tenant flag names, 0 (every
// tenant) when it names none.
func optionalTenant(ctx context.Context, db *storage.DB, slug string) (int64, error) {
	if slug == "" {
		return 0, nil
	}
	t, err := db.TenantBySlug(ctx, slug)
	return t.ID, err
}
