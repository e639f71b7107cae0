// Package secrets seals the secrets crier stores (its tenants' provider
// credentials) with AES-256-GCM under the operator's master key, and opens
// them again with whichever of the operator's keys sealed them, so that a
// key can be rotated.
//
// A sealed value is
//
//	version (1 byte, 1) | key id (8 bytes) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//
// The key id is the first 8 bytes of a SHA-256 of a label and the key: a
// value names the key that opens it without telling anything about the key,
// and two different keys cannot be given one id by mistake. GCM
// authenticates the version and key id with the caller's additional data
// (storage's names the tenant and the column), so a value altered, or
// moved to another row or column, does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// The sealed format, version 1.
const (
	// Version is the first byte of every sealed value. Plaintext that
	// crier stored before it sealed secrets (JSON, PEM) never starts with it.
	Version   = 1
	keySize   = 32 // AES-256
	idSize    = 8
	nonceSize = 12 // GCM's standard nonce
	tagSize   = 16
	header    = 1 + idSize
	// Overhead is what sealing adds to a plaintext.
	Overhead = header + nonceSize + tagSize
)

var (
	// ErrNoKey: no master key was configured, so nothing can be sealed or
	// opened.
	ErrNoKey = errors.New("no master key configured: provider credentials are stored encrypted; " +
		"set CRIER_SECRET_KEY or CRIER_SECRET_KEY_FILE (make a key with crier secrets new-key)")
	// ErrUnknownKey: the value was sealed under a key that is not in the
	// keyring.
	ErrUnknownKey = errors.New("sealed under a master key that is not configured")
	// ErrNotAuthentic: the key is right but the value does not open: it was
	// altered, or moved from another tenant's row or another column.
	ErrNotAuthentic = errors.New("does not open: altered, or moved from another tenant or column")
	// ErrMalformed: the value is not a sealed value (truncated, or of an
	// unknown version).
	ErrMalformed = errors.New("malformed sealed value")
)

// ID names a master key: a fingerprint, safe to show.
type ID [idSize]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Key is a master key, ready to seal and open. It prints, formats and logs
// as its id only, whatever the verb.
type Key struct {
	id   ID
	aead cipher.AEAD
}

// ParseKey reads a master key: the standard base64 of 32 random bytes
// (what NewKey and `openssl rand -base64 32` make), surrounding space
// ignored. Its errors never repeat the text.
func ParseKey(text string) (Key, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return Key{}, errors.New("master key is not standard base64 (make one with crier secrets new-key)")
	}
	if len(raw) != keySize {
		return Key{}, fmt.Errorf("master key is %d bytes, want %d (make one with crier secrets new-key)", len(raw), keySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("master key: %w", err)
	}
	sum := sha256.Sum256(append([]byte("crier secrets key id\x00"), raw...))
	k := Key{aead: aead}
	copy(k.id[:], sum[:])
	return k, nil
}

// ParseKeys reads master keys separated by newlines, spaces or commas; a
// '#' starts a comment that runs to the end of its line.
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			k, err := ParseKey(f)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// NewKey returns a new random master key, encoded as ParseKey reads it.
func NewKey() string {
	raw := make([]byte, keySize)
	rand.Read(raw) //nolint:errcheck // crypto/rand.Read never returns an error
	return base64.StdEncoding.EncodeToString(raw)
}

// ID is the key's fingerprint.
func (k Key) ID() ID { return k.id }

func (k Key) String() string { return "master key " + k.id.String() }

// Format prints the key's id only, for every verb: a key in a struct that
// is printed with %+v shows nothing of itself.
func (k Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue logs the key's id only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.id.String()) }

// Keyring is the current master key, which seals, and older keys, which
// only open what was sealed under them before a rotation. A nil *Keyring
// is no key at all: its Seal and Open return ErrNoKey.
type Keyring struct {
	keys []Key // the current key first; no id twice
}

// NewKeyring makes a keyring that seals under current and opens under it
// and the older keys.
func NewKeyring(current Key, older ...Key) *Keyring {
	r := &Keyring{}
	for _, k := range append([]Key{current}, older...) {
		if _, ok := r.key(k.id); !ok {
			r.keys = append(r.keys, k)
		}
	}
	return r
}

// Current is the id of the key that seals.
func (r *Keyring) Current() ID { return r.keys[0].id }

// IDs are the ids of the keys, the current first.
func (r *Keyring) IDs() []ID {
	if r == nil {
		return nil
	}
	ids := make([]ID, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

func (r *Keyring) String() string {
	if r == nil {
		return "no master key"
	}
	return fmt.Sprintf("master keys %v (current first)", r.IDs())
}

// Format prints the keys' ids only, for every verb.
func (r *Keyring) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue logs the keys' ids only.
func (r *Keyring) LogValue() slog.Value { return slog.StringValue(r.String()) }

func (r *Keyring) key(id ID) (Key, bool) {
	for _, k := range r.keys {
		if k.id == id {
			return k, true
		}
	}
	return Key{}, false
}

// Seal seals plaintext under the current key, bound to ad: only Open with
// the same ad opens it.
func (r *Keyring) Seal(plaintext, ad []byte) ([]byte, error) {
	if r == nil {
		return nil, ErrNoKey
	}
	k := r.keys[0]
	nonce := make([]byte, nonceSize)
	rand.Read(nonce) //nolint:errcheck // crypto/rand.Read never returns an error
	out := make([]byte, 0, Overhead+len(plaintext))
	out = append(out, Version)
	out = append(out, k.id[:]...)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, additional(out[:header], ad)), nil
}

// Open opens a value Seal sealed with the same ad, under whichever key of
// the ring sealed it.
func (r *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	id, err := KeyOf(sealed)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, ErrNoKey
	}
	k, ok := r.key(id)
	if !ok {
		return nil, fmt.Errorf("%w: the value names key %s; configured are %v", ErrUnknownKey, id, r.IDs())
	}
	plain, err := k.aead.Open(nil, sealed[header:header+nonceSize], sealed[header+nonceSize:], additional(sealed[:header], ad))
	if err != nil {
		return nil, ErrNotAuthentic
	}
	return plain, nil
}

// IsSealed reports whether b is in the sealed format (which Open may still
// refuse), rather than plaintext stored before secrets were sealed.
func IsSealed(b []byte) bool { return len(b) > 0 && b[0] == Version }

// KeyOf is the id of the key a sealed value names.
func KeyOf(sealed []byte) (ID, error) {
	switch {
	case len(sealed) == 0:
		return ID{}, fmt.Errorf("%w: empty", ErrMalformed)
	case sealed[0] != Version:
		return ID{}, fmt.Errorf("%w: version %d, want %d", ErrMalformed, sealed[0], Version)
	case len(sealed) < Overhead:
		return ID{}, fmt.Errorf("%w: truncated to %d bytes, a sealed value has at least %d", ErrMalformed, len(sealed), Overhead)
	}
	var id ID
	copy(id[:], sealed[1:header])
	return id, nil
}

// additional is what GCM authenticates besides the ciphertext: the
// value's header, then the caller's data. The header has a fixed length,
// so the two cannot run into each other.
func additional(hdr, ad []byte) []byte {
	return append(append(make([]byte, 0, len(hdr)+len(ad)), hdr...), ad...)
}
