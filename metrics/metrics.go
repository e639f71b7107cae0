// Package metrics exposes crier's Prometheus metrics: sends by tenant,
// provider and outcome, provider latency, queue depth and age, dispatch
// duration, and rate-limit waits. A Metrics is made per process with its
// own registry; nothing is global.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors of one process.
type Metrics struct {
	reg       *prometheus.Registry
	sends     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	dispatch  *prometheus.HistogramVec
	audience  prometheus.Histogram
	rateWaits *prometheus.HistogramVec
	pauses    *prometheus.CounterVec
}

// New makes the collectors. With inspector set, queue depth and age are
// read from Redis at each scrape.
func New(inspector *asynq.Inspector, queues []string, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crier_sends_total", Help: "Sends by tenant, provider and outcome (sent, retry, throttled, token_dead, invalid, auth_broken).",
		}, []string{"tenant", "provider", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "crier_provider_latency_seconds", Help: "Time a provider took to answer a send, SDK retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"provider"}),
		dispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "crier_dispatch_duration_seconds", Help: "Time to snapshot a post's audience and enqueue its sends, by phase.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"phase"}),
		audience: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "crier_dispatch_audience_devices", Help: "Devices in a dispatched post's audience.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12),
		}),
		rateWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "crier_rate_limit_wait_seconds", Help: "Time a send waited for its tenant's provider rate.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
		}, []string{"provider"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crier_provider_pauses_total", Help: "Pauses of a tenant's provider: after a 429 (throttled) or refused credentials (auth_broken).",
		}, []string{"tenant", "provider", "reason"}),
	}
	m.reg.MustRegister(m.sends, m.latency, m.dispatch, m.audience, m.rateWaits, m.pauses,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if inspector != nil {
		m.reg.MustRegister(&queueCollector{insp: inspector, queues: queues, log: log})
	}
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Send counts one send and its provider latency.
func (m *Metrics) Send(tenantID int64, provider, outcome string, took time.Duration) {
	m.sends.WithLabelValues(strconv.FormatInt(tenantID, 10), provider, outcome).Inc()
	m.latency.WithLabelValues(provider).Observe(took.Seconds())
}

// RateWait records how long a send waited for its rate.
func (m *Metrics) RateWait(provider string, d time.Duration) {
	m.rateWaits.WithLabelValues(provider).Observe(d.Seconds())
}

// Pause counts a pause of a tenant's provider.
func (m *Metrics) Pause(tenantID int64, provider, reason string) {
	m.pauses.WithLabelValues(strconv.FormatInt(tenantID, 10), provider, reason).Inc()
}

// Dispatch records a dispatch's phases and audience.
func (m *Metrics) Dispatch(snapshot, total time.Duration, audience int) {
	m.dispatch.WithLabelValues("snapshot").Observe(snapshot.Seconds())
	m.dispatch.WithLabelValues("total").Observe(total.Seconds())
	m.audience.Observe(float64(audience))
}

// queueCollector reads queue depth and age from asynq at scrape time.
type queueCollector struct {
	insp   *asynq.Inspector
	queues []string
	log    *slog.Logger
}

var (
	queueDepth = prometheus.NewDesc("crier_queue_tasks", "Tasks in a queue by state.", []string{"queue", "state"}, nil)
	queueAge   = prometheus.NewDesc("crier_queue_age_seconds", "Age of the oldest pending task of a queue.", []string{"queue"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepth
	ch <- queueAge
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.queues {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			// A queue that never had a task does not exist yet.
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived} {
			ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(queueAge, prometheus.GaugeValue, info.Latency.Seconds(), q)
	}
}

// Nop is what a worker or dispatcher uses when no metrics are wanted.
type Nop struct{}

func (Nop) Send(int64, string, string, time.Duration)  {}
func (Nop) RateWait(string, time.Duration)             {}
func (Nop) Pause(int64, string, string)                {}
func (Nop) Dispatch(time.Duration, time.Duration, int) {}
