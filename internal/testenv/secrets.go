package testenv

import "github.com/crier-push/crier/secrets"

// SecretKey is the master key the tests seal provider credentials with:
// base64 of "crier-test-master-key-not-secret", fixed so that the crier
// processes tests start (given it as CRIER_SECRET_KEY) open what the
// tests stored, and the other way round.
const SecretKey = "Y3JpZXItdGVzdC1tYXN0ZXIta2V5LW5vdC1zZWNyZXQ="

// Secrets is the keyring of SecretKey, for the tests' own storage.Config
// and server.Config.
func Secrets() *secrets.Keyring {
	k, err := secrets.ParseKey(SecretKey)
	if err != nil {
		panic(err) // a constant
	}
	return secrets.NewKeyring(k)
}
