package emulator

import (
	"hash/fnv"
	"sync"
)

// flakyCounts numbers the pushes to each flaky token, so that a flaky
// token's failures are spread evenly rather than drawn at random: runs of
// random failures make a test's retries, and so its duration, long-tailed,
// and make counts of provider calls vary from run to run.
type flakyCounts struct {
	mu sync.Mutex
	n  map[string]int // pushes so far, by provider and token
}

// fails reports whether the next push to a flaky token fails. Of every 100
// pushes to the token exactly pct fail, as evenly spaced as they can be
// (never two in a row below 50 %); where in that pattern the token starts
// is chosen by a hash of the token, so pct % of flaky tokens fail their
// first push, the same ones every run.
func (c *flakyCounts) fails(provider, token string, pct int) bool {
	if pct <= 0 {
		return false
	}
	if pct >= 100 {
		return true
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	key := provider + "/" + token
	k := c.n[key] % 100
	c.n[key]++
	c.mu.Unlock()
	h := fnv.New32a()
	h.Write([]byte(token))
	phase := int(h.Sum32() % 100)
	// The k-th push fails when it carries the running total of failures,
	// k·pct/100 shifted by the phase, over a whole number.
	return ((k+1)*pct+phase)/100 > (k*pct+phase)/100
}

func (c *flakyCounts) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}
