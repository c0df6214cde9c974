package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter tells where the CPU went during a measurement: this process, Redis,
// worker subprocesses and the whole machine (Kafka and whoever else shares it
// are the rest). A figure whose process sits at 100% of a core is bound by
// that process; one where the machine is at 100% of all cores is bound by the
// machine.
type cpuMeter struct {
	redis *redisEnv
	pids  []int

	wall    time.Time
	self    float64
	rds     float64
	workers float64
	busy    float64
	total   float64
}

func startCPU(ctx context.Context, r *redisEnv, pids ...int) *cpuMeter {
	m := &cpuMeter{redis: r, pids: pids, wall: time.Now(), self: selfCPU()}
	m.rds, _ = r.cpuSeconds(ctx)
	m.workers = pidsCPU(pids)
	m.busy, m.total = machineCPU()
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
	busy, total := machineCPU()
	parts := []string{"bench process " + pct(selfCPU()-m.self), "redis " + pct(rds-m.rds)}
	if len(m.pids) > 0 {
		parts = append(parts, "workers "+pct(pidsCPU(m.pids)-m.workers))
	}
	if total > m.total {
		cores := float64(numCPU())
		parts = append(parts, fmt.Sprintf("machine %d/%d%%", int(100*cores*(busy-m.busy)/(total-m.total)+0.5), 100*numCPU()))
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

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// pidsCPU sums utime and stime of the processes (fields 14 and 15 of
// /proc/PID/stat). A process that has exited counts nothing.
func pidsCPU(pids []int) float64 {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces; fields are counted after it.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + k
	}
	return float64(ticks) / clockTicks
}

// machineCPU returns busy and total jiffies of all cores from /proc/stat.
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		total += x
		if i != 3 && i != 4 { // idle and iowait
			busy += x
		}
	}
	return busy, total
}
