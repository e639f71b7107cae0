package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/storage"
)

// RegisterConfig is a device-registration run: Clients concurrent clients
// register Devices new installations through a `crier api` process, then
// update each once (new choices and places, with the installation's device
// secret), as apps do after their first start.
type RegisterConfig struct {
	AdminDatabaseURL string
	Binary           string
	Devices          int
	Clients          int
	Progress         io.Writer
}

// The registration run's defaults: the figures are for 20,000
// registrations from 32 clients.
const (
	DefaultRegisterDevices = 20_000
	DefaultRegisterClients = 32
)

// WithDefaults fills what is unset.
func (c RegisterConfig) WithDefaults() RegisterConfig {
	c.Devices = cmp.Or(c.Devices, DefaultRegisterDevices)
	c.Clients = cmp.Or(c.Clients, DefaultRegisterClients)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

func (c RegisterConfig) validate() error {
	switch {
	case c.AdminDatabaseURL == "":
		return errors.New("bench: AdminDatabaseURL is required")
	case c.Binary == "":
		return errors.New("bench: Binary is required")
	case c.Devices < 1 || c.Clients < 1:
		return errors.New("bench: Devices and Clients must be positive")
	}
	return nil
}

// Phase is one phase's figures: how many requests, how fast, how long each
// took.
type Phase struct {
	Name     string        `json:"name"`
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed"`
	PerSec   float64       `json:"per_sec"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
	Max      time.Duration `json:"max"`
}

// RegisterResult is a registration run's figures.
type RegisterResult struct {
	Devices int     `json:"devices"`
	Clients int     `json:"clients"`
	Phases  []Phase `json:"phases"`
}

// Print writes the figures as a table.
func (r *RegisterResult) Print(w io.Writer) {
	fmt.Fprintf(w, "crier bench registrations  %d devices, %d clients, one crier api process\n", r.Devices, r.Clients)
	fmt.Fprintf(w, "%-14s %8s %7s %9s %8s %8s %8s\n", "phase", "requests", "errors", "per s", "p50", "p99", "max")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "%-14s %8d %7d %9.0f %8s %8s %8s\n", p.Name, p.Requests, p.Errors, p.PerSec,
			p.P50.Round(100*time.Microsecond), p.P99.Round(100*time.Microsecond), p.Max.Round(100*time.Microsecond))
	}
}

// RunRegister seeds a tenant with feeds and areas, starts `crier api`, and
// times registrations and updates through it.
func RunRegister(ctx context.Context, cfg RegisterConfig) (*RegisterResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "crier-bench-register-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rds, err := startRedis(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer rds.stop()
	dbURL, drop, err := freshDatabase(ctx, cfg.AdminDatabaseURL, fmt.Sprintf("crier_bench_register_%d", os.Getpid()))
	if err != nil {
		return nil, err
	}
	defer drop()
	db, err := storage.Open(ctx, storage.Config{URL: dbURL, MaxConns: 4})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	appKey, feeds, err := seedRegisterTenant(ctx, db)
	if err != nil {
		return nil, err
	}
	procs, err := startCrier(ctx, Config{Binary: cfg.Binary}, dir, dbURL, rds.url(), "")
	if err != nil {
		return nil, err
	}
	defer procs.stop()

	client := apiclient.Client{Base: procs.apiURL, Key: appKey, HTTP: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: cfg.Clients, MaxConnsPerHost: cfg.Clients}}}
	res := &RegisterResult{Devices: cfg.Devices, Clients: cfg.Clients}
	secrets := make([]string, cfg.Devices)
	fmt.Fprintf(cfg.Progress, "registering %d devices from %d clients...\n", cfg.Devices, cfg.Clients)
	res.Phases = append(res.Phases, runPhase(ctx, "register", cfg, func(i int) error {
		var out struct {
			Secret string `json:"device_secret"`
		}
		status, err := client.Do(ctx, "PUT", fmt.Sprintf("/v1/devices/bench-%d", i), registration(i, feeds), &out)
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("register %d: status %d", i, status)
		}
		secrets[i] = out.Secret
		return nil
	}))
	fmt.Fprintf(cfg.Progress, "updating them...\n")
	res.Phases = append(res.Phases, runPhase(ctx, "update", cfg, func(i int) error {
		h := http.Header{"Content-Type": {"application/json"}}
		if secrets[i] != "" {
			h.Set(api.DeviceSecretHeader, secrets[i])
		}
		status, _, body, err := client.Send(ctx, "PUT", fmt.Sprintf("/v1/devices/bench-%d", i), h, update(i, feeds))
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("update %d: status %d: %s", i, status, body)
		}
		return nil
	}))
	return res, nil
}

func runPhase(ctx context.Context, name string, cfg RegisterConfig, do func(i int) error) Phase {
	lat := make([]time.Duration, cfg.Devices)
	var next, errs atomic.Int64
	var first sync.Once
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Devices || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := do(i); err != nil {
					errs.Add(1)
					first.Do(func() { firstErr = err })
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		fmt.Fprintf(cfg.Progress, "%s: first error: %v\n", name, firstErr)
	}
	slices.Sort(lat)
	return Phase{Name: name, Requests: cfg.Devices, Errors: int(errs.Load()), Elapsed: elapsed,
		PerSec: float64(cfg.Devices) / elapsed.Seconds(), P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], Max: lat[len(lat)-1]}
}

// seedRegisterTenant makes the tenant devices register with: an app key,
// a municipality with four feeds and an organisation's feed.
func seedRegisterTenant(ctx context.Context, db *storage.DB) (string, []string, error) {
	t, err := db.CreateTenant(ctx, "bench-register", "Bench", "Europe/Oslo")
	if err != nil {
		return "", nil, err
	}
	muni, err := db.CreatePublisher(ctx, t.ID, "kommune", "Kommunen", crier.RoleMunicipality)
	if err != nil {
		return "", nil, err
	}
	feeds := []string{"nyheter", "veiarbeid", "kultur", "skole"}
	for _, f := range feeds {
		if _, err := db.CreateFeed(ctx, t.ID, muni.ID, f, f, false); err != nil {
			return "", nil, err
		}
	}
	key, err := db.NewAPIKey(ctx, t.ID, nil, "bench app")
	if err != nil {
		return "", nil, err
	}
	return key, feeds, nil
}

// registration is what an app sends on its first start.
func registration(i int, feeds []string) map[string]any {
	return map[string]any{
		"provider": "fcm", "token": fmt.Sprintf("emu-ok-bench-%d", i), "locale": "nb", "time_zone": "Europe/Oslo",
		"app_version": "3.1.0", "follows": []string{feeds[i%len(feeds)]}, "interests": []string{Interests[i%len(Interests)]},
		"places": []map[string]any{{"name": "home", "lat": 59.1 + float64(i%1000)/10000, "lon": 10.2 + float64(i%997)/10000}},
	}
}

// update is a resident changing their choices later.
func update(i int, feeds []string) string {
	return fmt.Sprintf(`{"follows": [%q, %q], "interests": [%q], "quiet_hours": {"start": "22:00", "end": "07:00"},
		"places": [{"name": "home", "lat": %.4f, "lon": %.4f}, {"name": "cabin", "lat": 61.1, "lon": 9.5}]}`,
		feeds[i%len(feeds)], feeds[(i+1)%len(feeds)], Interests[(i+3)%len(Interests)],
		59.1+float64(i%1000)/10000, 10.2+float64(i%997)/10000)
}
