package apiclient

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// DeviceSecretHeader carries an installation's device secret: api.DeviceSecretHeader, which the api tests hold it to.
const DeviceSecretHeader = "X-Device-Secret"

// DeviceSecrets keeps the device secrets the API answers, by installation,
// as each app keeps its own: a Client with them sends an installation's
// secret with every request about it.
type DeviceSecrets struct {
	mu sync.Mutex
	m  map[string]string
}

// NewDeviceSecrets makes an empty store.
func NewDeviceSecrets() *DeviceSecrets { return &DeviceSecrets{m: map[string]string{}} }

// Get is the installation's secret, "" if none is known.
func (d *DeviceSecrets) Get(installation string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[installation]
}

// installation is the installation id of a device path, "" for others.
func installation(path string) string {
	inst, ok := strings.CutPrefix(path, "/v1/devices/")
	if !ok || strings.ContainsAny(inst, "/?") {
		return ""
	}
	return inst
}

// about is the installation a device path or one below it is about
// (/v1/devices/{id}/deliveries), "" for others.
func about(path string) string {
	inst, ok := strings.CutPrefix(path, "/v1/devices/")
	if !ok {
		return ""
	}
	inst, _, _ = strings.Cut(inst, "?")
	inst, _, _ = strings.Cut(inst, "/")
	return inst
}

// before adds the installation's secret to a request about it.
func (d *DeviceSecrets) before(path string, h http.Header) {
	if d == nil || h.Get(DeviceSecretHeader) != "" {
		return
	}
	if s := d.Get(about(path)); s != "" {
		h.Set(DeviceSecretHeader, s)
	}
}

// after keeps a secret the answer carries, and forgets a deleted one.
func (d *DeviceSecrets) after(method, path string, status int, body []byte) {
	inst := installation(path)
	if d == nil || inst == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case method == http.MethodDelete && status == http.StatusNoContent:
		delete(d.m, inst)
	case method == http.MethodPut && status < 300:
		var v struct {
			Secret string `json:"device_secret"`
		}
		if json.Unmarshal(body, &v) == nil && v.Secret != "" {
			d.m[inst] = v.Secret
		}
	}
}
