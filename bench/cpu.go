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
	// (the emulator and the measuring), redis-server and every postgres
	// process of the machine.
	MicrosPerPush map[string]float64 `json:"micros_per_push"`
	// Busy is the share of the machine's cores in use, all processes.
	Busy float64 `json:"machine_busy"`
}

// cpuSample is CPU time used so far, by process name.
type cpuSample struct {
	at     time.Time
	pushes int
	ticks  map[string]int64
	all    int64 // every process of the machine
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat times.
const clockTicks = 100

// sampleCPU reads the CPU time of the named processes, of every postgres
// process and of the whole machine.
func sampleCPU(pids map[string]int, pushes int) cpuSample {
	s := cpuSample{at: time.Now(), pushes: pushes, ticks: map[string]int64{}}
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
		comm, t, ok := procCPU(dir)
		if !ok {
			continue
		}
		s.all += t
		switch name, known := byPID[pid]; {
		case known:
			s.ticks[name] += t
		case comm == "postgres":
			s.ticks["postgres"] += t
		}
	}
	return s
}

// procCPU reads a process's command name and user+system time in ticks.
func procCPU(dir string) (string, int64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return "", 0, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := bytes.Fields(b[end+1:])
	// After the name: state, ppid, ... utime is field 14 of the line, the
	// 12th after the name; stime the 13th.
	if len(f) < 13 {
		return "", 0, false
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return string(b[open+1 : end]), ut + st, true
}

// cpuShare is what happened between two samples.
func cpuShare(a, b cpuSample) *CPUShare {
	secs := b.at.Sub(a.at).Seconds()
	pushes := b.pushes - a.pushes
	if secs <= 0 || pushes <= 0 {
		return nil
	}
	c := &CPUShare{Seconds: secs, Pushes: pushes, MicrosPerPush: map[string]float64{},
		Busy: float64(b.all-a.all) / clockTicks / secs / float64(runtime.NumCPU())}
	for name, t := range b.ticks {
		c.MicrosPerPush[name] = float64(t-a.ticks[name]) / clockTicks * 1e6 / float64(pushes)
	}
	return c
}
