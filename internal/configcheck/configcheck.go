// Package configcheck words the refusals of the packages' Config validate
// methods alike: "<package> config: <Field> <value>: <why>", for the first
// bad field. Refusals never quote a secret: the checks that could (Required
// on keys) name the field only.
package configcheck

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// First returns the first of errs that is not nil, after what the config
// is for ("server config"); nil when every check passed.
func First(what string, errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// If refuses, in its own words, when bad holds.
func If(bad bool, format string, args ...any) error {
	if bad {
		return fmt.Errorf(format, args...)
	}
	return nil
}

// Required refuses an empty field; it names the field, never the value.
func Required[T ~string | ~[]byte](field string, v T) error {
	if len(v) == 0 {
		return errors.New(field + " is required")
	}
	return nil
}

// Positive refuses a number below one.
func Positive[N ~int | ~int32 | ~int64](field string, v N) error {
	return If(v < 1, "%s %d: must be positive", field, v)
}

// AtLeast refuses a number below least.
func AtLeast[N ~int | ~int32 | ~int64](field string, v, least N) error {
	return If(v < least, "%s %d: must be at least %d", field, v, least)
}

// NotNegative refuses a negative number or duration.
func NotNegative[N ~int | ~int32 | ~int64](field string, v N) error {
	return If(v < 0, "%s %v: must not be negative", field, v)
}

// HostPort refuses an address net.Listen cannot take: host:port, either
// may be empty.
func HostPort(field, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s %q: %w", field, addr, err)
	}
	return nil
}

// URL refuses anything but an absolute URL with a host and one of the
// schemes.
func URL(field, v string, schemes ...string) error {
	u, err := url.Parse(v)
	ok := err == nil && slices.Contains(schemes, u.Scheme) && u.Host != ""
	return If(!ok, "%s %q: want an %s URL", field, v, strings.Join(schemes, " or "))
}
