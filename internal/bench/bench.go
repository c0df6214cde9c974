package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jonboulle/clockwork"
	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

// Phases are the parts of a run, in the order they run. Each adds its rows; a
// phase that fails is reported and the next one still runs.
var Phases = []string{"ingest", "latency", "delivery", "storm", "rss", "scaleout", "cluster"}

// Config configures a run.
type Config struct {
	Brokers []string
	// Kafka secures the connections to the brokers, the bench's own and its
	// workers'.
	Kafka     kafkaconn.Config
	RedisAddr string
	// RedisClusterAddrs are the nodes of a Redis Cluster the bench owns, for
	// the cluster phase; it is emptied before and after each measurement.
	RedisClusterAddrs []string
	// Quick runs every phase at a smaller scale (about a tenth) in under two
	// minutes; the rows keep their names.
	Quick bool
	// WorkerCommand starts one `outbound worker`; the bench appends the flags.
	// The memory and scale-out phases run it as a subprocess.
	WorkerCommand []string
	// ProfileDir, when set, receives a CPU profile of every in-process
	// measurement (<row>.pprof). Profiling costs a few percent.
	ProfileDir string
	// Only restricts the run to these phases (see Phases); empty runs all.
	Only []string
	// Progress receives a line per step and the warnings of the measured
	// components (default: discarded).
	Progress io.Writer
}

// scale is how much work each phase does.
type scale struct {
	Events         int // events of the ingest topic (ingest and scale-out)
	Chats          int
	Workspaces     int
	Partitions     int
	LatencyRate    int // events/s
	LatencyFor     time.Duration
	Deliveries     int
	StormWindows   int
	RSSBuffered    [2]int // the two fill levels of worker_rss_100k and worker_rss_1m
	WorkerFlushers int    // the worker's --concurrency default, used by every delivery phase
	// DrainLimit stops a delivery measurement that has not delivered
	// everything by then; its figure is then a projection from its rate, so
	// that a slow sink cannot blow the run's time budget.
	DrainLimit time.Duration
}

var (
	fullScale = scale{Events: 1_000_000, Chats: 2000, Workspaces: 100, Partitions: 12,
		LatencyRate: 2000, LatencyFor: 30 * time.Second, Deliveries: 100_000, StormWindows: 100_000,
		RSSBuffered: [2]int{100_000, 1_000_000}, WorkerFlushers: 64, DrainLimit: time.Minute}
	quickScale = scale{Events: 200_000, Chats: 1000, Workspaces: 50, Partitions: 12,
		LatencyRate: 2000, LatencyFor: 5 * time.Second, Deliveries: 10_000, StormWindows: 10_000,
		RSSBuffered: [2]int{10_000, 100_000}, WorkerFlushers: 64, DrainLimit: 15 * time.Second}
)

// run is the state of one Run.
type run struct {
	cfg    Config
	sc     scale
	k      *kafkaEnv
	r      *redisEnv
	rep    *Report
	corpus corpus
	log    *zap.Logger
	start  time.Time
	// clock is the time of the in-process windowed phases: real time shifted
	// so the run starts two minutes into an hour, so that no 1h window closes
	// while ingest is measured, whenever the bench is started.
	clock *clock

	ingest    *ingestTopic // filled by the first phase that needs it
	plainRate float64      // events/s of the plain consumer, 0 until measured
}

// Run measures and returns the report. Setup errors end the run; a phase that
// fails is listed in Report.Failures and the others still run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Brokers) == 0 || cfg.RedisAddr == "" {
		return nil, errors.New("the bench needs a Kafka broker and a redis-server")
	}
	for _, p := range cfg.Only {
		if !slices.Contains(Phases, p) {
			return nil, fmt.Errorf("unknown phase %q (phases: %s)", p, strings.Join(Phases, ", "))
		}
	}
	conn, err := kafkaconn.New(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the profile directory: %w", err)
		}
	}
	r := &run{cfg: cfg, sc: fullScale, start: time.Now(), clock: newClock(),
		rep: &Report{StartedAt: time.Now().UTC(), Quick: cfg.Quick, Machine: describeMachine()}}
	if cfg.Quick {
		r.sc = quickScale
	}
	r.corpus = corpus{workspaces: r.sc.Workspaces, chats: r.sc.Chats}
	hour := time.Now().Truncate(time.Hour).Add(2 * time.Minute)
	if hour.Before(time.Now()) {
		hour = hour.Add(time.Hour)
	}
	r.clock.set(hour)
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	r.log = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(cfg.Progress), zap.WarnLevel))

	if r.r, err = newRedisEnv(ctx, cfg.RedisAddr); err != nil {
		return nil, err
	}
	r.k = newKafkaEnv(cfg.Brokers, conn)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := r.k.close(cctx); err != nil {
			r.say("cleaning up: %v", err)
		}
		if err := r.r.close(cctx); err != nil {
			r.say("cleaning up: %v", err)
		}
	}()

	phases := map[string]func(context.Context) error{
		"ingest": r.phaseIngest, "latency": r.phaseLatency, "delivery": r.phaseDelivery,
		"storm": r.phaseStorm, "rss": r.phaseRSS, "scaleout": r.phaseScaleout, "cluster": r.phaseCluster,
	}
	for _, name := range Phases {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, name) {
			continue
		}
		r.say("%s: starting", name)
		if err := phases[name](ctx); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("running phase %s: %w", name, ctx.Err())
			}
			r.say("%s: FAILED: %v", name, err)
			r.rep.Failures = append(r.rep.Failures, name+": "+err.Error())
		}
	}
	r.rep.Machine.LoadAfter = loadAverage()
	r.rep.Seconds = time.Since(r.start).Seconds()
	return r.rep, nil
}

// say writes a progress line.
func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "bench %6.1fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// profile starts a CPU profile of the named measurement when profiling is on;
// the returned func stops it.
func (r *run) profile(name string) func() {
	if r.cfg.ProfileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(r.cfg.ProfileDir, name+".pprof"))
	if err != nil {
		r.say("profiling %s: %v", name, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		r.say("profiling %s: %v", name, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// clock is a settable time: real time plus an offset, so it keeps running.
type clock struct {
	clockwork.Clock // the real clock's timers and tickers
	offset          atomic.Int64
}

func (c *clock) Now() time.Time { return c.Clock.Now().Add(time.Duration(c.offset.Load())) }

// set makes Now return t now.
func newClock() *clock { return &clock{Clock: clockwork.NewRealClock()} }

func (c *clock) set(t time.Time) { c.offset.Store(int64(time.Until(t))) }

// webhookSecret signs the deliveries of every phase, as most production
// webhooks are signed.
const webhookSecret = "whsec_YmVuY2htYXJrLXNpZ25pbmctc2VjcmV0LTMyYnl0ZXM="

// configure returns the control message of workspace ws's webhook.
func configure(ws int, g webhook.Granularity, baseURL string) schemas.ControlMessage {
	id := workspaceID(ws)
	enabled := true
	return schemas.ControlMessage{Type: schemas.TypeConfigure, WorkspaceID: id, URL: baseURL + "/hook/" + id,
		Granularity: string(g), Enabled: &enabled, OwnerEmail: fmt.Sprintf("owner%d@example.com", ws), Secret: webhookSecret}
}

// registry is every workspace's webhook as a worker would hold it after
// reading the control topic.
func (r *run) registry(workspaces int, g webhook.Granularity, baseURL string) (*control.Registry, error) {
	reg := control.NewRegistry()
	for ws := range workspaces {
		if _, err := reg.Apply(0, int64(ws), configure(ws, g, baseURL)); err != nil {
			return nil, fmt.Errorf("configuring workspace %d: %w", ws, err)
		}
	}
	return reg, nil
}

// waitFor polls cond every interval and returns when it first held.
func waitFor(ctx context.Context, timeout, every time.Duration, what string, cond func() (bool, error)) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return time.Time{}, fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// task is a goroutine whose end can be polled and waited for.
type task struct {
	done chan struct{}
	err  error
}

func newTask(f func() error) *task {
	t := &task{done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.err = f()
	}()
	return t
}

// failed returns the task's error once it has ended with one.
func (t *task) failed() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}

func (t *task) wait() error {
	<-t.done
	return t.err
}

// stopped turns the end of a component that should have run until ctx ended
// into an error when ctx had not ended.
func stopped(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("returned")
	}
	return fmt.Errorf("%s stopped early: %w", what, err)
}

// budget is how long a step of n units at a pessimistic rate may take before
// the bench gives up on it.
func budget(n int, perSecond float64) time.Duration {
	return time.Minute + time.Duration(float64(n)/perSecond*float64(time.Second))
}

// mb converts bytes to MB.
func mb(b int64) float64 { return float64(b) / (1 << 20) }

func plural(n int, what string) string {
	s := groupThousands(int64(n)) + " " + what
	switch {
	case n == 1:
	case strings.HasSuffix(what, "s"):
		s += "es"
	default:
		s += "s"
	}
	return s
}
