package secrets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadKeyFile reads a key file: master keys as ParseKeys reads them, the
// current key first, then any older keys still needed to open what was
// sealed before a rotation.
func ReadKeyFile(path string) ([]Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key file %s holds no key", path)
	}
	return keys, nil
}

// CreateKeyFile writes a new random master key to a new file at path,
// readable by its owner only (0600, in directories made 0700); it never
// overwrites a file.
func CreateKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create key file %s: %w; a key file is never overwritten", path, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "# crier master key (CRIER_SECRET_KEY_FILE): the current key first, then older keys\n%s\n", NewKey())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) //nolint:errcheck // a half-written key file is worse than none
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	return nil
}
