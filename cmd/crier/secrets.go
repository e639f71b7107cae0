package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/crier-push/crier/secrets"
)

// The master keys come from the environment only:
//
//	CRIER_SECRET_KEY       the current key: standard base64 of 32 random bytes
//	CRIER_SECRET_KEY_FILE  instead, a file of keys (0600), one a line, the current first
//	CRIER_SECRET_KEY_OLD   older keys, comma- or space-separated, that still open
//	                       what was sealed before a rotation
const (
	envSecretKey     = "CRIER_SECRET_KEY"
	envSecretKeyFile = "CRIER_SECRET_KEY_FILE"
	envSecretKeyOld  = "CRIER_SECRET_KEY_OLD"
)

// keyring reads the master keys. With none configured it returns nil and
// no error: whatever then needs a key fails saying so (secrets.ErrNoKey).
// Its errors name the variable, never its value.
func (c common) keyring() (*secrets.Keyring, error) {
	getenv := c.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	text, file, old := getenv(envSecretKey), getenv(envSecretKeyFile), getenv(envSecretKeyOld)
	var keys []secrets.Key
	switch {
	case text != "" && file != "":
		return nil, fmt.Errorf("%s and %s are both set: set one", envSecretKey, envSecretKeyFile)
	case text != "":
		k, err := secrets.ParseKey(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envSecretKey, err)
		}
		keys = append(keys, k)
	case file != "":
		ks, err := secrets.ReadKeyFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envSecretKeyFile, err)
		}
		keys = append(keys, ks...)
	case old != "":
		return nil, fmt.Errorf("%s is set but no current key: set %s or %s too", envSecretKeyOld, envSecretKey, envSecretKeyFile)
	default:
		return nil, nil
	}
	older, err := secrets.ParseKeys(old)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envSecretKeyOld, err)
	}
	return secrets.NewKeyring(keys[0], append(keys[1:], older...)...), nil
}

func cmdSecrets(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	const want = "want a subcommand: new-key [-file F], or rotate"
	if len(args) == 0 {
		return fmt.Errorf("secrets: %s", want)
	}
	fs := newFlags("secrets "+args[0], stderr)
	switch args[0] {
	case "new-key":
		file := fs.String("file", "", "write the key to this new file (0600) instead of standard output; never overwrites")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *file == "" {
			fmt.Fprintln(stdout, secrets.NewKey())
			return nil
		}
		if err := secrets.CreateKeyFile(*file); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new master key written to %s; use it with %s=%s\n", *file, envSecretKeyFile, *file)
		return nil
	case "rotate":
		var c common
		c.register(fs, getenv)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		db, err := openDB(ctx, c)
		if err != nil {
			return err
		}
		defer db.Close()
		r, err := db.RotateSecrets(ctx)
		if err != nil {
			if errors.Is(err, secrets.ErrUnknownKey) {
				return fmt.Errorf("%w; give the key it names in %s (nothing was changed)", err, envSecretKeyOld)
			}
			return err
		}
		var from []string
		for _, id := range slices.SortedFunc(maps.Keys(r.Resealed), func(a, b secrets.ID) int { return strings.Compare(a.String(), b.String()) }) {
			from = append(from, fmt.Sprintf("%d from key %s", r.Resealed[id], id))
		}
		resealed := "none re-sealed"
		if len(from) > 0 {
			resealed = "re-sealed " + strings.Join(from, ", ")
		}
		fmt.Fprintf(stdout, "every stored secret is sealed under master key %s: %s, %d sealed from plaintext, %d already under it\n",
			r.Key, resealed, r.Sealed, r.Unchanged)
		if ring, _ := c.keyring(); len(ring.IDs()) > 1 {
			fmt.Fprintf(stdout, "the older keys are no longer needed: drop %s (or the older lines of the key file)\n", envSecretKeyOld)
		}
		return nil
	}
	return fmt.Errorf("secrets: unknown subcommand %q: %s", args[0], want)
}
