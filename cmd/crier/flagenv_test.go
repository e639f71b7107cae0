package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFlagsFromEnv: a flag beats its environment variable, the variable
// beats the default, and a bad value names the variable.
func TestFlagsFromEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"concurrency": "CRIER_CONCURRENCY", "queue-servers": "CRIER_QUEUE_SERVERS", "groups": "CRIER_GROUPS"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    [3]any // concurrency, queue-servers, groups
		wantErr string
	}{
		{"defaults", nil, nil, [3]any{200, 8, "all"}, ""},
		{"environment", nil, map[string]string{"CRIER_CONCURRENCY": "50", "CRIER_GROUPS": "urgent"}, [3]any{50, 8, "urgent"}, ""},
		{"flag beats environment", []string{"-concurrency", "20"}, map[string]string{"CRIER_CONCURRENCY": "50"}, [3]any{20, 8, "all"}, ""},
		{"bad value", nil, map[string]string{"CRIER_QUEUE_SERVERS": "many"}, [3]any{}, "CRIER_QUEUE_SERVERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c := fs.Int("concurrency", 200, "")
			q := fs.Int("queue-servers", 8, "")
			g := fs.String("groups", "all", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := flagsFromEnv(fs, func(k string) string { return tt.env[k] }, vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, [3]any{*c, *q, *g}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
