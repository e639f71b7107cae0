package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Defaults of a new state directory.
const (
	DefaultProjectID = "crier-emulator"
	DefaultTeamID    = "EMUTEAM001"
	DefaultKeyID     = "EMUKEY0001"
	DefaultTopic     = "no.crier.app"
)

// Files of a state directory.
const (
	CertFile           = "ca.pem"               // the APNs TLS certificate clients trust (0644)
	CertKeyFile        = "ca-key.pem"           // its private key (0600)
	ServiceAccountFile = "service-account.json" // the FCM service account (0600)
	APNsKeyFile        = "apns-key.p8"          // the APNs signing key (0600)
	APNsInfoFile       = "apns.json"            // team id, key id and topics of the key (0644)
)

// State is what a standalone emulator process shares with the processes
// that use it (e.g. `crier emulator --state DIR` and `crier serve`): the TLS
// certificate of the APNs side and one set of credentials for each
// provider, kept as files in Dir.
type State struct {
	Dir            string
	CertPEM        []byte
	KeyPEM         []byte
	ServiceAccount []byte // JSON key file
	ProjectID      string
	APNsKey        []byte // .p8
	TeamID         string
	KeyID          string
	Topics         []string
}

type apnsInfo struct {
	TeamID string   `json:"team_id"`
	KeyID  string   `json:"key_id"`
	Topics []string `json:"topics"`
}

// LoadOrCreateState loads the state kept in dir, creating dir and whatever
// files are missing: a self-signed certificate, a service account for
// DefaultProjectID and an APNs key for DefaultTeamID, DefaultKeyID and
// DefaultTopic. Secrets are written 0600.
//
// The service account's token_uri is rewritten when an emulator using the
// state starts, so it names that emulator's token endpoint; give the
// emulator a fixed FCM address so that it stays valid across restarts.
func LoadOrCreateState(dir string) (*State, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	st := &State{Dir: dir}
	var err error
	st.CertPEM, st.KeyPEM, err = loadOrCreatePair(filepath.Join(dir, CertFile), filepath.Join(dir, CertKeyFile),
		func() ([]byte, []byte, error) { return newSelfSignedCert(time.Now()) })
	if err != nil {
		return nil, fmt.Errorf("state tls certificate: %w", err)
	}
	st.ServiceAccount, err = loadOrCreate(filepath.Join(dir, ServiceAccountFile), 0o600,
		func() ([]byte, error) { return newServiceAccountJSON(DefaultProjectID, "http://127.0.0.1/token") })
	if err != nil {
		return nil, fmt.Errorf("state service account: %w", err)
	}
	var sa serviceAccountJSON
	if err := json.Unmarshal(st.ServiceAccount, &sa); err != nil {
		return nil, fmt.Errorf("state service account: parse: %w", err)
	}
	st.ProjectID = sa.ProjectID
	st.APNsKey, err = loadOrCreate(filepath.Join(dir, APNsKeyFile), 0o600, newAPNsKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("state apns key: %w", err)
	}
	infoJSON, err := loadOrCreate(filepath.Join(dir, APNsInfoFile), 0o644, func() ([]byte, error) {
		return json.MarshalIndent(apnsInfo{TeamID: DefaultTeamID, KeyID: DefaultKeyID, Topics: []string{DefaultTopic}}, "", "  ")
	})
	if err != nil {
		return nil, fmt.Errorf("state apns info: %w", err)
	}
	var info apnsInfo
	if err := json.Unmarshal(infoJSON, &info); err != nil {
		return nil, fmt.Errorf("state apns info: parse: %w", err)
	}
	st.TeamID, st.KeyID, st.Topics = info.TeamID, info.KeyID, info.Topics
	return st, nil
}

// ServiceAccountPath is the path of the service account JSON key file.
func (s *State) ServiceAccountPath() string { return filepath.Join(s.Dir, ServiceAccountFile) }

// CertPath is the path of the certificate clients must trust.
func (s *State) CertPath() string { return filepath.Join(s.Dir, CertFile) }

// APNsKeyPath is the path of the .p8 key.
func (s *State) APNsKeyPath() string { return filepath.Join(s.Dir, APNsKeyFile) }

// pointAt rewrites the service account file with tokenURI as its token_uri.
func (s *State) pointAt(tokenURI string) error {
	var sa map[string]any
	if err := json.Unmarshal(s.ServiceAccount, &sa); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if sa["token_uri"] == tokenURI {
		return nil
	}
	sa["token_uri"] = tokenURI
	out, err := json.MarshalIndent(sa, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	if err := writeFileAtomic(s.ServiceAccountPath(), out, 0o600); err != nil {
		return err
	}
	s.ServiceAccount = out
	return nil
}

func loadOrCreate(path string, perm os.FileMode, create func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b, err = create()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, b, perm); err != nil {
		return nil, err
	}
	return b, nil
}

func loadOrCreatePair(certPath, keyPath string, create func() ([]byte, []byte, error)) ([]byte, []byte, error) {
	c, errC := os.ReadFile(certPath)
	k, errK := os.ReadFile(keyPath)
	if errC == nil && errK == nil {
		return c, k, nil
	}
	c, k, err := create()
	if err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(keyPath, k, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(certPath, c, 0o644); err != nil {
		return nil, nil, err
	}
	return c, k, nil
}

// writeFileAtomic writes through a temporary file, so that a process
// reading the state never sees half a file.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
