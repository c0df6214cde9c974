package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// cpuMeter tells where the CPU went during a measurement: this process, Redis,
// worker subprocesses and the whole machine (Kafka and whoever else shares it
// are the rest). A figure whose process sits at 100% of a core is bound by
// that process; one where the machine is at 100% of all cores is bound by the
// machine. The machine's figure counts the time the hypervisor took from this
// virtual machine (steal) as busy, and says how much of it was steal: on a
// shared host, CPU that none of our processes got.
type cpuMeter struct {
	redis *redisEnv
	pids  []int

	wall    time.Time
	self    float64
	rds     float64
	workers float64
	machine machineTimes
}

func startCPU(ctx context.Context, r *redisEnv, pids ...int) *cpuMeter {
	m := &cpuMeter{redis: r, pids: pids, wall: time.Now(), self: selfCPU()}
	m.rds, _ = r.cpuSeconds(ctx)
	m.workers = pidsCPU(pids)
	m.machine = machineCPU()
	return m
}

// stop returns a short account of the CPU used since start, as percentages
// of one core.
func (m *cpuMeter) stop(ctx context.Context) string {
	wall := time.Since(m.wall).Seconds()
	if wall <= 0 {
		return ""
	}
	pct := func(sec float64) string { return strconv.Itoa(int(100*sec/wall+0.5)) + "%" }
	rds, _ := m.redis.cpuSeconds(ctx)
	mc := machineCPU()
	parts := []string{"bench process " + pct(selfCPU()-m.self), "redis " + pct(rds-m.rds)}
	if len(m.pids) > 0 {
		parts = append(parts, "workers "+pct(pidsCPU(m.pids)-m.workers))
	}
	if total := mc.total - m.machine.total; total > 0 {
		share := func(sec float64) int { return int(100*float64(numCPU())*sec/total + 0.5) }
		parts = append(parts, fmt.Sprintf("machine %d/%d%%", share(mc.busy-m.machine.busy), 100*numCPU()),
			fmt.Sprintf("steal %d%%", share(mc.steal-m.machine.steal)))
	}
	return "cpu: " + strings.Join(parts, ", ")
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// pidsCPU sums the user and system CPU seconds of the processes. A process
// that has exited counts nothing.
func pidsCPU(pids []int) float64 {
	var sec float64
	for _, pid := range pids {
		p, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		if st, err := p.Stat(); err == nil {
			sec += st.CPUTime()
		}
	}
	return sec
}

// machineTimes are CPU seconds of all cores since boot: busy (steal
// included), of which steal, and in all.
type machineTimes struct{ busy, steal, total float64 }

func machineCPU() machineTimes {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return machineTimes{}
	}
	st, err := fs.Stat()
	if err != nil {
		return machineTimes{}
	}
	c := st.CPUTotal
	// Guest time is already counted in user time; idle and iowait are not busy.
	total := c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal
	return machineTimes{busy: total - c.Idle - c.Iowait, steal: c.Steal, total: total}
}
