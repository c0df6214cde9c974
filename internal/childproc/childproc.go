// Package childproc runs the service and worker processes that the chaos
// harness and the fault tests kill, freeze and restart: one goroutine observes
// each exit, so killing, freezing and waiting are safe from anywhere.
package childproc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Process is a child process started by Start.
type Process struct {
	Name   string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error       // set before done is closed
	exited atomic.Bool // likewise
}

// Start runs argv with its output appended to logPath (kept across restarts,
// for the post-mortem) and without the OUTBOUND_* variables of this process's
// environment, which would change a worker behind its owner's back. Should the
// owner die, the child dies with it.
func Start(name, logPath string, argv ...string) (*Process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTBOUND_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		p.exited.Store(true)
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited; Err then says how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, once Done is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool { return !p.exited.Load() }

// Signal sends s (SIGSTOP freezes, SIGCONT thaws); a process that exited
// ignores it.
func (p *Process) Signal(s syscall.Signal) { _ = p.cmd.Process.Signal(s) }

// Kill sends SIGKILL, which ends a frozen process too, and waits for the exit.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to exit (SIGTERM, after thawing it) and kills it after
// grace.
func (p *Process) Stop(grace time.Duration) error {
	p.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s ignored SIGTERM for %s", p.Name, grace)
	}
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
