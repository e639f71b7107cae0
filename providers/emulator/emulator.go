// Package emulator stands in for Google's FCM HTTP v1 API (with its OAuth2
// token endpoint) and Apple's APNs HTTP/2 provider API, checking requests as
// strictly as the real services and answering with their real status codes
// and error bodies, so that crier's providers and the real SDKs
// (firebase-admin-go, sideshow/apns2) can be exercised end to end in tests
// and demos.
//
// The FCM side, on plain HTTP, serves
//
//	POST /token                                     OAuth2 JWT-bearer grant (RS256)
//	POST /v1/projects/{project}/messages:send       FCM HTTP v1 send
//	GET  /emulator/summary                          counts by provider and outcome
//	GET  /emulator/records[?token=T]                every request, in order
//	POST /emulator/reset                            forget records and counts, end a throttle burst
//	POST /emulator/throttle?for=D[&retry_after=S]   answer every push 429 for D (see Throttle bursts)
//	GET  /emulator/ca.pem                           the certificate of the APNs side
//
// The APNs side serves POST /3/device/{token} over HTTP/2 and TLS only, with
// ES256 provider tokens (certificate authentication is not emulated).
// Credentials are real: NewServiceAccount and NewAPNsKey create keys and
// register their public halves, so the emulator checks real signatures.
//
// # Token grammar
//
// A device token chooses what the emulator does with a push to it (unless a
// throttle burst is under way, see below):
//
//	behaviour       FCM token             APNs token (64 hex digits)
//	accept          emu-ok-<id>           e1e101 00000000 <id>
//	unregistered    emu-unregistered-<id> e1e102 ...  (FCM 404 UNREGISTERED, APNs 410)
//	bad token       emu-badtoken-<id>     e1e103 ...  (FCM 400 INVALID_ARGUMENT, APNs 400 BadDeviceToken)
//	429             emu-429.<s>-<id>      e1e104 <s>  (Retry-After: s seconds, none if 0)
//	500             emu-500-<id>          e1e105 ...
//	503             emu-503[.<s>]-<id>    e1e106 <s>  (Retry-After: s seconds, none if 0)
//	slow            emu-slow.<ms>-<id>    e1e107 <ms> (accepted after ms milliseconds)
//	other app       emu-mismatch-<id>     e1e108 ...  (FCM 403 SENDER_ID_MISMATCH, APNs 400 DeviceTokenNotForTopic)
//	flaky           emu-flaky.<pct>-<id>  e1e109 <pct> (pct % of pushes answer 503, see below)
//
// An APNs token is "e1e1", two hex digits of kind, eight of argument and 50
// of id (see APNsToken). FCM ids are letters, digits and "-_.:". A token
// outside the grammar is answered as the real services answer an unknown
// token: FCM 400 INVALID_ARGUMENT "The registration token is not a valid FCM
// registration token", APNs 400 BadDeviceToken. Use FCMToken, APNsToken and
// ParseToken rather than spelling tokens by hand.
//
// A flaky token's failures are spread evenly, not drawn at random: of every
// 100 pushes to it exactly pct answer 503 (without Retry-After), never two
// in a row below 50 %, and a hash of the token picks where in that pattern
// it starts, so about pct % of flaky tokens fail their first push (the same
// ones every run) and the others their second or a later one. Tests then
// retry, and count calls, the same way every run; the emulator counts the
// pushes to each flaky token until Reset.
//
// # Throttle bursts
//
// Throttle (or POST /emulator/throttle?for=500ms&retry_after=1) makes the
// emulator answer every well-formed push with 429 for a while, whatever its
// token asks for: FCM 429 RESOURCE_EXHAUSTED with errorCode QUOTA_EXCEEDED
// (as the 429 token behaviour; messaging.IsQuotaExceeded), APNs 429
// TooManyRequests, each with Retry-After: S seconds (none if 0). for takes a
// Go duration or whole seconds, at most an hour; for=0 ends the burst early.
// Requests that are malformed or not authenticated are still refused for
// that. (Apple's 429 is about one device token; a burst stands for many at
// once, or for a provider shedding load.) Records of a burst's answers have
// Throttled set, and Summary counts them per provider; Summarize counts any
// subset of the records (a test's own tokens) the same way, e.g. to count
// provider calls.
//
// Firebase-admin-go retries 503 answers itself (up to 4 times, honouring
// Retry-After up to 2 minutes); a 503 token with a Retry-After above 120
// seconds makes it give up at once.
package emulator

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/crier-push/crier/internal/configcheck"
)

// Config configures an Emulator. The zero value is usable.
type Config struct {
	// FCMAddr is the listen address of the FCM side, which also serves the
	// OAuth2 token endpoint and the emulator's own /emulator/* endpoints
	// (plain HTTP). Default DefaultAddr.
	FCMAddr string
	// APNsAddr is the listen address of the APNs side (HTTP/2 over TLS
	// only). Default DefaultAddr.
	APNsAddr string
	// Latency is added to every FCM send and APNs answer, as a simulated
	// round trip. Default 0.
	Latency time.Duration
	// MaxRecords bounds the records kept (the oldest are dropped first;
	// Summary keeps counting). Default DefaultMaxRecords.
	MaxRecords int
	// State, when set, supplies the TLS certificate and the credentials
	// shared with other processes (see LoadOrCreateState).
	State *State
	// OnRecord, if set, is called with every record as it is made (from
	// the request's goroutine), so a long run can tally pushes without
	// keeping them.
	OnRecord func(Record)
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Defaults of the Config.
const (
	// DefaultAddr is any free port on the loopback interface, so tests
	// can run emulators side by side.
	DefaultAddr       = "127.0.0.1:0"
	DefaultMaxRecords = 100000
)

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.FCMAddr = cmp.Or(c.FCMAddr, DefaultAddr)
	c.APNsAddr = cmp.Or(c.APNsAddr, DefaultAddr)
	c.MaxRecords = cmp.Or(c.MaxRecords, DefaultMaxRecords)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate refuses a config the emulator cannot run with, naming the
// field.
func (c Config) validate() error {
	return configcheck.First("emulator config",
		configcheck.HostPort("FCMAddr", c.FCMAddr),
		configcheck.HostPort("APNsAddr", c.APNsAddr),
		configcheck.NotNegative("Latency", c.Latency),
		configcheck.NotNegative("MaxRecords", c.MaxRecords),
	)
}

// Emulator is an in-process FCM and APNs emulator. Create it with New, then
// Start it; it is safe for concurrent use.
type Emulator struct {
	cfg     Config
	log     *slog.Logger
	certPEM []byte
	tlsCert tls.Certificate

	creds    *credentials
	records  *recorder
	throttle throttle
	flaky    flakyCounts

	mu       sync.Mutex
	fcmLn    net.Listener
	apnsLn   net.Listener
	fcmSrv   *http.Server
	apnsSrv  *http.Server
	served   sync.WaitGroup
	started  bool
	closed   bool
	tokenURI string

	verifiedMu sync.Mutex
	verified   map[string]verifiedToken // APNs provider tokens whose signature was checked
}

// New returns an emulator that is not listening yet. Unless cfg.State gives
// one, it generates its own self-signed ECDSA certificate for the APNs side.
func New(cfg Config) (*Emulator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Emulator{
		cfg:     cfg,
		log:     cfg.Logger,
		creds:   newCredentials(),
		records: newRecorder(cfg.MaxRecords, cfg.OnRecord),
	}
	certPEM, keyPEM := []byte(nil), []byte(nil)
	if cfg.State != nil {
		certPEM, keyPEM = cfg.State.CertPEM, cfg.State.KeyPEM
	} else {
		var err error
		certPEM, keyPEM, err = newSelfSignedCert(cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("generate tls certificate: %w", err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate: %w", err)
	}
	e.certPEM, e.tlsCert = certPEM, cert
	if cfg.State != nil {
		if err := e.RegisterServiceAccount(cfg.State.ServiceAccount); err != nil {
			return nil, fmt.Errorf("register state service account: %w", err)
		}
		if err := e.RegisterAPNsKey(cfg.State.TeamID, cfg.State.KeyID, cfg.State.APNsKey, cfg.State.Topics...); err != nil {
			return nil, fmt.Errorf("register state apns key: %w", err)
		}
	}
	return e, nil
}

// Start listens on both addresses and serves in goroutines. With a State, it
// rewrites the state's service account file so that its token_uri points at
// this emulator.
func (e *Emulator) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return errors.New("emulator already started")
	}
	fcmLn, err := net.Listen("tcp", e.cfg.FCMAddr)
	if err != nil {
		return fmt.Errorf("listen fcm %s: %w", e.cfg.FCMAddr, err)
	}
	apnsLn, err := net.Listen("tcp", e.cfg.APNsAddr)
	if err != nil {
		fcmLn.Close()
		return fmt.Errorf("listen apns %s: %w", e.cfg.APNsAddr, err)
	}
	e.fcmLn, e.apnsLn = fcmLn, apnsLn
	e.tokenURI = "http://" + fcmLn.Addr().String() + "/token"

	e.fcmSrv = &http.Server{
		Handler:           e.fcmMux(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.apnsSrv = &http.Server{
		Handler:           http.HandlerFunc(e.serveAPNs),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	if err := http2.ConfigureServer(e.apnsSrv, &http2.Server{}); err != nil {
		fcmLn.Close()
		apnsLn.Close()
		return fmt.Errorf("configure http2: %w", err)
	}
	// Only h2 is offered: a client asking for http/1.1 by ALPN fails the
	// handshake, as it does with Apple; one without ALPN is refused by the
	// handler.
	tlsLn := tls.NewListener(apnsLn, &tls.Config{
		Certificates: []tls.Certificate{e.tlsCert},
		NextProtos:   []string{http2.NextProtoTLS},
		MinVersion:   tls.VersionTLS12,
	})
	e.serve(e.fcmSrv, fcmLn, "fcm")
	e.serve(e.apnsSrv, tlsLn, "apns")
	e.started = true

	if st := e.cfg.State; st != nil {
		if err := st.pointAt(e.tokenURI); err != nil {
			return fmt.Errorf("update state service account: %w", err)
		}
	}
	e.log.Info("emulator listening",
		slog.String("fcm", e.fcmEndpointLocked()), slog.String("apns", "https://"+apnsLn.Addr().String()))
	return nil
}

func (e *Emulator) serve(srv *http.Server, ln net.Listener, name string) {
	e.served.Add(1)
	go func() {
		defer e.served.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("emulator server stopped", slog.String("side", name), slog.Any("err", err))
		}
	}()
}

// Close stops both servers, letting requests under way finish for up to five
// seconds.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if !e.started || e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()

	// Requests under way get a grace period; connections still open after
	// it (HTTP/2 clients keep theirs) are closed, which is no error.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errF := e.fcmSrv.Shutdown(ctx)
	errA := e.apnsSrv.Shutdown(ctx)
	if errF != nil {
		e.fcmSrv.Close()
	}
	if errA != nil {
		e.apnsSrv.Close()
	}
	e.served.Wait()
	e.stopApps()
	err := errors.Join(errF, errA)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down emulator: %w", err)
	}
	return nil
}

// FCMEndpoint is the FCM API base URL, e.g. "http://127.0.0.1:43211/v1", to
// pass to option.WithEndpoint. Empty before Start.
func (e *Emulator) FCMEndpoint() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fcmEndpointLocked()
}

// fcmEndpointLocked is FCMEndpoint for callers holding e.mu.
func (e *Emulator) fcmEndpointLocked() string {
	if e.fcmLn == nil {
		return ""
	}
	return "http://" + e.fcmLn.Addr().String() + "/v1"
}

// TokenURI is the OAuth2 token endpoint, e.g. "http://127.0.0.1:43211/token".
// Service accounts must name it as their token_uri. Empty before Start.
func (e *Emulator) TokenURI() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tokenURI
}

// APNsHost is the APNs base URL, e.g. "https://127.0.0.1:43212", to set as
// apns2.Client.Host. Empty before Start.
func (e *Emulator) APNsHost() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.apnsLn == nil {
		return ""
	}
	return "https://" + e.apnsLn.Addr().String()
}

// SummaryURL is the URL of GET /emulator/summary. Empty before Start.
func (e *Emulator) SummaryURL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fcmLn == nil {
		return ""
	}
	return "http://" + e.fcmLn.Addr().String() + "/emulator/summary"
}

// CACertPEM is the self-signed certificate of the APNs side, which clients
// must trust.
func (e *Emulator) CACertPEM() []byte {
	return append([]byte(nil), e.certPEM...)
}

// wait sleeps for d, or until ctx ends; it reports whether the full time
// passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
