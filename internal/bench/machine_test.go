package bench

import (
	"os"
	"testing"
	"time"
)

// TestProcReadings checks that every figure the bench takes from /proc is
// read on this machine: a zero would go into the report unnoticed.
func TestProcReadings(t *testing.T) {
	m := describeMachine()
	if m.CPUModel == "" || m.MemoryMB <= 0 || m.Kernel == "" {
		t.Errorf("describeMachine() = %+v: CPU model, memory or kernel missing", m)
	}
	if l := loadAverage(); l[0] < 0 || l[1] < 0 || l[2] < 0 {
		t.Errorf("loadAverage() = %v", l)
	}
	rss, peak, ok := rssOf(os.Getpid())
	if !ok || rss <= 0 || peak < rss {
		t.Errorf("rssOf(self) = %d, %d, %v: want 0 < rss <= peak", rss, peak, ok)
	}
	if m := machineCPU(); m.busy <= 0 || m.total <= m.busy || m.steal < 0 || m.steal > m.busy {
		t.Errorf("machineCPU() = %+v: want 0 < busy < total and 0 <= steal <= busy", m)
	}
	// The loop itself burns the CPU that pidsCPU must see.
	for deadline := time.Now().Add(5 * time.Second); pidsCPU([]int{os.Getpid()}) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("pidsCPU(self) stays 0 while this test burns CPU")
		}
	}
	if n := pidsCPU([]int{-1}); n != 0 {
		t.Errorf("pidsCPU of no process = %v, want 0", n)
	}
}
