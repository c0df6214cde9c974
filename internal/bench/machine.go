package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a run happened: figures from two machines compare
// only through their ratios.
type Machine struct {
	CPUs       int        `json:"nproc"`
	CPUModel   string     `json:"cpu_model"`
	MemoryMB   int        `json:"memory_mb"`
	Kernel     string     `json:"kernel"`
	GoVersion  string     `json:"go_version"`
	LoadBefore [3]float64 `json:"load_average_before"`
	LoadAfter  [3]float64 `json:"load_average_after"`
}

func numCPU() int { return runtime.NumCPU() }

func describeMachine() Machine {
	m := Machine{CPUs: numCPU(), GoVersion: runtime.Version(), LoadBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.Atoi(f[1])
				m.MemoryMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load average of /proc/loadavg.
func loadAverage() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(b)) {
		if i == 3 {
			break
		}
		out[i], _ = strconv.ParseFloat(f, 64)
	}
	return out
}

// rssOf reads the resident set size and its peak (VmRSS, VmHWM) of a process
// from /proc/PID/status, in bytes.
func rssOf(pid int) (rss, peak int64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak, peak > 0
}
