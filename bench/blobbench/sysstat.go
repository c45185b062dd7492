package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readLoadavg gives the machine's three load averages (1, 5 and 15 min), "?" if unknown.
func readLoadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// machineCPU is the machine's CPU time so far from /proc/stat, in core-seconds: busy (neither
// idle nor waiting for I/O) and waiting for I/O. Zeros if it cannot be read.
func machineCPU() (busy, iowait float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var ticks [8]float64
	for i := range ticks {
		v, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return 0, 0
		}
		ticks[i] = v / 100 // USER_HZ
	}
	busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
	return busy, ticks[4]
}

// procStatus reads the kB fields of /proc/self/status, in bytes.
func procStatus() (map[string]int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		rest = strings.TrimSpace(rest)
		if num, isKB := strings.CutSuffix(rest, " kB"); ok && isKB {
			if kb, err := strconv.ParseInt(num, 10, 64); err == nil {
				out[name] = kb << 10
			}
		}
	}
	if out["VmHWM"] == 0 {
		return nil, errors.New("no VmHWM in /proc/self/status")
	}
	return out, nil
}

// profileCPU writes a CPU profile of this process to the file the environment variable env
// names, if it is set, until the returned stop is called.
func profileCPU(env string) (stop func(), err error) {
	p := os.Getenv(env)
	if p == "" {
		return func() {}, nil
	}
	f, err := os.Create(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
