package bench

import (
	_ "embed"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// Municipalities is the GeoJSON of the 357 Norwegian municipalities (2024),
// CC BY 4.0 © Kartverket (see SOURCES.md).
//
//go:embed no-kommuner-2024.geojson
var Municipalities []byte

// Print writes the result as a table.
func (r *Result) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("crier bench\t%d devices, %d tenants, %d worker processes × %d, emulator latency %.0f ms", r.Devices, r.Tenants,
		r.Workers, r.Concurrency, r.LatencyMS)
	p("seed\t%.1f s", r.SeedSeconds)
	p("")
	p("\tbroadcast\talert (emergency, behind it)")
	p("audience\t%d\t%d", r.Broadcast.Audience, r.Alert.Audience)
	p("sent / with an outcome\t%d / %d\t%d / %d", r.Broadcast.Sent, r.Broadcast.Final, r.Alert.Sent, r.Alert.Final)
	p("audience snapshot\t%.2f s\t%.2f s", r.Broadcast.SnapshotSeconds, r.Alert.SnapshotSeconds)
	p("enqueue rate\t%.0f /s\t%.0f /s", r.Broadcast.EnqueuePerSec, r.Alert.EnqueuePerSec)
	p("sustained send rate\t%.0f /s\t%.0f /s", r.Broadcast.SustainedPerSec, r.Alert.SustainedPerSec)
	p("first send after accepted\t%.3f s\t%.3f s", r.Broadcast.FirstSendSeconds, r.Alert.FirstSendSeconds)
	p("last send after accepted\t%.1f s\t%.2f s", r.Broadcast.LastSendSeconds, r.Alert.LastSendSeconds)
	p("accepted→send p50 / p99\t%.1f / %.1f s\t%.2f / %.2f s", r.Broadcast.P50LatencySeconds, r.Broadcast.P99LatencySeconds,
		r.Alert.P50LatencySeconds, r.Alert.P99LatencySeconds)
	p("duplicate pushes\t%d\t%d", r.Broadcast.Duplicates, r.Alert.Duplicates)
	p("alert sends before the broadcast resumed\t\t%d of %d", r.AlertBeforeResume, r.Alert.Sent)
	p("alert devices tried before it resumed\t\t%d of %d", r.AlertTriedBeforeResume, r.Alert.Audience)
	h := r.Hold
	p("routine hold\t\t%.1f s, %d routine sends queued during it", h.Seconds, h.RoutineQueued)
	p("largest gap in alert sends, first to p99\t\t%.3f s (after send %d)", h.LargestGapSeconds, h.GapAfter)
	p("sustained rate outside the hold\t%.0f /s\t%.0f /s = %.0f %% of the broadcast's", h.BroadcastPerSec,
		r.Alert.SustainedPerSec, 100*h.AlertShare)
	p("")
	p("ceilings, same run\trate\tcrier's sustained rate as a share")
	p("asynq no-op drain, 1 server\t%.0f /s\t%.0f %%\t(%.0f µs CPU a task)", r.AsynqDrainPerSec, 100*r.RatioToAsynq, r.AsynqDrainCPUMicros)
	p("asynq no-op drain, %d servers\t%.0f /s\t%.0f %%", drainServers, r.AsynqManyDrainPerSec, 100*r.RatioToAsynqMany)
	p("FCM client → emulator\t%.0f /s\t%.0f %%", r.FCMPushPerSec, 100*r.RatioToFCM)
	p("APNs client → emulator\t%.0f /s\t%.0f %%", r.APNsPushPerSec, 100*r.RatioToAPNs)
	p("asynq + clients → emulator\t%.0f /s\t%.0f %%\t(%.0f µs CPU a push)", r.PipelinePerSec, 100*r.RatioToPipeline, r.PipelineCPUMicros)
	p("")
	if c := r.CPU; c != nil {
		names := make([]string, 0, len(c.MicrosPerPush))
		total := 0.0
		for name, us := range c.MicrosPerPush {
			names = append(names, name)
			total += us
		}
		sort.Strings(names)
		p("CPU per push, broadcast 10–90 %%\t%.0f µs\t(%d pushes in %.0f s, machine %.0f %% busy)", total, c.Pushes, c.Seconds, 100*c.Busy)
		for _, name := range names {
			p("  %s\t%.0f µs", name, c.MicrosPerPush[name])
		}
		p("")
	}
	p("Redis memory per pending task\t%.0f bytes\t(at %d pending)", r.RedisBytesPerTask, r.PeakPendingTasks)
	p("Postgres per delivery\t%.1f rows, %.0f WAL bytes\t(%.0f %% of updates HOT)", r.PGRowsPerDelivery, r.PGBytesPerDelivery,
		100*r.PGHotShare)
	names := make([]string, 0, len(r.PeakRSSMB))
	for n := range r.PeakRSSMB {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p("peak RSS %s\t%.0f MB", n, r.PeakRSSMB[n])
	}
	if rc := r.Receipts; rc != nil {
		p("alert receipts taken / received, displayed\t\t%d / %d, %d (%d refused, %d failed, %d retried)", rc.Posted,
			rc.Received, rc.Displayed, rc.Refused, rc.Failed, rc.Retried)
		p("receipts/s; accepted→receipt first / p50 / p95\t\t%.0f /s; %.0f / %.0f / %.0f ms (last %.1f s after the last send)",
			rc.PerSec, rc.FirstMS, rc.MedianMS, rc.P95MS, rc.AfterLastSendSeconds)
	}
	p("every device delivered\t%v", r.Delivered)
	tw.Flush()
}
