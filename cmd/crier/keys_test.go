package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// database opens the CLI's database for the test to look at.
func (c *cli) database() *storage.DB {
	c.t.Helper()
	db, err := storage.Open(context.Background(), storage.Config{URL: c.dbURL, MaxConns: 2})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(db.Close)
	return db
}

// refused runs a command that must fail, and returns its error.
func (c *cli) refused(args ...string) error {
	c.t.Helper()
	err := run(context.Background(), args, c.getenv, io.Discard, io.Discard)
	if err == nil {
		c.t.Fatalf("crier %s succeeded, want it to fail", strings.Join(args, " "))
	}
	return err
}

// runBoth runs a command and returns what it printed to stdout and stderr.
func (c *cli) runBoth(args ...string) (string, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, c.getenv, &out, &errOut); err != nil {
		c.t.Fatalf("crier %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String()
}

// keyRows is `crier key list`'s rows, by id, as column name to value.
func keyRows(t *testing.T, out string) map[string]map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The header's columns start where the rows' do (tabwriter pads them
	// alike); LAST USED holds a space, so split at the header's offsets.
	header := lines[0]
	cols := regexp.MustCompile(`[A-Z]+( [A-Z]+)?`).FindAllStringIndex(header, -1)
	rows := map[string]map[string]string{}
	for _, l := range lines[1:] {
		row := map[string]string{}
		for i, c := range cols {
			end := len(l)
			if i+1 < len(cols) {
				end = min(cols[i+1][0], len(l))
			}
			row[header[c[0]:c[1]]] = strings.TrimSpace(l[min(c[0], len(l)):end])
		}
		rows[row["ID"]] = row
	}
	return rows
}

// TestCLIKeysAndAudit: the operator makes, lists, rotates and revokes keys
// by id, prefix or the key itself, within a tenant when asked; the keys
// work or are refused accordingly; and `crier audit` shows every change as
// the operator's, one request id for each run.
func TestCLIKeysAndAudit(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	ctx := context.Background()
	c.run("migrate")
	c.run("tenant", "create", "-slug", "larvik", "-name", "Larvik kommune")
	c.run("tenant", "create", "-slug", "sandefjord", "-name", "Sandefjord kommune")
	c.run("publisher", "create", "-tenant", "larvik", "-slug", "kommunen", "-name", "Larvik kommune", "-role", "municipality")
	cms := strings.TrimSpace(c.run("key", "create", "-tenant", "larvik", "-publisher", "kommunen", "-label", "Kari, CMS"))
	app, note := c.runBoth("key", "create", "-tenant", "larvik")
	app = strings.TrimSpace(app)
	if !strings.Contains(note, `labelled "app"`) {
		t.Errorf("key create without -label says %q, want it to name the label given", note)
	}
	other := strings.TrimSpace(c.run("key", "create", "-tenant", "sandefjord", "-name", "Sandefjord app"))
	db := c.database()
	id := func(key string) string {
		t.Helper()
		k, err := db.FindKey(ctx, 0, key)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(k.ID)
	}
	works := func(key string) error { _, err := db.Authenticate(ctx, key); return err }

	rows := keyRows(t, c.run("key", "list", "--tenant", "larvik"))
	if len(rows) != 2 || rows[id(cms)]["LABEL"] != "Kari, CMS" || rows[id(cms)]["PUBLISHER"] != "kommunen" ||
		rows[id(app)]["LABEL"] != "app" || rows[id(app)]["KIND"] != "app" || rows[id(app)]["PUBLISHER"] != "-" {
		t.Errorf("key list --tenant larvik: %v", rows)
	}
	if !strings.HasPrefix(cms, rows[id(cms)]["PREFIX"]) || rows[id(cms)]["LAST USED"] != "-" || rows[id(cms)]["REVOKED"] != "-" {
		t.Errorf("the CMS key as listed: %v", rows[id(cms)])
	}
	if all := keyRows(t, c.run("key", "list")); len(all) != 3 || all[id(other)]["TENANT"] != "sandefjord" {
		t.Errorf("key list: %v, want the 3 keys of both tenants", all)
	}
	if err := works(cms); err != nil {
		t.Fatal(err)
	}
	if rows := keyRows(t, c.run("key", "list", "-tenant", "larvik")); rows[id(cms)]["LAST USED"] == "-" {
		t.Errorf("a used key has no LAST USED: %v", rows[id(cms)])
	}

	// Rotate by prefix, with a grace: both keys work, the old one listed
	// as in its grace.
	prefix := rows[id(cms)]["PREFIX"]
	fresh, note := c.runBoth("key", "rotate", prefix, "-grace", "1h")
	fresh = strings.TrimSpace(fresh)
	if !strings.HasPrefix(fresh, "crier_publisher_") || !strings.Contains(note, "cannot be shown again") {
		t.Fatalf("key rotate printed %q, %q", fresh, note)
	}
	if err := errors.Join(works(cms), works(fresh)); err != nil {
		t.Errorf("in the grace: %v", err)
	}
	rows = keyRows(t, c.run("key", "list", "-tenant", "larvik"))
	if !strings.HasSuffix(rows[id(cms)]["REVOKED"], "(grace)") || rows[id(fresh)]["LABEL"] != "Kari, CMS" || rows[id(fresh)]["PUBLISHER"] != "kommunen" {
		t.Errorf("after the rotation: old %v, new %v", rows[id(cms)], rows[id(fresh)])
	}
	// Revoke by id, then by the key itself: refused at once.
	if out := c.run("key", "revoke", id(cms)); !strings.Contains(out, "revoked") {
		t.Errorf("key revoke: %q", out)
	}
	if err := works(cms); !errors.Is(err, storage.ErrBadKey) {
		t.Errorf("the rotated key revoked: %v, want refused", err)
	}
	c.run("key", "revoke", "-tenant", "larvik", app)
	if err := works(app); !errors.Is(err, storage.ErrBadKey) {
		t.Errorf("the app key revoked: %v, want refused", err)
	}
	// Not found in another tenant; a prefix every key shares is not enough;
	// a revoked key is not rotated.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "revoke", "-tenant", "sandefjord", id(fresh)}, "not found"},
		{[]string{"key", "revoke", "crier_"}, "several keys"},
		{[]string{"key", "rotate", id(app)}, "is revoked"},
		{[]string{"key", "revoke"}, "want one key"},
		{[]string{"key", "revoke", "1", "2"}, "want one key"},
		{[]string{"key", "frobnicate"}, "unknown subcommand"},
		{[]string{"audit", "-since", "last tuesday"}, "-since"},
	} {
		if err := c.refused(tt.args...); !strings.Contains(err.Error(), tt.want) {
			t.Errorf("crier %v: %v, want it to say %q", tt.args, err, tt.want)
		}
	}
	if err := errors.Join(works(fresh), works(other)); err != nil {
		t.Errorf("the keys not revoked: %v", err)
	}

	// The audit log: newest first, the operator's, each run its own
	// request id, the rotation's two entries one.
	log, err := db.AuditLog(ctx, storage.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ Tenant, Action, Object string }
	var got []entry
	runs := map[string][]string{}
	for _, e := range log {
		if e.Actor != "operator" || e.KeyID != nil || e.RequestID == "" {
			t.Errorf("entry %+v: want the operator's, with a request id", e)
		}
		got = append(got, entry{e.TenantSlug, string(e.Action), e.Object})
		runs[e.RequestID] = append(runs[e.RequestID], string(e.Action)+" "+e.Object)
	}
	want := []entry{
		{"larvik", "key.revoked", id(app)},
		{"larvik", "key.revoked", id(cms)},
		{"larvik", "key.revoked", id(cms)},
		{"larvik", "key.created", id(fresh)},
		{"sandefjord", "key.created", id(other)},
		{"larvik", "key.created", id(app)},
		{"larvik", "key.created", id(cms)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit log:\n%v\nwant:\n%v", got, want)
	}
	if len(runs) != 6 || len(runs[log[2].RequestID]) != 2 {
		t.Errorf("request ids: %v, want one a run, the rotation's two entries sharing one", runs)
	}

	out := c.run("audit", "-tenant", "larvik", "-since", "1h")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "key.revoked") ||
		!strings.Contains(lines[1], "operator") || !strings.Contains(lines[1], log[0].RequestID) || strings.Contains(out, "sandefjord") {
		t.Errorf("crier audit -tenant larvik -since 1h:\n%s", out)
	}
	if out := c.run("audit", "-action", "key.created", "-limit", "2"); strings.Count(out, "key.created") != 2 || strings.Contains(out, "key.revoked") {
		t.Errorf("crier audit -action key.created -limit 2:\n%s", out)
	}
	if out := c.run("audit", "-since", "2999-01-01T00:00:00Z"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("crier audit -since the future:\n%s", out)
	}

	// The operator's area import is recorded too.
	file := filepath.Join(t.TempDir(), "areas.geojson")
	if err := os.WriteFile(file, []byte(`{"type":"FeatureCollection","features":[{"type":"Feature",
		"properties":{"slug":"sentrum","name":"Sentrum"},"geometry":{"type":"Polygon",
		"coordinates":[[[10.02,59.04],[10.05,59.04],[10.05,59.06],[10.02,59.06],[10.02,59.04]]]}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.run("area", "import", "-tenant", "larvik", "-file", file)
	if out := c.run("audit", "-tenant", "larvik", "-action", "areas.imported"); !strings.Contains(out, "operator") ||
		!strings.Contains(out, "sentrum") || strings.Count(strings.TrimSpace(out), "\n") != 1 {
		t.Errorf("crier audit -action areas.imported after an import:\n%s", out)
	}
}

// startAPIProcess runs `crier api` as a process of its own on port 0 until the
// test ends, and returns its base URL.
func startAPIProcess(t *testing.T, bin string, environ []string) string {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "api", "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), environ...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		<-exited
		if t.Failed() {
			t.Logf("crier api (pid %d):\n%s", cmd.Process.Pid, logs.String())
		}
	})
	return started(t, logs, exited)
}

// TestRevokedKeyRefusedByAnotherProcess: two `crier api` processes over one
// database; a key that one process has just accepted is revoked through
// the other (DELETE /v1/keys/{id}), or by the operator's `crier key revoke`
// process, and the first refuses it on the very next request: no process
// keeps keys of its own. Both revocations are in the audit log the first
// process serves.
func TestRevokedKeyRefusedByAnotherProcess(t *testing.T) {
	t.Parallel()
	bin := crierBinary(t)
	ctx := context.Background()
	dbURL, _ := testenv.DBURL(t)
	rds := testenv.StartRedis(t)
	db, err := storage.Open(ctx, storage.Config{URL: dbURL, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	tn := testenv.Tenant(t, db, "sandefjord", "Sandefjord kommune", "Europe/Oslo")
	muni := testenv.Publisher(t, db, tn.ID, "kommunen", "Sandefjord kommune", crier.RoleMunicipality)
	club := testenv.Publisher(t, db, tn.ID, "fotball", "Sandefjord Fotball", crier.RoleOrganisation)
	muniKey, err := db.NewAPIKey(ctx, tn.ID, &muni.ID, "cms")
	if err != nil {
		t.Fatal(err)
	}
	newKey := func(label string) (string, string) {
		k, secret, err := db.CreateKey(ctx, storage.Operator("setup"), storage.NewKey{TenantID: tn.ID, PublisherID: &club.ID, Label: label})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(k.ID), secret
	}
	byAPI, byAPIKey := newKey("revoked through the API")
	byCLI, byCLIKey := newKey("revoked by the operator")

	environ := []string{"CRIER_DATABASE_URL=" + dbURL, "CRIER_REDIS_URL=" + rds.URL()}
	a, b := startAPIProcess(t, bin, environ), startAPIProcess(t, bin, environ)
	status := func(base, key string) int {
		t.Helper()
		code, _ := request(t, base, "GET", "/v1/areas", key, "")
		return code
	}
	for _, k := range []string{byAPIKey, byCLIKey} {
		if code := status(b, k); code != http.StatusOK {
			t.Fatalf("process B before the revocation: %d", code)
		}
	}

	if code, body := request(t, a, "DELETE", "/v1/keys/"+byAPI, muniKey, ""); code != http.StatusOK {
		t.Fatalf("revoke through process A: %d %s", code, body)
	}
	if code := status(b, byAPIKey); code != http.StatusUnauthorized {
		t.Errorf("process B, right after A revoked the key: %d, want 401", code)
	}

	out, err := exec.Command(bin, "key", "revoke", "-database-url", dbURL, byCLI).CombinedOutput()
	if err != nil {
		t.Fatalf("crier key revoke: %v\n%s", err, out)
	}
	if code := status(b, byCLIKey); code != http.StatusUnauthorized {
		t.Errorf("process B, right after the operator revoked the key: %d, want 401", code)
	}
	if code := status(a, byCLIKey); code != http.StatusUnauthorized {
		t.Errorf("process A, right after the operator revoked the key: %d, want 401", code)
	}

	code, raw := request(t, b, "GET", "/v1/audit?action=key.revoked", muniKey, "")
	var page struct {
		Entries []struct {
			Actor, Object string
			KeyLabel      string `json:"key_label"`
		}
	}
	if err := json.Unmarshal(raw, &page); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/audit from B: %d %s", code, raw)
	}
	got := fmt.Sprint(page.Entries)
	if want := fmt.Sprint([]struct{ Actor, Object, KeyLabel string }{{"operator", byCLI, ""}, {"key", byAPI, "cms"}}); got != want {
		t.Errorf("the revocations in B's audit log: %s, want %s", got, want)
	}
}
