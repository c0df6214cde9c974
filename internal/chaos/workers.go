package chaos

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/outbound-webhooks/outbound/internal/childproc"
)

// workers is the group of `outbound worker` processes. Each slot keeps its log
// file across restarts. A worker that exits without being killed by the
// harness is a finding: it is counted and started again.
type workers struct {
	argv []string // the binary and the flags every worker shares
	dir  string

	mu         sync.Mutex
	procs      []*childproc.Process
	unexpected []string // "w2 exited: ..." for exits the harness did not cause
	stopping   bool
}

func (ws *workers) start(n int) error {
	ws.procs = make([]*childproc.Process, n)
	for i := range n {
		if err := ws.startSlot(i); err != nil {
			return err
		}
	}
	return nil
}

func (ws *workers) name(i int) string { return "w" + strconv.Itoa(i+1) }

// startSlot starts the worker of slot i; ws.mu must not be held.
func (ws *workers) startSlot(i int) error {
	name := ws.name(i)
	p, err := childproc.Start(name, filepath.Join(ws.dir, name+".log"), ws.argv...)
	if err != nil {
		return err
	}
	ws.mu.Lock()
	ws.procs[i] = p
	ws.mu.Unlock()
	go ws.watch(i, p)
	return nil
}

// watch restarts the worker of slot i should it exit on its own.
func (ws *workers) watch(i int, p *childproc.Process) {
	<-p.Done()
	ws.mu.Lock()
	current := ws.procs[i] == p && !ws.stopping
	if current {
		ws.unexpected = append(ws.unexpected, fmt.Sprintf("%s (pid %d) exited on its own: %v", p.Name, p.Pid(), p.Err()))
	}
	ws.mu.Unlock()
	if current {
		_ = ws.startSlot(i)
	}
}

// pick returns a random slot.
func (ws *workers) pick(r *rand.Rand) int { return r.IntN(len(ws.procs)) }

func (ws *workers) proc(i int) *childproc.Process {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.procs[i]
}

// kill SIGKILLs the worker of slot i: no commit, no goodbye to the group. The
// slot is marked first so that watch does not count the exit.
func (ws *workers) kill(i int) *childproc.Process {
	ws.mu.Lock()
	p := ws.procs[i]
	ws.procs[i] = nil
	ws.mu.Unlock()
	p.Kill()
	return p
}

// stopAll stops every worker as an operator would and reports the ones that
// did not exit cleanly.
func (ws *workers) stopAll(grace time.Duration) []string {
	ws.mu.Lock()
	ws.stopping = true
	procs := append([]*childproc.Process(nil), ws.procs...)
	ws.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for _, p := range procs {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Stop(grace); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s (pid %d) at shutdown: %v", p.Name, p.Pid(), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
