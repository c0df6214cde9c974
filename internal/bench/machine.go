package bench

import (
	"runtime"

	"github.com/prometheus/procfs"
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

// describeMachine reads what /proc says about the machine; a figure it cannot
// read stays zero.
func describeMachine() Machine {
	m := Machine{CPUs: numCPU(), GoVersion: runtime.Version(), LoadBefore: loadAverage()}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return m
	}
	if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
		m.CPUModel = cpus[0].ModelName
	}
	if mem, err := fs.Meminfo(); err == nil && mem.MemTotal != nil {
		m.MemoryMB = int(*mem.MemTotal / 1024) // kB
	}
	if rel, err := fs.SysctlStrings("kernel.osrelease"); err == nil && len(rel) > 0 {
		m.Kernel = rel[0]
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() [3]float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return [3]float64{}
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return [3]float64{}
	}
	return [3]float64{l.Load1, l.Load5, l.Load15}
}

// rssOf reads the resident set size and its peak (VmRSS, VmHWM) of a process,
// in bytes.
func rssOf(pid int) (rss, peak int64, ok bool) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, 0, false
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, 0, false
	}
	return int64(st.VmRSS), int64(st.VmHWM), st.VmHWM > 0
}
