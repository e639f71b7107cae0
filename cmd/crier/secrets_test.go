package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/secrets"
	"github.com/crier-push/crier/storage"
)

// with is the CLI with some variables of its environment changed ("":
// unset).
func (c *cli) with(vars map[string]string) *cli {
	base := c.getenv
	return &cli{t: c.t, dbURL: c.dbURL, getenv: func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return base(k)
	}}
}

// fails runs a command that must fail, and returns its error.
func (c *cli) fails(args ...string) error {
	c.t.Helper()
	err := run(context.Background(), args, c.getenv, io.Discard, io.Discard)
	if err == nil {
		c.t.Fatalf("crier %s: no error", strings.Join(args, " "))
	}
	return err
}

func keyID(t *testing.T, text string) string {
	t.Helper()
	k, err := secrets.ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID().String()
}

// TestSecretsRotateCommand: an operator sets a tenant's credentials, makes
// a new master key, and rotates to it with the old key given as
// CRIER_SECRET_KEY_OLD, then again with a key file holding both; each
// rotation re-seals the three secrets, a second one nothing, and the last
// key alone reads them.
func TestSecretsRotateCommand(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	emu := testenv.StartEmulator(t, emulator.Config{})
	dir := t.TempDir()
	sa, err := emu.NewServiceAccount("rotate-project")
	if err != nil {
		t.Fatal(err)
	}
	p8, err := emu.NewAPNsKey("TEAM123456", "KEY1234567", "no.example.app")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c.run("migrate")
	c.run("tenant", "create", "-slug", "horten", "-name", "Horten kommune")
	c.run("tenant", "fcm", "-slug", "horten", "-project", "rotate-project", "-service-account", write("sa.json", sa))
	c.run("tenant", "apns", "-slug", "horten", "-key", write("key.p8", p8), "-key-id", "KEY1234567", "-team-id", "TEAM123456",
		"-topic", "no.example.app", "-ca", write("ca.pem", emu.CACertPEM()))

	second := strings.TrimSpace(c.run("secrets", "new-key"))
	rotated := c.with(map[string]string{envSecretKey: second, envSecretKeyOld: testenv.SecretKey})
	out := rotated.run("secrets", "rotate")
	for _, want := range []string{"sealed under master key " + keyID(t, second), "re-sealed 3 from key " + keyID(t, testenv.SecretKey), "no longer needed"} {
		if !strings.Contains(out, want) {
			t.Errorf("secrets rotate said %q; want it to say %q", out, want)
		}
	}
	if out := rotated.run("secrets", "rotate"); !strings.Contains(out, "none re-sealed, 0 sealed from plaintext, 3 already under it") {
		t.Errorf("second secrets rotate said %q; want nothing re-sealed", out)
	}
	err = c.with(map[string]string{envSecretKey: second}).fails("tenant", "fcm", "-slug", "horten", "-project", "p", "-service-account", "/nonexistent")
	if !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("tenant fcm: %v", err)
	}

	// The next rotation from a key file: the new key first, then the old.
	keyFile := filepath.Join(dir, "keys", "secret.key")
	if out := c.run("secrets", "new-key", "-file", keyFile); !strings.Contains(out, keyFile) {
		t.Errorf("secrets new-key -file said %q", out)
	}
	fileKeys, err := secrets.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	third := fileKeys[0]
	f, err := os.OpenFile(keyFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(second + " # before the rotation\n") //nolint:errcheck // read back below
	f.Close()
	fromFile := c.with(map[string]string{envSecretKey: "", envSecretKeyFile: keyFile})
	if out := fromFile.run("secrets", "rotate"); !strings.Contains(out, "re-sealed 3 from key "+keyID(t, second)) {
		t.Errorf("secrets rotate from the key file said %q", out)
	}

	// The old keys are not needed any more: the third alone reads.
	db, err := storage.Open(context.Background(), storage.Config{URL: c.dbURL, MaxConns: 2, Secrets: secrets.NewKeyring(third)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	tn, err := db.TenantBySlug(context.Background(), "horten")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := db.TenantCredentials(context.Background(), tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{string(sa), string(p8), string(emu.CACertPEM())},
		[]string{string(creds.FCMServiceAccount), string(creds.APNsKeyP8), string(creds.APNsRootCA)}); diff != "" {
		t.Errorf("credentials after two rotations (-want +got):\n%s", diff)
	}

	// Rotating without the key the secrets are under changes nothing and
	// says which key to give.
	err = c.with(map[string]string{envSecretKey: secrets.NewKey()}).fails("secrets", "rotate")
	if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), third.ID().String()) ||
		!strings.Contains(err.Error(), envSecretKeyOld) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("secrets rotate without the old key: %v", err)
	}
}

// TestSecretKeyConfig: the master key's settings refused, each error
// naming the variable and never repeating its value; and what needs a key
// says so when there is none.
func TestSecretKeyConfig(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.run("migrate")
	c.run("tenant", "create", "-slug", "re", "-name", "Re kommune")
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if err := secrets.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	notAKey := "c2hvcnQ=" // base64 of "short"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"both key and file", map[string]string{envSecretKeyFile: keyFile}, []string{"secrets", "rotate"},
			[]string{envSecretKey, envSecretKeyFile, "set one"}},
		{"key too short", map[string]string{envSecretKey: notAKey}, []string{"tenant", "rate", "-slug", "re", "-per-second", "5"},
			[]string{envSecretKey, "5 bytes, want 32"}},
		{"bad old key", map[string]string{envSecretKeyOld: "not base64!"}, []string{"secrets", "rotate"},
			[]string{envSecretKeyOld, "not standard base64"}},
		{"old key alone", map[string]string{envSecretKey: "", envSecretKeyOld: testenv.SecretKey}, []string{"secrets", "rotate"},
			[]string{envSecretKeyOld, "no current key"}},
		{"missing file", map[string]string{envSecretKey: "", envSecretKeyFile: "/nonexistent/secret.key"}, []string{"secrets", "rotate"},
			[]string{envSecretKeyFile, "/nonexistent/secret.key"}},
		{"no key: set fcm", map[string]string{envSecretKey: ""},
			[]string{"tenant", "fcm", "-slug", "re", "-project", "p", "-service-account", keyFile},
			[]string{"set fcm credentials", envSecretKey, envSecretKeyFile}},
		{"no key: rotate", map[string]string{envSecretKey: ""}, []string{"secrets", "rotate"}, []string{"no master key"}},
		{"no key: worker", map[string]string{envSecretKey: ""}, []string{"worker"}, []string{"worker", "no master key", envSecretKey}},
		{"no key: serve", map[string]string{envSecretKey: ""}, []string{"serve"}, []string{"serve", "no master key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := c.with(tt.env).fails(tt.args...)
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, want it to say %q", err, want)
				}
			}
			for _, v := range tt.env {
				if v != "" && !strings.Contains(strings.Join(tt.want, " "), v) && strings.Contains(err.Error(), v) {
					t.Errorf("error %q repeats the value %q", err, v)
				}
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"secrets", "new-key"}, c.getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.ParseKey(out.String()); err != nil {
		t.Errorf("secrets new-key printed %q: %v", out.String(), err)
	}
}
