package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// CPUShare is where the machine's CPU went while the broadcast was in full
// flow (from its tenth to its ninetieth percent of sends): microseconds of
// CPU per push, by process, read from /proc.
type CPUShare struct {
	Seconds float64 `json:"seconds"`
	Pushes  int     `json:"pushes"`
	// MicrosPerPush by process: each worker, the api, the bench process
	// (the emulator and the measuring), redis-server, every postgres
	// process of the machine, and "other": the rest of the machine's busy
	// time (the kernel, other processes).
	MicrosPerPush map[string]float64 `json:"micros_per_push"`
	// Busy is the share of the machine's cores in use (/proc/stat).
	Busy float64 `json:"machine_busy"`
}

// cpuSample is CPU time used so far, by process name.
type cpuSample struct {
	at     time.Time
	pushes int
	ticks  map[string]int64
	// busy is the machine's busy time from /proc/stat: every process,
	// those that have exited since included, and the kernel.
	busy int64
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat times.
const clockTicks = 100

// sampleCPU reads the CPU time of the named processes, of every postgres
// process (with their exited children: parallel query workers come and go)
// and of the whole machine.
func sampleCPU(pids map[string]int, pushes int) cpuSample {
	s := cpuSample{at: time.Now(), pushes: pushes, ticks: map[string]int64{}, busy: machineBusy()}
	byPID := map[int]string{}
	for name, pid := range pids {
		byPID[pid] = name
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		comm, t, children, ok := procCPU(dir)
		if !ok {
			continue
		}
		switch name, known := byPID[pid]; {
		case known:
			s.ticks[name] += t
		case comm == "postgres":
			s.ticks["postgres"] += t + children
		}
	}
	return s
}

// procCPU reads a process's command name, its user+system time and that of
// its waited-for children, in ticks.
func procCPU(dir string) (comm string, self, children int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return "", 0, 0, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	// After the name: state, ppid, ...; utime, stime, cutime and cstime are
	// fields 14 to 17 of the line, the 12th to 15th after the name.
	f := bytes.Fields(b[end+1:])
	if len(f) < 15 {
		return "", 0, 0, false
	}
	var t [4]int64
	for i := range t {
		if t[i], err = strconv.ParseInt(string(f[11+i]), 10, 64); err != nil {
			return "", 0, 0, false
		}
	}
	return string(b[open+1 : end]), t[0] + t[1], t[2] + t[3], true
}

// machineBusy is the machine's non-idle time in ticks, from /proc/stat's
// first line (user nice system idle iowait irq softirq steal ...).
func machineBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	var busy int64
	for i, v := range f[1:min(len(f), 9)] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		busy += n
	}
	return busy
}

// cpuShare is what happened between two samples.
func cpuShare(a, b cpuSample) *CPUShare {
	secs := b.at.Sub(a.at).Seconds()
	pushes := b.pushes - a.pushes
	if secs <= 0 || pushes <= 0 {
		return nil
	}
	busy := b.busy - a.busy
	c := &CPUShare{Seconds: secs, Pushes: pushes, MicrosPerPush: map[string]float64{},
		Busy: float64(busy) / clockTicks / secs / float64(runtime.NumCPU())}
	for name, t := range b.ticks {
		c.MicrosPerPush[name] = float64(t-a.ticks[name]) / clockTicks * 1e6 / float64(pushes)
		busy -= t - a.ticks[name]
	}
	// The rest: the kernel's own work and every other process.
	c.MicrosPerPush["other"] = float64(max(0, busy)) / clockTicks * 1e6 / float64(pushes)
	return c
}
