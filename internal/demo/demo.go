package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/app"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/schemas"
)

// The demo's topics on its embedded broker: the worker's default names, so that
// what the demo prints reads like a production deployment.
const (
	eventsTopic = "chat.messages"
	dlqTopic    = "chat.messages.dlq"
	// Several event partitions, so that the per-partition state (watermarks,
	// flushers) is exercised as in production.
	partitions = 4
)

// timeScale makes a "1h" window last one second. It divides the sink's
// backoff too (5s doubling, capped at 30m): the ten waits before the failing
// webhook's eleventh attempt add up to about 1.2 s, each rounded up to the
// flusher's 100 ms poll, so the webhook is auto-disabled two to three seconds
// after its first message. At a scale of 360 those waits would add up to about
// 12 s, longer than the rest of the demo together.
const timeScale = 3600

// runCap bounds a run without Follow: everything normally happens within
// ten seconds, and a newcomer must not wait on a demo that is stuck.
const runCap = time.Minute

// Options are the choices of one run; the zero value is the default run.
type Options struct {
	// Follow keeps publishing traffic until Run's context ends, instead of
	// ending after one run of the plan.
	Follow bool
	// Short publishes two waves of traffic instead of four (for tests).
	Short bool
	// WebhookURL, when set, receives the healthy webhooks' deliveries instead
	// of the local receiver: an absolute http(s) URL.
	WebhookURL string
	// Redis, when its URL is set, is an empty Redis database used instead of
	// the embedded one.
	Redis redisconn.Config
	// LogFile is where the worker logs go (default: a new file in the
	// temporary directory).
	LogFile string
	// PageAddr is where the workspace page listens (default 127.0.0.1 on a
	// free port).
	PageAddr string
}

// Run runs the demo, printing what happens to stdout, and returns nil once
// everything the traffic should cause has happened; otherwise it says what did
// not. With Follow it publishes until ctx ends, then drains.
func Run(ctx context.Context, opts Options, stdout io.Writer) error {
	d := &demo{opts: opts, out: newConsole(stdout), plan: newPlan(opts.Short)}
	defer d.close()
	if err := d.start(ctx); err != nil {
		return err
	}
	return d.run(ctx)
}

// demo is one run: the embedded services, the worker, the receiver and the
// generator.
type demo struct {
	opts Options
	out  *console
	plan plan

	kafka    *kfake.Cluster
	brokers  []string
	mini     *miniredis.Miniredis // nil with Options.RedisURL
	redis    redisconn.Config     // Options.Redis, or the embedded one
	smtp     *smtptest.Server
	recv     *receiver
	http     *http.Server
	httpDone chan struct{}
	page     *page
	logPath  string
	logFile  *os.File

	worker     *app.Worker
	workerDone chan struct{} // closed when worker.Run returned, with workerErr set
	workerErr  error
	stopWorker context.CancelFunc

	gen *generator

	watchersStop  context.CancelFunc
	watchersGroup *errgroup.Group

	mu           sync.Mutex
	deadLetters  int
	autoDisabled []schemas.ControlMessage
	emails       []email
	emailsShown  int
	skippedShown int64
}

// start brings up everything the worker needs, then the worker itself, and
// returns once the worker consumes every partition of the events topic.
func (d *demo) start(ctx context.Context) error {
	d.out.line("outbound-demo: the whole product in one process")
	if err := d.startKafka(); err != nil {
		return err
	}
	if err := d.startRedis(ctx); err != nil {
		return err
	}
	if err := d.startSMTP(); err != nil {
		return err
	}
	if err := d.startReceiver(); err != nil {
		return err
	}
	if err := d.openLog(); err != nil {
		return err
	}
	d.out.line("  Worker    the real `outbound worker` code, time scale %d (a \"1h\" window lasts %s); its log: %s",
		timeScale, time.Duration(float64(time.Hour)/timeScale), d.logPath)
	d.out.line("")

	d.gen = newGenerator(d.plan, d.brokers, d.out)
	if err := d.configureWebhooks(ctx); err != nil {
		return err
	}
	return d.startWorker(ctx)
}

// webhookURL is where a workspace's deliveries go.
func (d *demo) webhookURL(ws workspace) string {
	if d.opts.WebhookURL != "" && !ws.fails {
		return d.opts.WebhookURL
	}
	return d.recv.base + "/hooks/" + ws.id
}

// configureWebhooks publishes one webhook.configure per workspace with
// control.Publisher, the operators' way, before the worker starts; the worker
// would learn them later as well, but the output reads better in this order.
func (d *demo) configureWebhooks(ctx context.Context) error {
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: d.brokers})
	if err != nil {
		return err
	}
	defer pub.Close()
	d.out.line("Webhooks, configured through %s:", control.DefaultTopic)
	on := true
	for _, ws := range d.plan.workspaces {
		msg := schemas.ControlMessage{Type: schemas.TypeConfigure, WorkspaceID: ws.id, URL: d.webhookURL(ws),
			Granularity: ws.granularity, Enabled: &on, OwnerEmail: ws.owner}
		if err := pub.Publish(ctx, msg); err != nil {
			return fmt.Errorf("configuring the demo webhooks: %w", err)
		}
		note := ""
		switch {
		case ws.fails:
			note = "  (this receiver answers 500 to every call)"
		case d.opts.WebhookURL != "":
			note = "  (your receiver: its deliveries show there, not here)"
		case ws.granularity == "none":
			note = "  (every message on its own)"
		default:
			note = fmt.Sprintf("  (one bundle per chat per %s, here %s)", ws.granularity,
				time.Duration(float64(time.Hour)/timeScale))
		}
		d.out.line("  %-14s granularity %-4s -> %s%s", ws.id, ws.granularity, msg.URL, note)
	}
	d.out.line("")
	return nil
}

func (d *demo) startWorker(ctx context.Context) error {
	log, err := app.NewLogger(app.LogConsole, d.logFile)
	if err != nil {
		return err
	}
	if err := d.listenPage(); err != nil {
		return err
	}
	d.worker, err = app.New(app.Config{
		Brokers:      d.brokers,
		Redis:        d.redis,
		GroupID:      "outbound-demo",
		EventsTopic:  eventsTopic,
		ControlTopic: control.DefaultTopic,
		DLQTopic:     dlqTopic,
		TimeScale:    timeScale,
		// Nominal, like every duration under a time scale: 17 ms here.
		Grace: time.Minute,
		// The receivers are on loopback, which the SSRF guard refuses otherwise.
		AllowPrivate: true,
		SMTPURL:      d.smtp.URL(),
		SMTPFrom:     "outbound-demo@localhost",
		// The broker's minimum; nothing in the demo waits on it unless the
		// worker stops answering.
		SessionTimeout: 6 * time.Second,
		// A demo that hangs on its way out should say so soon.
		ShutdownTimeout: 10 * time.Second,
		AdminToken:      d.page.token,
		ConsoleKey:      d.page.key,
		PublicURL:       d.page.base,
	}, log)
	if err != nil {
		return fmt.Errorf("starting the demo worker: %w", err)
	}
	if err := d.servePage(); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopWorker = cancel
	d.workerDone = make(chan struct{})
	go func() {
		defer close(d.workerDone)
		d.workerErr = d.worker.Run(wctx)
	}()

	d.out.event("worker started; joining consumer group outbound-demo")
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(d.worker.Owned()) < partitions {
		select {
		case <-d.workerDone:
			return fmt.Errorf("%w (log: %s)", d.workerStopped(), d.logPath)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the worker to join its group: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("waiting for the worker to own the %d partitions of %s: it owns %v after 30s (log: %s)",
				partitions, eventsTopic, d.worker.Owned(), d.logPath)
		case <-tick.C:
		}
	}
	d.out.event("worker owns partitions 0-%d of %s; publishing traffic", partitions-1, eventsTopic)
	return nil
}

// drainTimeout bounds how long a Follow run waits, once its context ends, for the worker to
// finish what was published (windows close within about a second).
const drainTimeout = 10 * time.Second

// run publishes the traffic and watches the worker until everything expected has
// happened (with Follow: until ctx ends, then until what was published is done),
// then stops the worker and prints the summary.
func (d *demo) run(ctx context.Context) error {
	// The demo's own goroutines outlive ctx: after Ctrl-C they still have to
	// report what happened.
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.watchersStop = stop
	g, gctx := errgroup.WithContext(bg)
	d.watchersGroup = g
	genCtx, stopGen := context.WithCancel(gctx)
	defer stopGen()
	g.Go(func() error { return d.gen.run(genCtx, d.opts.Follow) })
	g.Go(func() error { return d.watchDeadLetters(gctx) })
	g.Go(func() error { return d.watchControl(gctx) })

	var deadline <-chan time.Time
	limit := runCap
	if !d.opts.Follow {
		deadline = time.After(limit)
	}
	interrupted := ctx.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var failure error
loop:
	for {
		select {
		case <-interrupted:
			if !d.opts.Follow {
				failure = errors.New("interrupted before the demo finished")
				break loop
			}
			stopGen()
			interrupted = nil
			limit = drainTimeout
			deadline = time.After(limit)
			d.out.event("interrupted: publishing stopped; waiting up to %s for the worker to finish what was published", drainTimeout)
		case <-d.workerDone:
			failure = d.workerStopped()
			break loop
		case <-gctx.Done():
			failure = fmt.Errorf("the demo's own publishing or reading failed: %w", context.Cause(gctx))
			break loop
		case <-deadline:
			failure = fmt.Errorf("the demo did not finish within %s", limit)
			break loop
		case <-tick.C:
			d.showSkipped()
			d.showEmails(false)
			if d.gen.finished() && len(d.outstanding(bg)) == 0 {
				break loop
			}
		}
	}
	if failure != nil {
		// Name what is missing while the worker and Redis still run.
		if missing := d.outstanding(bg); len(missing) > 0 {
			failure = fmt.Errorf("%w; still waiting for: %s", failure, strings.Join(missing, "; "))
		}
	}
	d.showSkipped()
	d.showEmails(true)
	d.out.event("stopping the worker: stop fetching, finish deliveries, commit offsets, leave the group")
	// The worker and the demo's readers stop side by side: each takes about half
	// a second to leave the broker.
	stop()
	d.stopWorker()
	if err := g.Wait(); err != nil && failure == nil {
		failure = err
	}
	if err := d.shutdownWorker(); err != nil && failure == nil {
		failure = err
	}
	problems := d.summary()
	if failure == nil && len(problems) > 0 {
		failure = fmt.Errorf("the run ended, but %s", strings.Join(problems, "; "))
	}
	if failure != nil {
		return fmt.Errorf("%w (worker log: %s)", failure, d.logPath)
	}
	return nil
}

// outstanding lists what has not happened yet of what the generator's traffic
// must cause; empty means the demo is complete.
func (d *demo) outstanding(ctx context.Context) []string {
	var missing []string
	sent := d.gen.counts()
	if !d.gen.finished() {
		missing = append(missing, "the generator to publish its last wave")
	}
	// Appended moves only once Redis has the batch; the other outcomes are counted
	// before, but a batch of them alone has nothing to wait for.
	st := d.worker.ProcessorStats()
	done := st.Appended.Load() + st.Duplicates.Load() + st.DeadLettered.Load() + st.SkippedAttachment.Load() +
		st.SkippedNoText.Load() + st.DroppedNoWebhook.Load() + st.DroppedDisabled.Load()
	if done < int64(sent.Events) {
		missing = append(missing, fmt.Sprintf("the worker to process every event (%d of %d)", done, sent.Events))
	}
	if n := st.SkippedAttachment.Load(); n < int64(sent.Attachments) {
		missing = append(missing, fmt.Sprintf("the attachment to be skipped (%d of %d)", n, sent.Attachments))
	}
	d.mu.Lock()
	dead, disabled, emails := d.deadLetters, len(d.autoDisabled), len(d.emails)
	d.mu.Unlock()
	if dead < sent.Malformed {
		missing = append(missing, fmt.Sprintf("the malformed event on %s (%d of %d)", dlqTopic, dead, sent.Malformed))
	}
	if sent.ForFailing > 0 {
		if disabled < len(d.plan.failing()) {
			missing = append(missing, fmt.Sprintf("webhook.auto_disabled on %s (the failing receiver answered %d calls so far)",
				control.DefaultTopic, d.recv.failures()))
		}
		if emails < len(d.plan.failing()) {
			missing = append(missing, "the owner's email")
		}
	}
	if d.opts.WebhookURL == "" {
		if n := d.recv.missing(sent.deliverableIDs); n > 0 {
			missing = append(missing, fmt.Sprintf("%d of %d deliverable messages at the receiver", n, len(sent.deliverableIDs)))
		}
	}
	// Windows still open and bundles still queued: with a WebhookURL this is
	// the only sign of deliveries still to come.
	var windows, chats int64
	for p := range partitions {
		w, c, err := d.worker.Pending(ctx, p)
		if err != nil {
			missing = append(missing, fmt.Sprintf("Redis to answer (%v)", err))
			break
		}
		windows, chats = windows+w, chats+c
	}
	if windows+chats > 0 {
		missing = append(missing, fmt.Sprintf("%d open windows and %d chats with queued bundles", windows, chats))
	}
	return missing
}

// workerStopped describes a worker that returned before the demo stopped it.
func (d *demo) workerStopped() error {
	if d.workerErr == nil {
		return errors.New("the worker stopped on its own")
	}
	return fmt.Errorf("the worker stopped on its own: %w", d.workerErr)
}

// shutdownWorker stops the worker the way SIGTERM stops `outbound worker`.
func (d *demo) shutdownWorker() error {
	if d.stopWorker == nil {
		return nil
	}
	d.stopWorker()
	<-d.workerDone
	if d.workerErr != nil {
		return fmt.Errorf("stopping the worker: %w", d.workerErr)
	}
	return nil
}

// close releases everything start created, in reverse order; it is safe after a
// partial start.
func (d *demo) close() {
	if d.watchersStop != nil {
		d.watchersStop()
		_ = d.watchersGroup.Wait()
	}
	if d.stopWorker != nil {
		d.stopWorker()
		<-d.workerDone
	}
	if d.page != nil {
		d.page.close()
	}
	if d.http != nil {
		_ = d.http.Close()
		<-d.httpDone
	}
	if d.smtp != nil {
		_ = d.smtp.Close()
	}
	if d.mini != nil {
		d.mini.Close()
	}
	if d.kafka != nil {
		d.kafka.Close()
	}
	if d.logFile != nil {
		_ = d.logFile.Close()
	}
}
