package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// Bounds on what one device may choose.
const (
	maxPlaces  = 10
	maxChoices = 200
	// maxToken is far above real tokens (FCM's are about 160 bytes, APNs'
	// 64 to 200 hex digits) and below what a Postgres index entry holds.
	maxToken = 1024
)

var (
	installationRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	clockRE        = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// deviceBody is PUT /v1/devices/{installation_id}. Absent fields keep their
// stored value, so an app rotating its token sends only provider and token.
type deviceBody struct {
	Provider   *string          `json:"provider"`
	Token      *string          `json:"token"`
	Platform   *string          `json:"platform"`
	Locale     *string          `json:"locale"`
	TimeZone   *string          `json:"time_zone"`
	AppVersion *string          `json:"app_version"`
	Follows    *[]string        `json:"follows"`
	Mutes      *[]string        `json:"mutes"`
	Interests  *[]string        `json:"interests"`
	Areas      *[]string        `json:"areas"`
	Places     *[]storage.Place `json:"places"`
	// QuietHours is {"start": "22:00", "end": "07:00"}, or null to clear.
	QuietHours json.RawMessage `json:"quiet_hours"`
}

// QuietHours are a device's quiet hours as the API shows them.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Device is a device as the API shows it.
type Device struct {
	InstallationID string          `json:"installation_id"`
	Provider       crier.Provider  `json:"provider"`
	Platform       crier.Platform  `json:"platform"`
	Token          string          `json:"token"`
	Locale         string          `json:"locale"`
	TimeZone       string          `json:"time_zone"`
	AppVersion     string          `json:"app_version"`
	Follows        []string        `json:"follows"`
	Mutes          []string        `json:"mutes"`
	Interests      []string        `json:"interests"`
	Areas          []string        `json:"areas"`
	Places         []storage.Place `json:"places"`
	QuietHours     *QuietHours     `json:"quiet_hours"`
	Active         bool            `json:"active"`
	Deactivated    string          `json:"deactivated_reason,omitempty"`
}

// DeviceSecretHeader carries an installation's device secret: PUT of a new
// installation answers it once; every later request about the installation
// sends it.
const DeviceSecretHeader = "X-Device-Secret"

// deviceCreated is a new installation as PUT answers it: the device and,
// once, its secret.
type deviceCreated struct {
	Device
	Secret string `json:"device_secret"`
}

// putDevice registers an installation (201, with its device secret) or,
// with the secret, changes it (200). An installation registered before
// device secrets is claimed by sending the token it holds: the answer then
// carries its new secret.
func (s *Server) putDevice(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	inst := r.PathValue("installation_id")
	if !installationRE.MatchString(inst) {
		return crier.Invalid("installation_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
	}
	var body deviceBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	d, err := s.db.DeviceByInstallation(r.Context(), p.TenantID, inst)
	created := errors.Is(err, storage.ErrNotFound)
	if err != nil && !created {
		return err
	}
	var secret string
	switch {
	case created:
		d = storage.Device{TenantID: p.TenantID, InstallationID: inst, Locale: "nb", TimeZone: "Europe/Oslo"}
		if body.Provider == nil {
			return crier.Invalid("provider", "is required for a new device: fcm or apns")
		}
		if body.Token == nil {
			return crier.Invalid("token", "is required for a new device")
		}
	case d.SecretHash == nil:
		if err := claim(d, body); err != nil {
			return err
		}
	default:
		if err := checkSecret(r, d); err != nil {
			return err
		}
	}
	if created || d.SecretHash == nil {
		if secret, d.SecretHash, err = newDeviceSecret(); err != nil {
			return err
		}
	}
	if err := s.mergeDevice(r, &d, body); err != nil {
		return err
	}
	d, err = s.db.PutDevice(r.Context(), d)
	if err != nil {
		return err
	}
	out := deviceJSON(d)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	if secret != "" {
		writeJSON(w, status, deviceCreated{Device: out, Secret: secret})
		return nil
	}
	writeJSON(w, status, out)
	return nil
}

// newDeviceSecret makes a device secret: 256 random bits, stored as their
// SHA-256 (a slow hash buys nothing against a secret nobody can guess).
func newDeviceSecret() (secret string, hash []byte, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("device secret: %w", err)
	}
	secret = "crier_dev_" + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	return secret, sum[:], nil
}

// checkSecret refuses a request about an installation without its device
// secret: the app key alone, public as it is, only creates installations.
func checkSecret(r *http.Request, d storage.Device) error {
	got := r.Header.Get(DeviceSecretHeader)
	if got == "" {
		return crier.Errorf(crier.EUNAUTHORIZED, DeviceSecretHeader,
			"this installation is registered: send its device secret (answered when it was registered)")
	}
	sum := sha256.Sum256([]byte(got))
	if d.SecretHash == nil || subtle.ConstantTimeCompare(sum[:], d.SecretHash) != 1 {
		return crier.Forbidden(DeviceSecretHeader, "not this installation's device secret")
	}
	return nil
}

// ownSecret is checkSecret for a request that needs the installation's
// secret: an installation registered before device secrets has none to
// check and must first be claimed (claim).
func ownSecret(r *http.Request, d storage.Device) error {
	if d.SecretHash == nil {
		return crier.Errorf(crier.EUNAUTHORIZED, DeviceSecretHeader,
			"this installation was registered before device secrets: claim it with PUT and the token it holds")
	}
	return checkSecret(r, d)
}

// claim lets the app take over an installation registered before device
// secrets: it proves it is that installation by sending the token stored
// for it, which only the phone holds.
func claim(d storage.Device, b deviceBody) error {
	if b.Token == nil || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(*b.Token)), []byte(d.Token)) != 1 {
		return crier.Errorf(crier.EUNAUTHORIZED, "token",
			"this installation was registered before device secrets: claim it by sending the token it holds")
	}
	return nil
}

// mergeDevice validates the body and applies it onto d, step by step:
// how the device is reached, what it is, what its resident chose.
func (s *Server) mergeDevice(r *http.Request, d *storage.Device, b deviceBody) error {
	for _, step := range []func() error{
		func() error { return mergeReach(d, b) },
		func() error { return s.mergeProfile(r, d, b) },
		func() error { return s.mergeChoices(r, d, b) },
		func() error { return mergePlaces(d, b.Places) },
		func() error { return mergeQuietHours(d, b.QuietHours) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// mergeReach applies the provider, the platform and the token.
func mergeReach(d *storage.Device, b deviceBody) error {
	if b.Provider != nil {
		provider, err := crier.ParseProvider(*b.Provider)
		if err != nil {
			return err
		}
		// The platform follows from the provider unless the app says
		// otherwise (FCM also reaches iOS); a token rotation on the same
		// provider keeps it.
		if provider != d.Provider {
			d.Platform = provider.DefaultPlatform()
		}
		d.Provider = provider
	}
	if b.Platform != nil {
		platform := crier.Platform(*b.Platform)
		if platform != crier.Android && platform != crier.IOS {
			return crier.Invalid("platform", "must be android or ios, not %q", *b.Platform)
		}
		if d.Provider == crier.APNs && platform != crier.IOS {
			return crier.Invalid("platform", "apns devices are ios")
		}
		d.Platform = platform
	}
	if b.Token != nil {
		d.Token = strings.TrimSpace(*b.Token)
		// A token the app sends is live: a device whose old token died
		// comes back with it. Other updates leave a dead device dead.
		d.Active = true
	}
	return checkToken(d.Provider, d.Token)
}

// mergeProfile applies the locale, the time zone and the app's version.
func (s *Server) mergeProfile(r *http.Request, d *storage.Device, b deviceBody) error {
	if b.Locale != nil {
		if !crier.ValidLocale(*b.Locale) {
			return crier.Invalid("locale", "must be a language tag such as nb, nn, en or en-GB, not %q", *b.Locale)
		}
		d.Locale = *b.Locale
	}
	if b.TimeZone != nil {
		ok, err := s.db.KnownTimeZone(r.Context(), *b.TimeZone)
		if err != nil {
			return err
		}
		if !ok {
			return crier.Invalid("time_zone", "must be an IANA time zone such as Europe/Oslo, not %q", *b.TimeZone)
		}
		d.TimeZone = *b.TimeZone
	}
	if b.AppVersion != nil {
		if len(*b.AppVersion) > 64 {
			return crier.Invalid("app_version", "must be at most 64 bytes")
		}
		if err := crier.CheckText("app_version", *b.AppVersion); err != nil {
			return err
		}
		d.AppVersion = *b.AppVersion
	}
	return nil
}

// mergeChoices applies the follows, mutes, areas and interests, resolving
// the slugs in one query.
func (s *Server) mergeChoices(r *http.Request, d *storage.Device, b deviceBody) error {
	choices := []struct {
		field string
		slugs *[]string
		into  *[]int64
		feed  bool
	}{{"follows", b.Follows, &d.Follows, true}, {"mutes", b.Mutes, &d.Mutes, true}, {"areas", b.Areas, &d.Areas, false}}
	var feeds, areas []string
	for _, c := range choices {
		if c.slugs == nil {
			continue
		}
		if err := checkSlugs(c.field, *c.slugs); err != nil {
			return err
		}
		if c.feed {
			feeds = append(feeds, *c.slugs...)
		} else {
			areas = append(areas, *c.slugs...)
		}
	}
	feedIDs, areaIDs, err := s.db.SlugIDs(r.Context(), d.TenantID, crier.Distinct(feeds), crier.Distinct(areas))
	if err != nil {
		return err
	}
	for _, c := range choices {
		if c.slugs == nil {
			continue
		}
		ids := feedIDs
		if !c.feed {
			ids = areaIDs
		}
		var missing []string
		*c.into = []int64{}
		for _, sl := range crier.Distinct(*c.slugs) {
			id, ok := ids[sl]
			if !ok {
				missing = append(missing, sl)
			}
			*c.into = append(*c.into, id)
		}
		if len(missing) > 0 {
			return crier.Invalid(c.field, "unknown: %s", strings.Join(missing, ", "))
		}
	}
	if b.Interests != nil {
		if len(*b.Interests) > maxChoices {
			return crier.Invalid("interests", "at most %d interests", maxChoices)
		}
		if err := crier.CheckTags("interests", *b.Interests); err != nil {
			return err
		}
		d.Interests = crier.Distinct(*b.Interests)
	}
	return nil
}

// mergePlaces applies the named places.
func mergePlaces(d *storage.Device, places *[]storage.Place) error {
	if places == nil {
		return nil
	}
	if len(*places) > maxPlaces {
		return crier.Invalid("places", "at most %d places", maxPlaces)
	}
	for i, pl := range *places {
		f := fmt.Sprintf("places[%d]", i)
		switch {
		case pl.Name == "" || len(pl.Name) > 64:
			return crier.Invalid(f+".name", "must be 1 to 64 bytes")
		case crier.CheckText(f+".name", pl.Name) != nil:
			return crier.CheckText(f+".name", pl.Name)
		case pl.Lat < -90 || pl.Lat > 90:
			return crier.Invalid(f+".lat", "must be between -90 and 90")
		case pl.Lon < -180 || pl.Lon > 180:
			return crier.Invalid(f+".lon", "must be between -180 and 180")
		}
	}
	d.Places = *places
	return nil
}

// mergeQuietHours applies {"start": "HH:MM", "end": "HH:MM"}, or null to
// clear them; absent keeps them.
func mergeQuietHours(d *storage.Device, raw json.RawMessage) error {
	switch {
	case len(raw) == 0:
		return nil
	case string(raw) == "null":
		d.QuietStart, d.QuietEnd = "", ""
		return nil
	}
	var q QuietHours
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return crier.Invalid("quiet_hours", `must be {"start": "HH:MM", "end": "HH:MM"} or null`)
	}
	if !clockRE.MatchString(q.Start) {
		return crier.Invalid("quiet_hours.start", "must be a time of day HH:MM, not %q", q.Start)
	}
	if !clockRE.MatchString(q.End) {
		return crier.Invalid("quiet_hours.end", "must be a time of day HH:MM, not %q", q.End)
	}
	if q.Start == q.End {
		return crier.Invalid("quiet_hours", "start and end must differ")
	}
	d.QuietStart, d.QuietEnd = q.Start, q.End
	return nil
}

func checkToken(provider crier.Provider, token string) error {
	switch {
	case token == "":
		return crier.Invalid("token", "must not be empty")
	case len(token) > maxToken:
		return crier.Invalid("token", "must be at most %d bytes", maxToken)
	case provider == crier.APNs:
		if _, err := hex.DecodeString(token); err != nil || len(token) < 64 || len(token) > 200 {
			return crier.Invalid("token", "an apns device token must be 64 to 200 hexadecimal characters")
		}
	case strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f || r == utf8.RuneError }) >= 0:
		return crier.Invalid("token", "must not contain white space or control characters")
	}
	return nil
}

// checkSlugs refuses too many choices or one that is not a slug.
func checkSlugs(field string, slugs []string) error {
	if len(slugs) > maxChoices {
		return crier.Invalid(field, "at most %d entries", maxChoices)
	}
	for i, sl := range slugs {
		if !crier.ValidSlug(sl) {
			return crier.Invalid(fmt.Sprintf("%s[%d]", field, i), "must be a slug (a-z, 0-9, -), not %q", sl)
		}
	}
	return nil
}

func deviceJSON(d storage.Device) Device {
	out := Device{InstallationID: d.InstallationID, Provider: d.Provider, Platform: d.Platform, Token: d.Token,
		Locale: d.Locale, TimeZone: d.TimeZone, AppVersion: d.AppVersion, Interests: nonNil(d.Interests),
		Places: nonNil(d.Places), Active: d.Active, Deactivated: d.DeactivatedReason,
		Follows: nonNil(d.FollowSlugs), Mutes: nonNil(d.MuteSlugs), Areas: nonNil(d.AreaSlugs)}
	if d.QuietStart != "" {
		out.QuietHours = &QuietHours{Start: d.QuietStart, End: d.QuietEnd}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ownDevice is the installation of the path, if the request carries its
// device secret.
func (s *Server) ownDevice(r *http.Request) (storage.Device, error) {
	inst := r.PathValue("installation_id")
	d, err := s.db.DeviceByInstallation(r.Context(), principal(r.Context()).TenantID, inst)
	if err != nil {
		return d, err
	}
	return d, ownSecret(r, d)
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.ownDevice(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deviceJSON(d))
	return nil
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.ownDevice(r); err != nil {
		return err
	}
	if err := s.db.DeleteDevice(r.Context(), principal(r.Context()).TenantID, r.PathValue("installation_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
