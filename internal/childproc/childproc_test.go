package childproc_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/childproc"
)

// A child is frozen, thawed, stopped and killed as its owner asks, its output
// lands in its log, and OUTBOUND_* variables do not reach it.
func TestChildLifecycle(t *testing.T) {
	t.Setenv("OUTBOUND_SECRET_FOR_TEST", "x")
	log := filepath.Join(t.TempDir(), "child.log")
	p, err := childproc.Start("sh", log, "sh", "-c", `env; echo started; trap 'echo term; exit 3' TERM; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(read(t, log), "started") {
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(read(t, log), "OUTBOUND_SECRET_FOR_TEST") {
		t.Error("an OUTBOUND_* variable reached the child")
	}
	p.Signal(syscall.SIGSTOP)
	p.Signal(syscall.SIGCONT)
	if !p.Running() {
		t.Fatal("the child exited after SIGSTOP and SIGCONT")
	}
	// Stop returns the exit error of a child that obeys SIGTERM.
	if err := p.Stop(10 * time.Second); err == nil || err != p.Err() {
		t.Fatalf("Stop = %v; want the child's exit status 3", err)
	}
	if p.Running() || !strings.Contains(read(t, log), "term") {
		t.Fatalf("after Stop: running %v, log %q", p.Running(), read(t, log))
	}
	q, err := childproc.Start("sleep", log, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	q.Signal(syscall.SIGSTOP)
	q.Kill() // ends a frozen process too
	if q.Running() {
		t.Fatal("Kill returned before the child exited")
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
