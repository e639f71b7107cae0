package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxThrottle bounds a burst asked for over HTTP, so a typo cannot leave a
// shared emulator refusing everything for a day.
const maxThrottle = time.Hour

// throttle is a burst of 429 answers: until it ends, every well-formed push
// is refused as over quota, whatever its token asks for.
type throttle struct {
	mu         sync.Mutex
	until      time.Time
	retryAfter int // seconds; 0 sends no Retry-After
}

// Throttle makes the emulator answer every well-formed push, FCM and APNs
// alike and whatever its token, with 429 for d from now: FCM 429
// RESOURCE_EXHAUSTED with the QUOTA_EXCEEDED error code (as a project over
// its send quota), APNs 429 TooManyRequests. Each answer carries a
// Retry-After of retryAfter, rounded up to whole seconds (none when
// retryAfter is 0). A malformed or unauthenticated request is still refused
// for what is wrong with it. A new call replaces the burst under way; d <= 0
// ends it at once.
func (e *Emulator) Throttle(d, retryAfter time.Duration) {
	e.throttle.mu.Lock()
	defer e.throttle.mu.Unlock()
	if d <= 0 {
		e.throttle.until, e.throttle.retryAfter = time.Time{}, 0
		return
	}
	e.throttle.until = e.cfg.Now().Add(d)
	e.throttle.retryAfter = int((max(0, retryAfter) + time.Second - 1) / time.Second)
}

// ThrottledUntil is when the burst under way ends; zero when none is.
func (e *Emulator) ThrottledUntil() time.Time {
	e.throttle.mu.Lock()
	defer e.throttle.mu.Unlock()
	if !e.cfg.Now().Before(e.throttle.until) {
		return time.Time{}
	}
	return e.throttle.until
}

// throttled reports whether a burst is under way, and its Retry-After in
// seconds.
func (e *Emulator) throttled() (retryAfter int, ok bool) {
	e.throttle.mu.Lock()
	defer e.throttle.mu.Unlock()
	if !e.cfg.Now().Before(e.throttle.until) {
		return 0, false
	}
	return e.throttle.retryAfter, true
}

// throttleAnswer is the JSON of POST /emulator/throttle.
type throttleAnswer struct {
	// Until is when the burst ends; absent when there is none.
	Until *time.Time `json:"until,omitempty"`
	// RetryAfter is the Retry-After answered, in seconds.
	RetryAfter int `json:"retry_after"`
}

// serveThrottle is POST /emulator/throttle?for=D[&retry_after=S]: D is a Go
// duration ("500ms", "2s") or whole seconds, at most an hour, 0 to end the
// burst; S is the Retry-After in whole seconds (default 0: no header).
func (e *Emulator) serveThrottle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := parseSecondsOrDuration(q.Get("for"))
	if err != nil || d < 0 || d > maxThrottle {
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error": fmt.Sprintf("for=%q: want a duration from 0 to %s, e.g. for=500ms or for=2", q.Get("for"), maxThrottle)})
		return
	}
	ra := 0
	if s := q.Get("retry_after"); s != "" {
		ra, err = strconv.Atoi(s)
		if err != nil || ra < 0 || time.Duration(ra)*time.Second > maxThrottle {
			writeJSON(w, http.StatusBadRequest, map[string]string{
				"error": fmt.Sprintf("retry_after=%q: want whole seconds from 0 to %d", s, int(maxThrottle/time.Second))})
			return
		}
	}
	e.Throttle(d, time.Duration(ra)*time.Second)
	var out throttleAnswer
	if until := e.ThrottledUntil(); !until.IsZero() {
		out.Until, out.RetryAfter = &until, ra
	}
	writeJSON(w, http.StatusOK, out)
}

// parseSecondsOrDuration reads "2" as two seconds and "1.5s" or "500ms" as
// Go durations.
func parseSecondsOrDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > int(maxThrottle/time.Second) {
			return 0, fmt.Errorf("%d seconds: out of range", n)
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}
