package emulator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crier-push/crier/internal/configcheck"
)

// ReceiptDevice is what an app knows of itself to send crier its receipt:
// the tenant's app key, its installation id and its device secret.
type ReceiptDevice struct {
	AppKey, InstallationID, Secret string
}

// ReceiptsConfig makes the emulator play the apps (PostReceipts): after it
// accepts a push that carries a post id, the phone's app posts its receipt
// to crier (POST /v1/devices/{installation_id}/receipts), as a real app
// does when the push arrives.
type ReceiptsConfig struct {
	// URL is crier's API, e.g. "http://127.0.0.1:8080".
	URL string
	// Device finds the installation a pushed token belongs to; false:
	// that push gets no receipt. Called from the push's request, so it
	// must be quick (a map, or arithmetic on the token).
	Device func(provider, token string, postID int64) (ReceiptDevice, bool)
	// Displayed: the receipt says the notification was shown too.
	Displayed bool
	// Concurrency is how many receipts are posted at once. Default 8.
	Concurrency int
	// Queue bounds the receipts waiting to be posted; past it a receipt
	// is dropped (counted), never waited for. Default 100000.
	Queue int
	// Retries is how often a receipt refused with 429 or 503 is tried
	// again after its Retry-After (at most 10 s). Default 3.
	Retries int
	// Client posts the receipts; default a client keeping Concurrency
	// connections alive.
	Client *http.Client
}

// WithDefaults fills in the zero fields.
func (c ReceiptsConfig) WithDefaults() ReceiptsConfig {
	c.Concurrency = cmp.Or(c.Concurrency, 8)
	c.Queue = cmp.Or(c.Queue, 100_000)
	c.Retries = cmp.Or(c.Retries, 3)
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: c.Concurrency, IdleConnTimeout: time.Minute}}
	}
	return c
}

func (c ReceiptsConfig) validate() error {
	return configcheck.First("emulator receipts config",
		configcheck.URL("URL", c.URL, "http", "https"),
		configcheck.If(c.Device == nil, "Device is required"),
		configcheck.AtLeast("Concurrency", c.Concurrency, 1),
		configcheck.AtLeast("Queue", c.Queue, 1),
		configcheck.NotNegative("Retries", c.Retries))
}

// ReceiptStats count the receipts the emulator's apps sent.
type ReceiptStats struct {
	// Queued were taken to be posted; Dropped were not (the queue full).
	Queued, Dropped int64
	// Accepted were answered 202; Refused were answered 429 or 503 after
	// every retry; Failed otherwise (another status, no answer).
	Accepted, Refused, Failed int64
	// Retried counts the retries after a 429 or 503.
	Retried int64
	// FirstAccepted and LastAccepted are when the first and the last 202
	// arrived; zero before one.
	FirstAccepted, LastAccepted time.Time
}

// Done reports whether every receipt queued has had its last answer.
func (s ReceiptStats) Done() bool { return s.Accepted+s.Refused+s.Failed == s.Queued }

// PerSecond is the rate of accepted receipts between the first and the
// last; 0 before two.
func (s ReceiptStats) PerSecond() float64 {
	d := s.LastAccepted.Sub(s.FirstAccepted).Seconds()
	if s.Accepted < 2 || d <= 0 {
		return 0
	}
	return float64(s.Accepted-1) / d
}

// apps post the receipts of accepted pushes, off the pushes' requests.
type apps struct {
	cfg    ReceiptsConfig
	queue  chan appReceipt
	cancel context.CancelFunc
	done   sync.WaitGroup

	queued, dropped, accepted, refused, failed, retried atomic.Int64
	mu                                                  sync.Mutex
	first, last                                         time.Time
}

type appReceipt struct {
	dev  ReceiptDevice
	post int64
	at   time.Time
}

// PostReceipts makes the emulator play the apps from now on (see
// ReceiptsConfig) until Close. Posting is asynchronous and bounded: the
// answer to a push is not delayed by its receipt.
func (e *Emulator) PostReceipts(cfg ReceiptsConfig) error {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	ctx, cancel := context.WithCancel(context.Background())
	a := &apps{cfg: cfg, queue: make(chan appReceipt, cfg.Queue), cancel: cancel}
	if !e.records.apps.CompareAndSwap(nil, a) {
		cancel()
		return errors.New("emulator: receipts are posted already")
	}
	for range cfg.Concurrency {
		a.done.Go(func() { a.post(ctx) })
	}
	return nil
}

// ReceiptStats are the counts of the receipts posted so far.
func (e *Emulator) ReceiptStats() ReceiptStats {
	a := e.records.apps.Load()
	if a == nil {
		return ReceiptStats{}
	}
	a.mu.Lock()
	first, last := a.first, a.last
	a.mu.Unlock()
	return ReceiptStats{Queued: a.queued.Load(), Dropped: a.dropped.Load(), Accepted: a.accepted.Load(),
		Refused: a.refused.Load(), Failed: a.failed.Load(), Retried: a.retried.Load(),
		FirstAccepted: first, LastAccepted: last}
}

// stopApps ends the posting of receipts, those still queued unposted.
func (e *Emulator) stopApps() {
	if a := e.records.apps.Load(); a != nil {
		a.cancel()
		a.done.Wait()
	}
}

// offer queues the receipt of an accepted push, if its app is known; it
// never waits.
func (a *apps) offer(rec Record) {
	if !rec.Accepted() {
		return
	}
	post, ok := pushPostID(rec.Body)
	if !ok {
		return
	}
	dev, ok := a.cfg.Device(rec.Provider, rec.Token, post)
	if !ok {
		return
	}
	select {
	case a.queue <- appReceipt{dev: dev, post: post, at: rec.Time}:
		a.queued.Add(1)
	default:
		a.dropped.Add(1)
	}
}

func (a *apps) post(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-a.queue:
			a.send(ctx, r)
		}
	}
}

// send posts one receipt, retrying a 429 or 503 after its Retry-After.
func (a *apps) send(ctx context.Context, r appReceipt) {
	at := r.at.UTC().Format(time.RFC3339Nano)
	body := fmt.Sprintf(`{"post_id":%d,"received_at":%q}`, r.post, at)
	if a.cfg.Displayed {
		body = fmt.Sprintf(`{"post_id":%d,"received_at":%q,"displayed_at":%q}`, r.post, at, at)
	}
	for try := 0; ; try++ {
		status, retryAfter := a.postOnce(ctx, r.dev, body)
		switch {
		case status == http.StatusAccepted:
			a.accepted.Add(1)
			now := time.Now()
			a.mu.Lock()
			if a.first.IsZero() {
				a.first = now
			}
			a.last = now
			a.mu.Unlock()
			return
		case (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && try < a.cfg.Retries:
			a.retried.Add(1)
			if !wait(ctx, min(retryAfter, 10*time.Second)) {
				a.refused.Add(1)
				return
			}
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			a.refused.Add(1)
			return
		default:
			a.failed.Add(1)
			return
		}
	}
}

// postOnce posts a receipt and answers the status (0 without an answer)
// and the Retry-After (1 s if none is given).
func (a *apps) postOnce(ctx context.Context, dev ReceiptDevice, body string) (int, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		a.cfg.URL+"/v1/devices/"+dev.InstallationID+"/receipts", strings.NewReader(body))
	if err != nil {
		return 0, 0
	}
	req.Header.Set("Authorization", "Bearer "+dev.AppKey)
	req.Header.Set("X-Device-Secret", dev.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // keeps the connection for the next receipt
	retryAfter := time.Second
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retryAfter
}

// pushPostID finds the post id crier puts in every push's data
// ("post_id":"123" in FCM's data, "post_id":"123" in the APNs payload).
func pushPostID(body string) (int64, bool) {
	const key = `"post_id":`
	i := strings.Index(body, key)
	if i < 0 {
		return 0, false
	}
	rest := strings.TrimLeft(body[i+len(key):], " \t\r\n\"")
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	id, err := strconv.ParseInt(rest[:end], 10, 64)
	return id, err == nil && id > 0
}
