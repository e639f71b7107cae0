// Package configtest holds the two checks every package's Config test
// makes: a config with a bad field is refused by an error naming the
// field, and the zero config gets the named defaults.
package configtest

import (
	"cmp"
	"reflect"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Case is one bad config: Change spoils a good one, and the refusal must
// name Field.
type Case[C any] struct {
	Name   string // the subtest; Field when empty
	Field  string
	Change func(*C)
}

// Refuses runs each case as a parallel subtest: good, spoilt by the case,
// must make use (New or Run with the config) fail with an error naming the
// case's field.
func Refuses[C any](t *testing.T, good C, use func(C) error, cases []Case[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(cmp.Or(tc.Name, tc.Field), func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.Change(&cfg)
			if err := use(cfg); err == nil || !strings.Contains(err.Error(), tc.Field) {
				t.Errorf("%v, want an error naming %s", err, tc.Field)
			}
		})
	}
}

// Defaults compares got, a config after WithDefaults, with want, leaving
// out the fields named in set (loggers, clocks, writers: what cannot be
// compared), which must each be set.
func Defaults[C any](t *testing.T, want, got C, set ...string) {
	t.Helper()
	var zero C
	if diff := gocmp.Diff(want, got, cmpopts.IgnoreFields(zero, set...)); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	v := reflect.ValueOf(got)
	for _, name := range set {
		if v.FieldByName(name).IsZero() {
			t.Errorf("defaults left %s unset", name)
		}
	}
}
