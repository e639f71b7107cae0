package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	jwtBearerGrant   = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	accessTokenLife  = time.Hour
	assertionMaxLife = time.Hour
	clockSkew        = 5 * time.Minute
)

// accepted OAuth scopes: one of them must be asked for.
var fcmScopes = []string{
	"https://www.googleapis.com/auth/firebase.messaging",
	"https://www.googleapis.com/auth/cloud-platform",
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// serveToken is Google's OAuth2 token endpoint for the JWT-bearer grant that
// service accounts use.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, "invalid_request", "Could not parse the request body.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != jwtBearerGrant {
		writeOAuthError(w, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		writeOAuthError(w, "invalid_request", "Missing required parameter: assertion")
		return
	}
	sa, code, desc := e.checkAssertion(assertion)
	if sa == nil {
		e.log.Debug("oauth grant refused", slog.String("reason", desc))
		writeOAuthError(w, code, desc)
		return
	}
	tok := "ya29.emu." + randomToken()
	e.creds.issue(tok, accessToken{project: sa.project, email: sa.email, expires: e.cfg.Now().Add(accessTokenLife)})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok,
		"expires_in":   int(accessTokenLife/time.Second) - 1,
		"token_type":   "Bearer",
	})
}

// assertionClaims are the claims Google's client libraries put in the JWT.
type assertionClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub,omitempty"`
	Iat   *int64 `json:"iat"`
	Exp   *int64 `json:"exp"`
}

func (assertionClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (assertionClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (assertionClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (assertionClaims) GetIssuer() (string, error)                   { return "", nil }
func (assertionClaims) GetSubject() (string, error)                  { return "", nil }
func (assertionClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// checkAssertion verifies a service account's signed JWT and returns the
// account, or Google's error code and description.
func (e *Emulator) checkAssertion(assertion string) (*serviceAccount, string, string) {
	var claims assertionClaims
	var sa *serviceAccount
	_, err := jwt.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		a, ok := e.creds.account(kid)
		if !ok {
			return nil, errors.New("unknown key id")
		}
		sa = a
		return a.pub, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	case err != nil && sa == nil:
		return nil, "invalid_grant", "Invalid grant: account not found"
	case err != nil:
		return nil, "invalid_grant", "Invalid JWT Signature."
	}
	if claims.Iss != sa.email {
		return nil, "invalid_grant", "Invalid JWT Signature."
	}
	if claims.Aud != e.TokenURI() {
		return nil, "invalid_grant", "Invalid JWT: Failed audience check. The expected value is " + e.TokenURI() + "."
	}
	if claims.Iat == nil || claims.Exp == nil {
		return nil, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	now := e.cfg.Now()
	iat, exp := time.Unix(*claims.Iat, 0), time.Unix(*claims.Exp, 0)
	if exp.Before(iat) || exp.Sub(iat) > assertionMaxLife || iat.After(now.Add(clockSkew)) || !exp.After(now.Add(-clockSkew)) {
		return nil, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	if !hasScope(claims.Scope) {
		return nil, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
	}
	return sa, "", ""
}

func hasScope(scope string) bool {
	for _, s := range strings.Fields(scope) {
		for _, want := range fcmScopes {
			if s == want {
				return true
			}
		}
	}
	return false
}

func writeOAuthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(oauthError{Error: code, Description: desc})
}

func randomToken() string {
	b := make([]byte, 48)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
