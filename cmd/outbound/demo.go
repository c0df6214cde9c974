package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/app"
	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/smtptest"
	"github.com/outbound-webhooks/outbound/processor"
	"github.com/outbound-webhooks/outbound/schemas"
)

// The demo's topics on its embedded broker: the worker's default names, so that
// what the demo prints reads like a production deployment.
const (
	demoEventsTopic = "chat.messages"
	demoDLQTopic    = "chat.messages.dlq"
	// Several event partitions, so that the per-partition state (watermarks,
	// flushers) is exercised as in production.
	demoPartitions = 4
)

// demoTimeScale makes a "1h" window last one second. It divides the sink's
// backoff too (5s doubling, capped at 30m): the ten waits before the failing
// webhook's eleventh attempt add up to about 1.2 s, each rounded up to the
// flusher's 100 ms poll, so the webhook is auto-disabled two to three seconds
// after its first message. At a scale of 360 those waits would add up to about
// 12 s, longer than the rest of the demo together.
const demoTimeScale = 3600

// demoCap bounds a run without --follow: everything normally happens within
// ten seconds, and a newcomer must not wait on a demo that is stuck.
const demoCap = time.Minute

// demoConfig is the configuration of `outbound demo`.
type demoConfig struct {
	Follow     bool
	Short      bool
	WebhookURL string
	RedisURL   string
	LogFile    string
}

func (c *demoConfig) register(fs *cli.FlagSet) {
	fs.BoolVar(&c.Follow, "follow", false, "keep publishing traffic until Ctrl-C instead of ending after one run")
	fs.BoolVar(&c.Short, "short", false, "a smaller run: two waves of traffic instead of four (for tests)")
	fs.StringVar(&c.WebhookURL, "webhook-url", "", "deliver the healthy webhooks to this URL instead of the local receiver")
	fs.StringVar(&c.RedisURL, "redis-url", "", "use this Redis (an empty database) instead of the embedded one")
	fs.StringVar(&c.LogFile, "log-file", "", "write the worker's logs here (default: a new file in the temporary directory)")
}

func (c *demoConfig) validate() error {
	var errs []error
	if c.WebhookURL != "" {
		u, err := url.Parse(c.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--webhook-url %q: want an absolute http(s) URL", c.WebhookURL))
		}
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("--redis-url: %w", err))
		}
	}
	return errors.Join(errs...)
}

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("demo", "outbound demo: the whole product in one process, nothing to install.\n\n"+
		"It embeds a Kafka broker and (unless --redis-url) a Redis, runs the real worker against them,\n"+
		"publishes chat traffic for three webhooks and prints what every receiver gets.")
	fs.SetOutput(stderr)
	var cfg demoConfig
	cfg.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return cli.UsageError(err)
	}
	d := &demo{cfg: cfg, out: newDemoConsole(stdout), plan: newDemoPlan(cfg.Short)}
	defer d.close()
	if err := d.start(ctx); err != nil {
		return err
	}
	return d.run(ctx)
}

// demo is one run of `outbound demo`: the embedded services, the worker, the
// receiver and the generator.
type demo struct {
	cfg  demoConfig
	out  *demoConsole
	plan demoPlan

	kafka    *kfake.Cluster
	brokers  []string
	mini     *miniredis.Miniredis // nil with --redis-url
	redisURL string
	smtp     *smtptest.Server
	recv     *demoReceiver
	http     *http.Server
	httpDone chan struct{}
	logPath  string
	logFile  *os.File

	worker     *app.Worker
	workerDone chan struct{} // closed when worker.Run returned, with workerErr set
	workerErr  error
	stopWorker context.CancelFunc

	gen *demoGenerator

	watchersStop  context.CancelFunc
	watchersGroup *errgroup.Group

	mu           sync.Mutex
	deadLetters  int
	autoDisabled []schemas.ControlMessage
	emails       []demoEmail
	emailsShown  int
	skippedShown int64
}

// start brings up everything the worker needs, then the worker itself, and
// returns once the worker consumes every partition of the events topic.
func (d *demo) start(ctx context.Context) error {
	var err error
	d.out.line("outbound demo: the whole product in one process")
	// One broker: the demo shows the worker, not broker fail-over.
	d.kafka, err = kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(demoPartitions, demoEventsTopic),
		kfake.SeedTopics(1, control.DefaultTopic, demoDLQTopic))
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	d.brokers = d.kafka.ListenAddrs()
	d.out.line("  Kafka     embedded broker (kfake) at %s; topics %s (%d partitions), %s, %s",
		strings.Join(d.brokers, ","), demoEventsTopic, demoPartitions, control.DefaultTopic, demoDLQTopic)

	if err := d.startRedis(ctx); err != nil {
		return err
	}
	if d.smtp, err = smtptest.New("127.0.0.1:0"); err != nil {
		return fmt.Errorf("starting the mail catcher: %w", err)
	}
	d.smtp.OnMessage(d.onEmail)
	d.out.line("  SMTP      in-process mail catcher at %s: shows the owner email instead of sending it", d.smtp.Addr())

	if err := d.startReceiver(); err != nil {
		return err
	}
	if err := d.openLog(); err != nil {
		return err
	}
	d.out.line("  Worker    the real `outbound worker` code, time scale %d (a \"1h\" window lasts %s); its log: %s",
		demoTimeScale, time.Duration(float64(time.Hour)/demoTimeScale), d.logPath)
	d.out.line("")

	d.gen = newDemoGenerator(d.plan, d.brokers, d.out)
	if err := d.configureWebhooks(ctx); err != nil {
		return err
	}
	return d.startWorker(ctx)
}

func (d *demo) startRedis(ctx context.Context) error {
	if d.cfg.RedisURL != "" {
		// The broker is new on every run, so its offsets restart at 0: watermarks
		// and control offsets left in Redis by an earlier run would hide the new
		// records. Refuse rather than flush someone's data.
		opts, err := redis.ParseURL(d.cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("parsing --redis-url: %w", err)
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		n, err := rdb.DBSize(ctx).Result()
		if err != nil {
			return fmt.Errorf("checking --redis-url %s: %w", opts.Addr, err)
		}
		if n > 0 {
			return fmt.Errorf("checking --redis-url: database %d at %s holds %d keys; the demo needs an empty database "+
				"(its embedded Kafka starts from offset 0 every run, and offsets kept in Redis would hide the new records): "+
				"pick another one (redis://%s/15) or empty this one yourself", opts.DB, opts.Addr, n, opts.Addr)
		}
		d.redisURL = d.cfg.RedisURL
		d.out.line("  Redis     %s (the demo's keys stay there afterwards)", opts.Addr)
		return nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return fmt.Errorf("starting the embedded Redis: %w", err)
	}
	d.mini = m
	d.redisURL = "redis://" + m.Addr() + "/0"
	d.out.line("  Redis     embedded (miniredis) at %s", m.Addr())
	return nil
}

func (d *demo) startReceiver() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for the webhook receiver: %w", err)
	}
	failing := map[string]bool{}
	for _, ws := range d.plan.failing() {
		failing[ws.id] = true
	}
	d.recv = newDemoReceiver(d.out, failing, "http://"+ln.Addr().String())
	d.http = &http.Server{Handler: d.recv, ReadHeaderTimeout: 5 * time.Second}
	d.httpDone = make(chan struct{})
	go func() {
		defer close(d.httpDone)
		// Serve returns ErrServerClosed once close shuts it down; nothing else
		// can stop a loopback listener we own.
		_ = d.http.Serve(ln)
	}()
	d.out.line("  Receiver  local webhook receiver at %s", d.recv.base)
	return nil
}

func (d *demo) openLog() error {
	var err error
	if d.cfg.LogFile != "" {
		d.logFile, err = os.OpenFile(d.cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	} else {
		d.logFile, err = os.CreateTemp("", "outbound-demo-*.log")
	}
	if err != nil {
		return fmt.Errorf("opening the worker log: %w", err)
	}
	d.logPath = d.logFile.Name()
	return nil
}

// webhookURL is where a workspace's deliveries go.
func (d *demo) webhookURL(ws demoWorkspace) string {
	if d.cfg.WebhookURL != "" && !ws.fails {
		return d.cfg.WebhookURL
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
		case d.cfg.WebhookURL != "":
			note = "  (your receiver: its deliveries show there, not here)"
		case ws.granularity == "none":
			note = "  (every message on its own)"
		default:
			note = fmt.Sprintf("  (one bundle per chat per %s, here %s)", ws.granularity,
				time.Duration(float64(time.Hour)/demoTimeScale))
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
	d.worker, err = app.New(app.Config{
		Brokers:      d.brokers,
		RedisURL:     d.redisURL,
		GroupID:      "outbound-demo",
		EventsTopic:  demoEventsTopic,
		ControlTopic: control.DefaultTopic,
		DLQTopic:     demoDLQTopic,
		TimeScale:    demoTimeScale,
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
	}, log)
	if err != nil {
		return fmt.Errorf("starting the demo worker: %w", err)
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
	for len(d.worker.Owned()) < demoPartitions {
		select {
		case <-d.workerDone:
			return fmt.Errorf("%w (log: %s)", d.workerStopped(), d.logPath)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the worker to join its group: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("waiting for the worker to own the %d partitions of %s: it owns %v after 30s (log: %s)",
				demoPartitions, demoEventsTopic, d.worker.Owned(), d.logPath)
		case <-tick.C:
		}
	}
	d.out.event("worker owns partitions 0-%d of %s; publishing traffic", demoPartitions-1, demoEventsTopic)
	return nil
}

// demoDrain bounds how long `--follow` waits, after Ctrl-C, for the worker to
// finish what was published (windows close within about a second).
const demoDrain = 10 * time.Second

// run publishes the traffic and watches the worker until everything expected has
// happened (with --follow: until Ctrl-C, then until what was published is done),
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
	g.Go(func() error { return d.gen.run(genCtx, d.cfg.Follow) })
	g.Go(func() error { return d.watchDeadLetters(gctx) })
	g.Go(func() error { return d.watchControl(gctx) })

	var deadline <-chan time.Time
	limit := demoCap
	if !d.cfg.Follow {
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
			if !d.cfg.Follow {
				failure = errors.New("interrupted before the demo finished")
				break loop
			}
			stopGen()
			interrupted = nil
			limit = demoDrain
			deadline = time.After(limit)
			d.out.event("interrupted: publishing stopped; waiting up to %s for the worker to finish what was published", demoDrain)
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
		missing = append(missing, fmt.Sprintf("the malformed event on %s (%d of %d)", demoDLQTopic, dead, sent.Malformed))
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
	if d.cfg.WebhookURL == "" {
		if n := d.recv.missing(sent.deliverableIDs); n > 0 {
			missing = append(missing, fmt.Sprintf("%d of %d deliverable messages at the receiver", n, len(sent.deliverableIDs)))
		}
	}
	// Windows still open and bundles still queued: with --webhook-url this is
	// the only sign of deliveries still to come.
	var windows, chats int64
	for p := range demoPartitions {
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

// showSkipped prints the attachments the processor skipped since the last call.
// The processor counts them but does not say which: the generator knows.
func (d *demo) showSkipped() {
	n := d.worker.ProcessorStats().SkippedAttachment.Load()
	d.mu.Lock()
	shown := d.skippedShown
	d.skippedShown = n
	d.mu.Unlock()
	if n > shown {
		d.out.eventWith(d.plan.attachmentNotes(), "skipped %s with an attachment (processor stats: %d in total); only text and emoji are delivered",
			plural(int(n-shown), "message"), n)
	}
}

// watchDeadLetters reads the DLQ topic back and prints why each record is there.
func (d *demo) watchDeadLetters(ctx context.Context) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: d.brokers, Topic: demoDLQTopic, Partition: 0, MaxWait: time.Second})
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading %s: %w", demoDLQTopic, err)
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		d.mu.Lock()
		d.deadLetters++
		d.mu.Unlock()
		d.out.eventWith([]string{
			fmt.Sprintf("%s: %s", processor.HeaderReason, h[processor.HeaderReason]),
			fmt.Sprintf("the record as it came: %s", clip(string(m.Value), 90)),
		}, "dead-lettered: %s partition %s offset %s, now on %s",
			h[processor.HeaderTopic], h[processor.HeaderPartition], h[processor.HeaderOffset], demoDLQTopic)
	}
}

// watchControl reads the control topic and prints every webhook.auto_disabled.
func (d *demo) watchControl(ctx context.Context) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: d.brokers, Topic: control.DefaultTopic, Partition: 0, MaxWait: time.Second})
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading %s: %w", control.DefaultTopic, err)
		}
		msg, err := schemas.DecodeControl(m.Value)
		if err != nil || msg.Type != schemas.TypeAutoDisabled {
			continue
		}
		d.mu.Lock()
		d.autoDisabled = append(d.autoDisabled, msg)
		d.mu.Unlock()
		d.out.eventWith([]string{"last error: " + msg.LastError, "every worker stops delivering to it; the notifier emails the owner"},
			"%s on %s: workspace %s, %d consecutive errors", msg.Type, control.DefaultTopic, msg.WorkspaceID, msg.ConsecutiveErrors)
	}
}

// onEmail keeps an email for showEmails: the SMTP server must not be held up, and
// the notifier may send it before watchControl has read the event behind it.
func (d *demo) onEmail(m smtptest.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.emails = append(d.emails, demoEmail{Message: m, at: time.Now()})
}

// demoEmail is an email the mail catcher accepted.
type demoEmail struct {
	smtptest.Message
	at time.Time
}

// showEmails prints the emails not shown yet, each after the auto-disable event
// it is about, so the output reads in causal order; an email whose event does not
// show up within a second is printed anyway, as is every email when all is true.
func (d *demo) showEmails(all bool) {
	d.mu.Lock()
	var show []demoEmail
	for _, e := range d.emails[d.emailsShown:] {
		if !all && len(d.autoDisabled) <= d.emailsShown && time.Since(e.at) < time.Second {
			break
		}
		show = append(show, e)
		d.emailsShown++
	}
	d.mu.Unlock()
	for _, m := range show {
		more := []string{"Subject: " + m.Subject, ""}
		lines := strings.Split(strings.TrimSpace(m.Body), "\n")
		for i, l := range lines {
			if i == 6 {
				more = append(more, "...")
				break
			}
			more = append(more, strings.TrimRight(l, "\r"))
		}
		d.out.eventWith(more, "email to %s (caught by the in-process SMTP server, from %s):", strings.Join(m.To, ", "), m.From)
	}
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

// summary prints the totals, checks them against what the generator sent and
// returns what does not match.
func (d *demo) summary() []string {
	sent := d.gen.counts()
	st := d.worker.ProcessorStats()
	sk := d.worker.SinkStats()
	var disabled []string
	for _, w := range d.worker.Webhooks() {
		if !w.Enabled {
			disabled = append(disabled, fmt.Sprintf("%s (%s)", w.Workspace, w.DisabledReason))
		}
	}
	d.mu.Lock()
	emails := len(d.emails)
	d.mu.Unlock()
	bundles, singles := d.recv.counts()

	consumed, skipped, dead := st.Consumed.Load(), st.SkippedAttachment.Load()+st.SkippedNoText.Load(), st.DeadLettered.Load()
	delivered := sk.Delivered.Load()

	d.out.line("")
	d.out.line("Summary")
	d.out.line("  events in          %4d  (published %d)", consumed, sent.Events)
	d.out.line("  deliveries         %4d  (webhook calls answered 2xx)", delivered)
	if d.cfg.WebhookURL == "" {
		d.out.line("    bundles          %4d", bundles)
		d.out.line("    single messages  %4d", singles)
	} else {
		d.out.line("    bundles and single messages: counted by your receiver at %s", d.cfg.WebhookURL)
	}
	d.out.line("  skipped            %4d  (with an attachment or without text)", skipped)
	d.out.line("  dead-lettered      %4d", dead)
	d.out.line("  disabled webhooks  %4d%s", len(disabled), strings.Join(append([]string{""}, disabled...), "  "))
	d.out.line("  failed attempts    %4d", sk.Failed.Load())
	d.out.line("  owner emails       %4d", emails)
	d.out.line("  worker log         %s", d.logPath)

	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	check(consumed == int64(sent.Events), "the worker consumed %d events of %d published", consumed, sent.Events)
	check(skipped == int64(sent.Attachments), "%d messages were skipped, %d had an attachment", skipped, sent.Attachments)
	check(dead == int64(sent.Malformed), "%d events were dead-lettered, %d were malformed", dead, sent.Malformed)
	failing := 0
	if sent.ForFailing > 0 {
		failing = len(d.plan.failing())
	}
	check(len(disabled) == failing, "%d webhooks are disabled, %d receivers always fail", len(disabled), failing)
	check(emails == failing, "%d owner emails were sent for %d auto-disabled webhooks", emails, failing)
	if !d.cfg.Follow {
		check(delivered >= int64(sent.MinDeliveries()), "%d deliveries, fewer than the %d the traffic needs at least", delivered, sent.MinDeliveries())
	}
	if len(problems) == 0 && !d.cfg.Follow {
		d.out.line("")
		d.out.line("Everything the traffic should cause happened. Run `outbound demo --follow` to keep it going,")
		d.out.line("or `outbound demo --webhook-url https://...` to see the deliveries in your own receiver.")
	}
	return problems
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

// demoConsole prints the demo's own output, one event at a time, each stamped
// with the time since the start.
type demoConsole struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newDemoConsole(w io.Writer) *demoConsole { return &demoConsole{w: w, start: time.Now()} }

// line prints a line without a time stamp.
func (c *demoConsole) line(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, format+"\n", args...)
}

// event prints a time-stamped line.
func (c *demoConsole) event(format string, args ...any) { c.eventWith(nil, format, args...) }

// eventWith prints a time-stamped line with detail lines indented under it, with
// no other output in between.
func (c *demoConsole) eventWith(details []string, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "%6.2fs  %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
	for _, l := range details {
		fmt.Fprintf(c.w, "         %s\n", l)
	}
}

// plural is "1 message", "2 messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// clip shortens s to n runes for display.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}

// demoReceiver is the local webhook endpoint: /hooks/<workspace>. It prints every
// call and answers 500 to the failing workspace, 200 to the others.
type demoReceiver struct {
	out     *demoConsole
	failing map[string]bool // workspaces whose calls are answered 500
	base    string

	mu        sync.Mutex
	fails     int
	bundles   int
	singles   int
	seenIDs   map[string]bool // webhook-id: a redelivery carries the same one
	delivered map[string]bool // message ids
}

func newDemoReceiver(out *demoConsole, failing map[string]bool, base string) *demoReceiver {
	return &demoReceiver{out: out, failing: failing, base: base, seenIDs: map[string]bool{}, delivered: map[string]bool{}}
}

func (r *demoReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ws, ok := strings.CutPrefix(req.URL.Path, "/hooks/")
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if !ok || req.Method != http.MethodPost || err != nil {
		http.Error(w, "not a webhook call", http.StatusBadRequest)
		return
	}
	var p struct {
		Chat        schemas.Chat      `json:"chat"`
		Message     *schemas.Message  `json:"message"`
		Messages    []schemas.Message `json:"messages"`
		Aggregation string            `json:"aggregation"`
	}
	_ = json.Unmarshal(body, &p)
	chat := fmt.Sprintf("chat %q (%s)", p.Chat.FullName, chatKind(p.Chat))

	if r.failing[ws] {
		r.mu.Lock()
		r.fails++
		n := r.fails
		r.mu.Unlock()
		note := ""
		if n == 1 {
			note = " (more than 10 in a row disable the webhook)"
		}
		r.out.event("✗ %-14s %s: answered 500, error %d in a row%s", ws, chat, n, note)
		http.Error(w, "the demo's failing receiver is down", http.StatusInternalServerError)
		return
	}

	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	again := r.seenIDs[id]
	r.seenIDs[id] = true
	msgs := p.Messages
	if p.Message != nil {
		msgs = []schemas.Message{*p.Message}
	}
	for _, m := range msgs {
		r.delivered[m.MessageID] = true
	}
	if !again {
		if p.Message != nil {
			r.singles++
		} else {
			r.bundles++
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)

	suffix := ""
	if again {
		suffix = "  (again: same webhook-id, receivers de-duplicate on it)"
	}
	if p.Message != nil {
		m := p.Message
		who := "from " + m.Sender.FullName
		if m.Direction == schemas.DirectionSent {
			who = "by " + m.Sender.FullName
		}
		r.out.event("→ %-14s %s: 1 message, %s %s: %s%s", ws, chat, m.Direction, who, m.Text, suffix)
		return
	}
	lines := strings.Split(p.Aggregation, "<br/>")
	for i := range lines {
		prefix := "             "
		if i == 0 {
			prefix = "aggregation: "
		}
		lines[i] = prefix + lines[i]
	}
	r.out.eventWith(lines, "→ %-14s %s: bundle of %s%s", ws, chat, plural(len(p.Messages), "message"), suffix)
}

func chatKind(c schemas.Chat) string {
	if c.IsGroup {
		return "group"
	}
	return "direct, " + c.Phone
}

func (r *demoReceiver) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fails
}

func (r *demoReceiver) counts() (bundles, singles int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bundles, r.singles
}

// missing counts the ids not delivered yet.
func (r *demoReceiver) missing(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if !r.delivered[id] {
			n++
		}
	}
	return n
}

// demoWorkspace is one customer of the demo and its webhook.
type demoWorkspace struct {
	id, granularity, owner string
	fails                  bool // its receiver answers 500 to every call
	account                schemas.Account
}

// demoChat is one chat of a workspace.
type demoChat struct {
	ws   int // index in demoPlan.workspaces
	chat schemas.Chat
}

// demoLine is one record of the traffic: a message, or a malformed record.
type demoLine struct {
	wave       int
	chat       int // index in demoPlan.chats
	direction  string
	member     string // who wrote a received group message
	text       string
	attachment *schemas.Attachment
	malformed  string // the record's raw bytes when it is not an event at all
}

// demoPlan is the traffic the generator publishes, wave after wave.
type demoPlan struct {
	workspaces []demoWorkspace
	chats      []demoChat
	lines      []demoLine
	waves      int
	gap        time.Duration
}

// newDemoPlan returns the demo's traffic: three workspaces, direct and group
// chats, both directions, emoji and right-to-left text, one attachment and one
// malformed record. The short plan keeps the first two waves.
func newDemoPlan(short bool) demoPlan {
	p := demoPlan{
		workspaces: []demoWorkspace{
			{id: "acme-travel", granularity: "none", owner: "noa@acme-travel.example",
				account: schemas.Account{FullName: "Noa Levi", Email: "noa@acme-travel.example", Phone: "+972501234567"}},
			{id: "globex-realty", granularity: "1h", owner: "maria@globex-realty.example",
				account: schemas.Account{FullName: "María García", Email: "maria@globex-realty.example", Phone: "+34600111222"}},
			{id: "initech", granularity: "none", owner: "bill.lumbergh@initech.example", fails: true,
				account: schemas.Account{FullName: "Peter Gibbons", Email: "peter@initech.example", Phone: "+15125550100"}},
		},
		waves: 4,
		// Longer than a "1h" window (1 s): every wave opens new windows.
		gap: 1200 * time.Millisecond,
	}
	if short {
		p.waves = 2
	}
	chat := func(ws int, id, name, phone string) int {
		a := p.workspaces[ws].account
		p.chats = append(p.chats, demoChat{ws: ws, chat: schemas.Chat{FullName: name, ResponsibleName: a.FullName,
			ResponsibleEmail: a.Email, ChatURL: "https://app.timelines.ai/chat/" + id + "/messages/", ChatID: id,
			IsGroup: phone == "", Phone: phone}})
		return len(p.chats) - 1
	}
	yossi := chat(0, "10010001", "Yossi Cohen", "+972541112233")
	eilat := chat(0, "10010002", "Eilat trip 🏖️", "")
	ahmed := chat(1, "20010001", "Ahmed Hassan", "+971501234567")
	house := chat(1, "20010002", "Open house, Calle Mayor 12", "")
	milton := chat(2, "30010001", "Milton Waddams", "+15125550123")

	const in, out = schemas.DirectionReceived, schemas.DirectionSent
	all := []demoLine{
		{wave: 0, chat: yossi, direction: in, text: "שלום! ההזמנה שלי לאילת עדיין בתוקף?"},
		{wave: 0, chat: yossi, direction: out, text: "כן, הכל מאושר ✅ Check-in from 15:00"},
		{wave: 0, chat: ahmed, direction: in, text: "مرحبا، هل الشقة في شارع الملك ما زالت متاحة؟"},
		{wave: 0, chat: ahmed, direction: out, text: "Yes! Viewings tomorrow at 10:00 or 14:00 🏠"},
		{wave: 0, chat: house, direction: in, member: "Lucía Fernández", text: "Is parking included? 🚗"},
		{wave: 0, chat: house, direction: out, text: "One garage space, yes"},
		{wave: 0, chat: house, direction: in, member: "Tom Becker", text: "Can we bring our dog? 🐕"},
		{wave: 0, chat: milton, direction: in, text: "Excuse me, I believe you have my stapler 📎"},

		{wave: 1, chat: yossi, direction: in, text: "מעולה, תודה רבה! 🙏"},
		{wave: 1, chat: eilat, direction: in, member: "Avi Ben-David", text: "Who's bringing the snorkels? 🤿"},
		{wave: 1, chat: ahmed, direction: in, text: "14:00 works for me 👍"},
		// Only text and emoji are delivered: the caption does not save it.
		{wave: 1, chat: ahmed, direction: out, text: "Here is the floor plan 📐", attachment: &schemas.Attachment{Type: "document",
			Filename: "floorplan.pdf", Mimetype: "application/pdf", Size: 482133, URL: "https://files.example/floorplan.pdf"}},
		{wave: 1, chat: ahmed, direction: out, text: "See you at 14:00, María"},
		{wave: 1, chat: house, direction: out, text: "Of course, pets are welcome 🐾"},
		{wave: 1, chat: milton, direction: out, text: "Milton, we're moving your desk to storage room B"},
		// An upstream producer cut this one at its buffer size: not JSON at all.
		{wave: 1, chat: yossi, malformed: `{"workspace_id":"acme-travel","chat":{"chat_id":"10010001"},"message":{"message_id":"wamid-cut","text":"Can I change my booking to`},

		{wave: 2, chat: eilat, direction: out, text: "They're included in the boat tour 😊"},
		{wave: 2, chat: eilat, direction: in, member: "Shira Mizrahi", text: "🐠🐠🐠"},
		{wave: 2, chat: ahmed, direction: in, text: "شكراً جزيلاً 🌹"},
		{wave: 2, chat: house, direction: in, member: "Lucía Fernández", text: "Perfect, see you Saturday!"},
		{wave: 2, chat: house, direction: in, member: "Tom Becker", text: "👍"},
		{wave: 2, chat: milton, direction: in, text: "I could set the building on fire 🔥"},

		{wave: 3, chat: yossi, direction: out, text: "נסיעה טובה! 🚗"},
		{wave: 3, chat: house, direction: out, text: "Doors open at 11:00 🔑"},
	}
	for _, l := range all {
		if l.wave < p.waves {
			p.lines = append(p.lines, l)
		}
	}
	return p
}

// failing returns the workspaces whose receiver fails.
func (p demoPlan) failing() []demoWorkspace {
	var out []demoWorkspace
	for _, ws := range p.workspaces {
		if ws.fails {
			out = append(out, ws)
		}
	}
	return out
}

// demoCounts is what the generator published, and so what the worker must do.
type demoCounts struct {
	Events      int // records on the events topic
	Attachments int // messages with an attachment: skipped
	Malformed   int // records that are not events: dead-lettered
	ForFailing  int // messages for the webhook whose receiver fails

	singles        int             // deliverable messages of "none" webhooks
	windowed       map[string]bool // round and chat of deliverable messages of windowed webhooks
	deliverableIDs []string        // message ids the healthy webhooks must receive
}

// MinDeliveries is the fewest successful webhook calls the traffic needs: one per
// deliverable message of a "none" webhook, and at least one bundle per chat and
// round of a windowed one (a chat's messages of one round may span windows).
func (c demoCounts) MinDeliveries() int { return c.singles + len(c.windowed) }

// tally counts line i of round r, once it is published.
func (p demoPlan) tally(c *demoCounts, round, i int) {
	l := p.lines[i]
	ws := p.workspaces[p.chats[l.chat].ws]
	c.Events++
	switch {
	case l.malformed != "":
		c.Malformed++
	case l.attachment != nil:
		c.Attachments++
	case ws.fails:
		c.ForFailing++
	default:
		c.deliverableIDs = append(c.deliverableIDs, messageID(round, i))
		if ws.granularity == "none" {
			c.singles++
			break
		}
		if c.windowed == nil {
			c.windowed = map[string]bool{}
		}
		c.windowed[fmt.Sprintf("%d/%d", round, l.chat)] = true
	}
}

// counts is what one round of the plan publishes.
func (p demoPlan) counts() demoCounts {
	var c demoCounts
	for i := range p.lines {
		p.tally(&c, 0, i)
	}
	return c
}

func (p demoPlan) attachmentNotes() []string {
	var notes []string
	for _, l := range p.lines {
		if l.attachment != nil {
			c := p.chats[l.chat]
			notes = append(notes, fmt.Sprintf("%s, chat %q: %s (%s)", p.workspaces[c.ws].id, c.chat.FullName,
				l.attachment.Filename, l.attachment.Mimetype))
		}
	}
	return notes
}

// messageID is the id of line i of the plan in round r.
func messageID(round, i int) string { return fmt.Sprintf("wamid-r%d-%02d", round+1, i+1) }

// record builds the events-topic record of line i in round r at time at.
func (p demoPlan) record(round, i int, at time.Time, newChat bool) kafka.Message {
	l := p.lines[i]
	c := p.chats[l.chat]
	key := []byte(c.chat.ChatID)
	if l.malformed != "" {
		return kafka.Message{Key: key, Value: []byte(l.malformed)}
	}
	acct := p.workspaces[c.ws].account
	chat := c.chat
	chat.IsNewChat = newChat
	// A group chat has no phone numbers, on either side.
	phone := func(s string) string {
		if chat.IsGroup {
			return ""
		}
		return s
	}
	us := schemas.Party{FullName: acct.FullName, Phone: phone(acct.Phone)}
	them := schemas.Party{FullName: chat.FullName, Phone: chat.Phone}
	if l.member != "" {
		them.FullName = l.member
	}
	sender, recipient := them, us
	if l.direction == schemas.DirectionSent {
		sender, recipient = us, schemas.Party{FullName: chat.FullName, Phone: chat.Phone}
	}
	id := messageID(round, i)
	ev := schemas.Event{
		WorkspaceID:     p.workspaces[c.ws].id,
		WhatsAppAccount: acct,
		Chat:            chat,
		Message: schemas.EventMessage{MessageID: id, Direction: l.direction, Timestamp: schemas.Timestamp{Time: at.UTC()},
			Sender: sender, Recipient: recipient, Text: l.text,
			Permalink: "https://app.timelines.ai/permalink/" + id + "/"},
	}
	if l.attachment != nil {
		ev.Message.Attachments = []schemas.Attachment{*l.attachment}
	}
	// Marshalling these plain structs cannot fail.
	value, _ := json.Marshal(ev)
	return kafka.Message{Key: key, Value: value}
}

// demoGenerator publishes a plan's waves on the events topic, as the upstream
// chat services would.
type demoGenerator struct {
	plan    demoPlan
	brokers []string
	out     *demoConsole

	mu   sync.Mutex
	sent demoCounts
	done bool
}

func newDemoGenerator(plan demoPlan, brokers []string, out *demoConsole) *demoGenerator {
	return &demoGenerator{plan: plan, brokers: brokers, out: out}
}

func (g *demoGenerator) counts() demoCounts {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.sent
	c.windowed = maps.Clone(g.sent.windowed)
	c.deliverableIDs = slices.Clone(g.sent.deliverableIDs)
	return c
}

// finished reports whether the generator has stopped publishing.
func (g *demoGenerator) finished() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}

// run publishes the plan once, or round after round until ctx ends when follow.
func (g *demoGenerator) run(ctx context.Context, follow bool) error {
	defer func() {
		g.mu.Lock()
		g.done = true
		g.mu.Unlock()
	}()
	w := &kafka.Writer{Addr: kafka.TCP(g.brokers...), Topic: demoEventsTopic,
		// Keyed by chat id, like the upstream services: one chat, one partition.
		Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	for round := 0; round == 0 || follow; round++ {
		for wave := range g.plan.waves {
			if round > 0 || wave > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(g.plan.gap):
				}
			}
			now := time.Now()
			var msgs []kafka.Message
			var lines []int
			for i, l := range g.plan.lines {
				if l.wave == wave {
					msgs = append(msgs, g.plan.record(round, i, now, round == 0 && g.firstInChat(i)))
					lines = append(lines, i)
				}
			}
			// Printed first: the worker delivers some of them before the write
			// returns.
			g.out.event("publishing wave %d of %d%s: %d events on %s", wave+1, g.plan.waves, roundNote(round, follow),
				len(msgs), demoEventsTopic)
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("publishing wave %d of the demo traffic: %w", wave+1, err)
			}
			g.mu.Lock()
			for _, i := range lines {
				g.plan.tally(&g.sent, round, i)
			}
			g.mu.Unlock()
		}
	}
	return nil
}

func roundNote(round int, follow bool) string {
	if !follow {
		return ""
	}
	return fmt.Sprintf(", round %d", round+1)
}

// firstInChat reports whether line i is its chat's first message in the plan.
func (g *demoGenerator) firstInChat(i int) bool {
	for j := range i {
		if g.plan.lines[j].chat == g.plan.lines[i].chat && g.plan.lines[j].malformed == "" {
			return false
		}
	}
	return true
}
