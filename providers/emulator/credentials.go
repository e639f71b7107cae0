package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"
)

// credentials holds what the emulator trusts: service accounts' public keys,
// the access tokens it issued, and APNs signing keys.
type credentials struct {
	mu       sync.Mutex
	accounts map[string]*serviceAccount // by private_key_id
	tokens   map[string]accessToken
	apnsKeys map[string]*apnsKey // by key id
}

type serviceAccount struct {
	email   string
	project string
	keyID   string
	pub     *rsa.PublicKey
}

type accessToken struct {
	project string
	email   string
	expires time.Time
}

type apnsKey struct {
	teamID string
	keyID  string
	pub    *ecdsa.PublicKey
	topics map[string]bool // empty: any topic
}

func newCredentials() *credentials {
	return &credentials{
		accounts: map[string]*serviceAccount{},
		tokens:   map[string]accessToken{},
		apnsKeys: map[string]*apnsKey{},
	}
}

// serviceAccountJSON is the file Google hands out for a service account.
type serviceAccountJSON struct {
	Type                    string `json:"type"`
	ProjectID               string `json:"project_id"`
	PrivateKeyID            string `json:"private_key_id"`
	PrivateKey              string `json:"private_key"`
	ClientEmail             string `json:"client_email"`
	ClientID                string `json:"client_id"`
	AuthURI                 string `json:"auth_uri"`
	TokenURI                string `json:"token_uri"`
	AuthProviderX509CertURL string `json:"auth_provider_x509_cert_url"`
	ClientX509CertURL       string `json:"client_x509_cert_url"`
	UniverseDomain          string `json:"universe_domain"`
}

// NewServiceAccount creates a service account for projectID, in the format
// of the JSON key files Google hands out (RSA 2048 private key, token_uri =
// e.TokenURI()), and registers its public key. Call it after Start, so that
// token_uri is known.
func (e *Emulator) NewServiceAccount(projectID string) ([]byte, error) {
	sa, err := newServiceAccountJSON(projectID, e.TokenURI())
	if err != nil {
		return nil, err
	}
	if err := e.RegisterServiceAccount(sa); err != nil {
		return nil, err
	}
	return sa, nil
}

func newServiceAccountJSON(projectID, tokenURI string) ([]byte, error) {
	if projectID == "" {
		return nil, errors.New("new service account: project id is empty")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("new service account: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("new service account: marshal key: %w", err)
	}
	email := "crier-emulator@" + projectID + ".iam.gserviceaccount.com"
	sa := serviceAccountJSON{
		Type:                    "service_account",
		ProjectID:               projectID,
		PrivateKeyID:            randomHex(20),
		PrivateKey:              string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		ClientEmail:             email,
		ClientID:                randomDigits(21),
		AuthURI:                 "https://accounts.google.com/o/oauth2/auth",
		TokenURI:                tokenURI,
		AuthProviderX509CertURL: "https://www.googleapis.com/oauth2/v1/certs",
		ClientX509CertURL:       "https://www.googleapis.com/robot/v1/metadata/x509/" + strings.ReplaceAll(email, "@", "%40"),
		UniverseDomain:          "googleapis.com",
	}
	out, err := json.MarshalIndent(sa, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("new service account: marshal json: %w", err)
	}
	return out, nil
}

// RegisterServiceAccount trusts an existing service account JSON key file
// (e.g. one read from disk): tokens signed with its key may be exchanged for
// access tokens to its project.
func (e *Emulator) RegisterServiceAccount(saJSON []byte) error {
	var sa serviceAccountJSON
	if err := json.Unmarshal(saJSON, &sa); err != nil {
		return fmt.Errorf("register service account: parse json: %w", err)
	}
	if sa.Type != "service_account" || sa.ProjectID == "" || sa.ClientEmail == "" || sa.PrivateKeyID == "" {
		return errors.New("register service account: need type service_account, project_id, client_email and private_key_id")
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return errors.New("register service account: private_key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return fmt.Errorf("register service account: parse private_key: %w", err)
		}
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return errors.New("register service account: private_key is not RSA")
	}
	e.creds.mu.Lock()
	defer e.creds.mu.Unlock()
	e.creds.accounts[sa.PrivateKeyID] = &serviceAccount{
		email: sa.ClientEmail, project: sa.ProjectID, keyID: sa.PrivateKeyID, pub: &key.PublicKey,
	}
	return nil
}

// NewAPNsKey creates an APNs signing key for teamID and keyID, as the .p8
// file Apple hands out (PKCS#8 PEM, ECDSA P-256), and registers it for the
// given topics (bundle ids; none means any topic).
func (e *Emulator) NewAPNsKey(teamID, keyID string, topics ...string) ([]byte, error) {
	p8, err := newAPNsKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := e.RegisterAPNsKey(teamID, keyID, p8, topics...); err != nil {
		return nil, err
	}
	return p8, nil
}

func newAPNsKeyPEM() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new apns key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("new apns key: marshal: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// RegisterAPNsKey trusts an existing .p8 key for teamID and keyID, for the
// given topics (none means any topic).
func (e *Emulator) RegisterAPNsKey(teamID, keyID string, p8 []byte, topics ...string) error {
	if teamID == "" || keyID == "" {
		return errors.New("register apns key: team id and key id are required")
	}
	block, _ := pem.Decode(p8)
	if block == nil {
		return errors.New("register apns key: not a PEM file")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("register apns key: parse: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return errors.New("register apns key: not an ECDSA P-256 key")
	}
	allowed := map[string]bool{}
	for _, t := range topics {
		allowed[t] = true
	}
	e.creds.mu.Lock()
	defer e.creds.mu.Unlock()
	e.creds.apnsKeys[keyID] = &apnsKey{teamID: teamID, keyID: keyID, pub: &key.PublicKey, topics: allowed}
	return nil
}

func (c *credentials) account(keyID string) (*serviceAccount, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sa, ok := c.accounts[keyID]
	return sa, ok
}

func (c *credentials) issue(tok string, at accessToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens[tok] = at
}

func (c *credentials) accessToken(tok string) (accessToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.tokens[tok]
	return at, ok
}

func (c *credentials) apnsKey(keyID string) (*apnsKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.apnsKeys[keyID]
	return k, ok
}

// newSelfSignedCert returns a PEM certificate and PKCS#8 key for the APNs
// side, valid for localhost and the loopback addresses for ten years.
func newSelfSignedCert(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "crier emulator", Organization: []string{"crier"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}
