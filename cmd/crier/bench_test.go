package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/crier-push/crier/internal/testenv"
)

// TestBenchSmoke runs `crier bench --devices 20000` as a user would, with
// real api and worker processes, and checks that every device was
// delivered and the figures were measured (not how fast: that is the
// benchmark's job, not a test's).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole bench run: not in -short")
	}
	// Postgres and redis-server must be there (under CI=true their absence
	// fails the test); the bench makes its own database and Redis.
	testenv.DB(t)
	testenv.StartRedis(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "crier")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build crier: %v\n%s", err, out)
	}
	outFile := filepath.Join(dir, "bench.json")
	cmd := exec.Command(bin, "bench", "--devices", "20000", "--tenants", "2", "--workers", "2", "--concurrency", "100",
		"--out", outFile, "-database-url", testenv.AdminURL())
	out, err := cmd.CombinedOutput()
	t.Logf("crier bench:\n%s", lastLines(out, 30))
	if err != nil {
		t.Fatalf("crier bench: %v", err)
	}
	raw, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Delivered bool `json:"every_device_delivered"`
		Broadcast struct {
			Audience, Final int
		} `json:"broadcast"`
		Alert struct {
			Audience, Final int
		} `json:"alert"`
		Asynq float64 `json:"ceiling_asynq_noop_drain_per_sec"`
		FCM   float64 `json:"ceiling_fcm_client_push_per_sec"`
		Redis float64 `json:"redis_bytes_per_pending_task"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Delivered || res.Broadcast.Audience < 15000 || res.Broadcast.Final != res.Broadcast.Audience ||
		res.Alert.Audience == 0 || res.Alert.Final != res.Alert.Audience {
		t.Errorf("not every device delivered: %s", raw)
	}
	if res.Asynq <= 0 || res.FCM <= 0 || res.Redis <= 0 {
		t.Errorf("figures missing: %s", raw)
	}
}

func lastLines(b []byte, n int) string {
	lines := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			lines++
			if lines > n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
