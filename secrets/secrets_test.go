package secrets_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crier-push/crier/secrets"
)

func mustKey(t testing.TB, text string) secrets.Key {
	t.Helper()
	k, err := secrets.ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSealOpen: a value opens with the ad it was sealed with, under the
// current key or an older one, and nowhere else.
func TestSealOpen(t *testing.T) {
	t.Parallel()
	a, b := mustKey(t, secrets.NewKey()), mustKey(t, secrets.NewKey())
	plain := []byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n")
	ad := []byte("tenants.apns_key_p8:1")
	sealed, err := secrets.NewKeyring(a).Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(plain)+secrets.Overhead || sealed[0] != secrets.Version {
		t.Fatalf("sealed %d bytes, version %d: want %d bytes, version %d", len(sealed), sealed[0], len(plain)+secrets.Overhead, secrets.Version)
	}
	if id, err := secrets.KeyOf(sealed); err != nil || id != a.ID() {
		t.Errorf("KeyOf = %v, %v; want %v", id, err, a.ID())
	}
	if bytes.Contains(sealed, []byte("BEGIN")) || bytes.Contains(sealed, plain[28:60]) {
		t.Errorf("the sealed value shows the plaintext")
	}
	again, _ := secrets.NewKeyring(a).Seal(plain, ad)
	if bytes.Equal(sealed, again) {
		t.Errorf("two seals of one plaintext are equal: the nonce is not fresh")
	}

	tests := []struct {
		name   string
		ring   *secrets.Keyring
		sealed []byte
		ad     string
		want   error // nil: opens to plain
	}{
		{"same key", secrets.NewKeyring(a), sealed, string(ad), nil},
		{"as an older key", secrets.NewKeyring(b, a), sealed, string(ad), nil},
		{"wrong key", secrets.NewKeyring(b), sealed, string(ad), secrets.ErrUnknownKey},
		{"no key", nil, sealed, string(ad), secrets.ErrNoKey},
		{"other tenant", secrets.NewKeyring(a), sealed, "tenants.apns_key_p8:2", secrets.ErrNotAuthentic},
		{"other column", secrets.NewKeyring(a), sealed, "tenants.fcm_service_account:1", secrets.ErrNotAuthentic},
		{"altered", secrets.NewKeyring(a), flip(sealed, len(sealed)/2), string(ad), secrets.ErrNotAuthentic},
		{"nonce altered", secrets.NewKeyring(a), flip(sealed, 12), string(ad), secrets.ErrNotAuthentic},
		{"version altered", secrets.NewKeyring(a), flip(sealed, 0), string(ad), secrets.ErrMalformed},
		{"truncated", secrets.NewKeyring(a), sealed[:secrets.Overhead-1], string(ad), secrets.ErrMalformed},
		{"empty", secrets.NewKeyring(a), nil, string(ad), secrets.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.ring.Open(tt.sealed, []byte(tt.ad))
			if tt.want == nil {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Open = %q, %v; want the plaintext", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := secrets.NewKeyring(b).Open(sealed, ad); !strings.Contains(err.Error(), a.ID().String()) {
		t.Errorf("wrong key: %v; want the error to name the key the value needs, %s", err, a.ID())
	}
	if _, err := (*secrets.Keyring)(nil).Seal(plain, ad); !errors.Is(err, secrets.ErrNoKey) ||
		!strings.Contains(err.Error(), "CRIER_SECRET_KEY") {
		t.Errorf("Seal without a key: %v; want ErrNoKey saying what to set", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// TestTruncated: every prefix of a sealed value is refused with an error,
// never a panic.
func TestTruncated(t *testing.T) {
	t.Parallel()
	ring := secrets.NewKeyring(mustKey(t, secrets.NewKey()))
	sealed, err := ring.Seal([]byte("a secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(sealed) {
		if got, err := ring.Open(sealed[:n], nil); err == nil {
			t.Errorf("%d of %d bytes opened to %q", n, len(sealed), got)
		}
	}
}

// FuzzOpen: whatever the bytes, Open returns an error, or the one
// plaintext ever sealed under its key with its ad; it never panics.
func FuzzOpen(f *testing.F) {
	ring := secrets.NewKeyring(mustKey(f, "Y3JpZXItdGVzdC1tYXN0ZXIta2V5LW5vdC1zZWNyZXQ="))
	const secret = `{"type":"service_account"}`
	sealed, err := ring.Seal([]byte(secret), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, []byte("ad"))
	f.Add(sealed[:secrets.Overhead], []byte("ad"))
	f.Add([]byte{secrets.Version}, []byte(nil))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----"), []byte("ad"))
	f.Fuzz(func(t *testing.T, b, ad []byte) {
		plain, err := ring.Open(b, ad)
		if err != nil {
			return
		}
		if string(plain) != secret || string(ad) != "ad" {
			t.Fatalf("%x with ad %q opened to %q", b, ad, plain)
		}
	})
}

// TestKeyNeverShown: a key, a keyring, and a struct that holds them print
// and log their ids only, whatever the verb; a bad key's error does not
// repeat it.
func TestKeyNeverShown(t *testing.T) {
	t.Parallel()
	text := secrets.NewKey()
	raw, _ := base64.StdEncoding.DecodeString(text)
	k := mustKey(t, text)
	ring := secrets.NewKeyring(k, mustKey(t, secrets.NewKey()))
	holder := struct {
		Key  secrets.Key
		Ring *secrets.Keyring
	}{k, ring}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("keys", "key", k, "ring", ring, "holder", holder)
	shown := logged.String()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		shown += fmt.Sprintf(verb, k) + fmt.Sprintf(verb, ring) + fmt.Sprintf(verb, holder)
	}
	for _, leak := range []string{text, hex.EncodeToString(raw), string(raw[:8])} {
		if strings.Contains(shown, leak) {
			t.Fatalf("the key is shown:\n%s", shown)
		}
	}
	if !strings.Contains(shown, k.ID().String()) {
		t.Errorf("the key's id is not shown:\n%s", shown)
	}

	for _, bad := range []string{"not base64!" + text, base64.StdEncoding.EncodeToString(raw[:31]), text + text} {
		_, err := secrets.ParseKey(bad)
		if err == nil || strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), text) {
			t.Errorf("ParseKey(bad) = %v: want an error that does not repeat the key", err)
		}
	}
}

// TestParseKeys: keys a line, or separated by commas or spaces, with
// comments; the order is kept.
func TestParseKeys(t *testing.T) {
	t.Parallel()
	a, b, c := secrets.NewKey(), secrets.NewKey(), secrets.NewKey()
	keys, err := secrets.ParseKeys("# the current key\n" + a + "\n\n  " + b + ", " + c + " # older\n")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID().String())
	}
	want := []string{mustKey(t, a).ID().String(), mustKey(t, b).ID().String(), mustKey(t, c).ID().String()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if _, err := secrets.ParseKeys(a + "\n" + "short"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad second line: %v; want an error naming line 2", err)
	}
	ring := secrets.NewKeyring(keys[0], keys[0], keys[1])
	if len(ring.IDs()) != 2 || ring.Current() != keys[0].ID() {
		t.Errorf("keyring %v: want the current key once, then the older", ring)
	}
}

// TestKeyFile: a new key file is the owner's only and is never
// overwritten; it reads back as one key.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state", "secret.key")
	if err := secrets.CreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	if err := secrets.CreateKeyFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second CreateKeyFile: %v, want fs.ErrExist", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("the key file was overwritten")
	}
	keys, err := secrets.ReadKeyFile(path)
	if err != nil || len(keys) != 1 {
		t.Fatalf("ReadKeyFile = %v, %v; want one key", keys, err)
	}
	empty := filepath.Join(t.TempDir(), "empty.key")
	os.WriteFile(empty, []byte("# nothing yet\n"), 0o600) //nolint:errcheck // read below
	if _, err := secrets.ReadKeyFile(empty); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("an empty key file: %v", err)
	}
}
