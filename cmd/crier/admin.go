package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/storage"
)

// openDB opens the database for an operator command, with the master keys
// if any are configured.
func openDB(ctx context.Context, c common) (*storage.DB, error) {
	ring, err := c.keyring()
	if err != nil {
		return nil, err
	}
	return storage.Open(ctx, storage.Config{URL: c.DatabaseURL, MaxConns: 2, Secrets: ring})
}

func cmdTenant(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("tenant: want a subcommand: create, fcm, apns, rate, alerts or privacy")
	}
	fs := newFlags("tenant "+args[0], stderr)
	var c common
	c.register(fs, getenv)
	slug := fs.String("slug", "", "tenant slug (create) or the tenant to change")
	switch args[0] {
	case "create":
		name := fs.String("name", "", "display name")
		tz := fs.String("time-zone", "Europe/Oslo", "the tenant's time zone")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "slug", "name"); err != nil {
			return err
		}
		db, err := openDB(ctx, c)
		if err != nil {
			return err
		}
		defer db.Close()
		t, err := db.CreateTenant(ctx, *slug, *name, *tz)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s created (id %d)\n", t.Slug, t.ID)
		return nil
	case "fcm":
		project := fs.String("project", "", "Firebase project id")
		saFile := fs.String("service-account", "", "service account JSON key file")
		endpoint := fs.String("endpoint", "", "FCM v1 base URL (default Google's; the emulator's for tests)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "slug", "project", "service-account"); err != nil {
			return err
		}
		sa, err := readFile(*saFile)
		if err != nil {
			return err
		}
		return withTenant(ctx, c, *slug, func(db *storage.DB, t storage.Tenant) error {
			if err := db.SetFCM(ctx, t.ID, *project, sa, *endpoint); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "FCM credentials of %s set (project %s)\n", t.Slug, *project)
			return nil
		})
	case "apns":
		keyFile := fs.String("key", "", ".p8 signing key file")
		keyID := fs.String("key-id", "", "key id")
		teamID := fs.String("team-id", "", "team id")
		topic := fs.String("topic", "", "the app's bundle id")
		host := fs.String("host", "", "APNs host (default Apple's production host)")
		caFile := fs.String("ca", "", "extra CA certificate to trust (the emulator's ca.pem)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "slug", "key", "key-id", "team-id", "topic"); err != nil {
			return err
		}
		p8, err := readFile(*keyFile)
		if err != nil {
			return err
		}
		var ca []byte
		if *caFile != "" {
			if ca, err = readFile(*caFile); err != nil {
				return err
			}
		}
		return withTenant(ctx, c, *slug, func(db *storage.DB, t storage.Tenant) error {
			if err := db.SetAPNs(ctx, t.ID, storage.APNsSettings{KeyP8: p8, KeyID: *keyID, TeamID: *teamID,
				Topic: *topic, Host: *host, RootCA: ca}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "APNs credentials of %s set (topic %s)\n", t.Slug, *topic)
			return nil
		})
	case "rate":
		provider := fs.String("provider", "fcm", "fcm or apns")
		perSecond := fs.Int("per-second", 0, "sends per second crier allows itself for the tenant's provider (FCM's default quota is 10000)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "slug"); err != nil {
			return err
		}
		if *perSecond <= 0 {
			return fmt.Errorf("tenant rate: -per-second must be positive")
		}
		return withTenant(ctx, c, *slug, func(db *storage.DB, t storage.Tenant) error {
			if err := db.SetRateLimit(ctx, t.ID, *provider, *perSecond); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s sends of %s limited to %d a second\n", *provider, t.Slug, *perSecond)
			return nil
		})
	case "alerts":
		approval := fs.Bool("approval", false, "alerts wait for a second person's approval (a second municipality key)")
		ttl := fs.Duration("approval-ttl", 30*time.Minute, "how long an alert waits for approval before it lapses")
		language := fs.String("language", "nb", "the tenant's default language: the text a device of no language a post has gets")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "slug"); err != nil {
			return err
		}
		if *ttl < time.Minute || *ttl > 24*time.Hour {
			return fmt.Errorf("tenant alerts: -approval-ttl must be between 1m and 24h, not %s", *ttl)
		}
		if !crier.ValidLocale(*language) {
			return fmt.Errorf("tenant alerts: -language %q is no language tag (nb, en-GB)", *language)
		}
		return withTenant(ctx, c, *slug, func(db *storage.DB, t storage.Tenant) error {
			rules := storage.AlertRules{Approval: *approval, ApprovalTTL: ttl.Truncate(time.Second), Language: *language}
			if err := db.SetTenantAlertRules(ctx, t.ID, rules); err != nil {
				return err
			}
			if err := db.Record(ctx, storage.Operator(storage.NewRequestID()), storage.Event{TenantID: t.ID, Action: storage.AuditAlertRules,
				Detail: map[string]any{"approval": rules.Approval, "approval_ttl": rules.ApprovalTTL.String(), "language": rules.Language}}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "alerts of %s: approval %v (lapse after %s), default language %s\n", t.Slug, rules.Approval,
				rules.ApprovalTTL, rules.Language)
			return nil
		})
	case "privacy":
		// No default: an operator who leaves the flag out must not turn
		// a tenant's privacy setting off by accident.
		idOnly := fs.String("id-only", "", "true: pushes carry only the post id and a generic text, the app fetches the content "+
			"(emergency posts always carry their text); false: pushes carry the content")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "slug", "id-only"); err != nil {
			return err
		}
		on, err := strconv.ParseBool(*idOnly)
		if err != nil {
			return fmt.Errorf("tenant privacy: -id-only must be true or false, not %q", *idOnly)
		}
		return withTenant(ctx, c, *slug, func(db *storage.DB, t storage.Tenant) error {
			if err := db.SetTenantIDOnlyPushes(ctx, t.ID, on); err != nil {
				return err
			}
			if err := db.Record(ctx, storage.Operator(storage.NewRequestID()), storage.Event{TenantID: t.ID, Action: storage.AuditPrivacy,
				Detail: map[string]any{"id_only_pushes": on}}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "pushes of %s: id-only %v (emergency posts always carry their text)\n", t.Slug, on)
			return nil
		})
	}
	return fmt.Errorf("tenant: unknown subcommand %q: want create, fcm, apns, rate, alerts or privacy", args[0])
}

func withTenant(ctx context.Context, c common, slug string, f func(*storage.DB, storage.Tenant) error) error {
	db, err := openDB(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	t, err := db.TenantBySlug(ctx, slug)
	if err != nil {
		return err
	}
	return f(db, t)
}

func cmdPublisher(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("publisher: want: publisher create -tenant T -slug S -name N -role municipality|organisation")
	}
	fs := newFlags("publisher create", stderr)
	var c common
	c.register(fs, getenv)
	tenant := fs.String("tenant", "", "tenant slug")
	slug := fs.String("slug", "", "publisher slug")
	name := fs.String("name", "", "display name")
	role := fs.String("role", string(crier.RoleOrganisation), "municipality or organisation")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := required(fs, "tenant", "slug", "name"); err != nil {
		return err
	}
	if r := crier.Role(*role); r != crier.RoleMunicipality && r != crier.RoleOrganisation {
		return fmt.Errorf("publisher: -role must be municipality or organisation, not %q", *role)
	}
	return withTenant(ctx, c, *tenant, func(db *storage.DB, t storage.Tenant) error {
		p, err := db.CreatePublisher(ctx, t.ID, *slug, *name, crier.Role(*role))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "publisher %s (%s) created (id %d)\n", p.Slug, p.Role, p.ID)
		return nil
	})
}

func cmdFeed(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("feed: want: feed create -tenant T -publisher P -slug S -name N [-mandatory]")
	}
	fs := newFlags("feed create", stderr)
	var c common
	c.register(fs, getenv)
	tenant := fs.String("tenant", "", "tenant slug")
	publisher := fs.String("publisher", "", "owning publisher's slug")
	slug := fs.String("slug", "", "feed slug")
	name := fs.String("name", "", "display name")
	mandatory := fs.Bool("mandatory", false, "every device of the tenant gets this feed (municipality feeds only)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := required(fs, "tenant", "publisher", "slug", "name"); err != nil {
		return err
	}
	return withTenant(ctx, c, *tenant, func(db *storage.DB, t storage.Tenant) error {
		p, err := db.PublisherBySlug(ctx, t.ID, *publisher)
		if err != nil {
			return err
		}
		if *mandatory && p.Role != crier.RoleMunicipality {
			return fmt.Errorf("feed: only the municipality's feeds can be mandatory")
		}
		f, err := db.CreateFeed(ctx, t.ID, p.ID, *slug, *name, *mandatory)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "feed %s created (id %d, mandatory %v)\n", f.Slug, f.ID, f.Mandatory)
		return nil
	})
}

func cmdArea(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return fmt.Errorf("area: want: area import -tenant T -file F.geojson [-slug-property P] [-name-property P]")
	}
	fs := newFlags("area import", stderr)
	var c common
	c.register(fs, getenv)
	tenant := fs.String("tenant", "", "tenant slug")
	file := fs.String("file", "", "GeoJSON FeatureCollection of Polygons/MultiPolygons in WGS84 (- for stdin)")
	slugProp := fs.String("slug-property", "slug", "feature property that gives the area's slug")
	nameProp := fs.String("name-property", "name", "feature property that gives the area's name")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := required(fs, "tenant", "file"); err != nil {
		return err
	}
	raw, err := readFile(*file)
	if err != nil {
		return err
	}
	return withTenant(ctx, c, *tenant, func(db *storage.DB, t storage.Tenant) error {
		in, err := areas.Import(ctx, db, t.ID, raw, areas.Options{SlugProperty: *slugProp, NameProperty: *nameProp})
		if err != nil {
			return err
		}
		if err := db.Record(ctx, storage.Operator(storage.NewRequestID()), storage.AreasImported(t.ID, in)); err != nil {
			return fmt.Errorf("the areas are imported, but not recorded in the audit log: %w", err)
		}
		repaired := 0
		for _, a := range in {
			if a.Repaired {
				repaired++
			}
		}
		fmt.Fprintf(stdout, "%d areas imported into %s (%d repaired)\n", len(in), t.Slug, repaired)
		return nil
	})
}
