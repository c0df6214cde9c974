package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/control"
	"github.com/outbound-webhooks/outbound/internal/app"
	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/settings"
	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/sink"
	"github.com/outbound-webhooks/outbound/webhook"
)

const ctlUsage = `outbound ctl: change webhooks through the control topic, read their state from Redis.

Usage:
  outbound ctl configure --workspace ID --url URL --granularity G --owner-email EMAIL [--secret S] [--disabled]
  outbound ctl enable    --workspace ID
  outbound ctl disable   --workspace ID [--reason TEXT]
  outbound ctl delete    --workspace ID
  outbound ctl status    --workspace ID [--json]
  outbound ctl requests  --workspace ID [-o FILE]

configure, enable, disable and delete publish a control message (--kafka-brokers,
--control-topic); every running worker applies it within about a second. status
and requests read what the workers materialised in Redis (--redis-url).

Run "outbound ctl <command> --help" for the flags of a command.`

// ctlCommand is one `outbound ctl` subcommand; args follow its name.
type ctlCommand func(ctx context.Context, args []string, stdout, stderr io.Writer) error

func runCtl(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, ctlUsage)
		return cli.UsageError(errors.New("missing command"))
	}
	commands := map[string]ctlCommand{
		"configure": ctlConfigure,
		"enable":    ctlEnable,
		"disable":   ctlDisable,
		"delete":    ctlDelete,
		"status":    ctlStatus,
		"requests":  ctlRequests,
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprintln(stdout, ctlUsage)
		return nil
	}
	cmd, ok := commands[name]
	if !ok {
		return cli.UsageError(fmt.Errorf("unknown command %q: want configure, enable, disable, delete, status or requests", name))
	}
	if err := cmd(ctx, args[1:], stdout, stderr); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// workspaceFlag is --workspace, which every subcommand requires.
type workspaceFlag string

func (w *workspaceFlag) register(fs *cli.FlagSet) {
	fs.StringVar((*string)(w), "workspace", "", "workspace id (required)")
}

func (w workspaceFlag) check() error {
	if w == "" {
		return cli.UsageError(errors.New("--workspace is required"))
	}
	if err := schemas.CheckID(string(w)); err != nil {
		return cli.UsageError(fmt.Errorf("--workspace: %w", err))
	}
	return nil
}

// parse parses a subcommand's args and checks the workspace every subcommand
// requires.
func (w *workspaceFlag) parse(fs *cli.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return w.check()
}

// publishFlags are the flags of the subcommands that publish a control message.
type publishFlags struct {
	brokers string
	kafka   kafkaconn.Config
	topic   string
}

func (p *publishFlags) register(fs *cli.FlagSet) {
	fs.StringVar(&p.brokers, "kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&p.topic, "control-topic", control.DefaultTopic, "control topic (key = workspace_id)")
	p.kafka.Register(fs)
}

// publish publishes msg and says so on stdout. The Publisher checks msg against
// the control schema first; what it refuses is the operator's input, so it is a
// usage error (exit status 2) like a bad flag.
func (p *publishFlags) publish(ctx context.Context, msg schemas.ControlMessage, stdout io.Writer) error {
	brokers := cli.SplitList(p.brokers)
	if len(brokers) == 0 {
		return cli.UsageError(errors.New("--kafka-brokers is empty"))
	}
	if p.topic == "" {
		return cli.UsageError(errors.New("--control-topic is empty"))
	}
	kc, err := kafkaconn.New(p.kafka)
	if err != nil {
		return cli.UsageError(err)
	}
	defer kc.Close()
	pub, err := control.NewPublisher(control.PublisherConfig{Brokers: brokers, Kafka: kc, Topic: p.topic})
	if err != nil {
		return err
	}
	err = pub.Publish(ctx, msg)
	if cerr := pub.Close(); err == nil && cerr != nil {
		err = cerr
	}
	switch {
	case errors.Is(err, schemas.ErrSchema), errors.Is(err, control.ErrInvalidURL),
		errors.Is(err, control.ErrInvalidGranularity), errors.Is(err, control.ErrMissingWorkspace):
		return cli.UsageError(err)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "published %s for %s on %s; running workers apply it within about a second\n",
		msg.Type, msg.WorkspaceID, p.topic)
	return nil
}

func ctlConfigure(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("ctl configure", `outbound ctl configure: create or replace a workspace's webhook.

The webhook is enabled unless --disabled is given. A new configuration starts a
fresh consecutive-error count. Prefer OUTBOUND_SECRET to --secret: a flag shows in
the process list.`)
	var (
		ws                                      workspaceFlag
		pf                                      publishFlags
		rawURL, granularity, ownerEmail, secret string
		disabled                                bool
		target                                  sink.ClientConfig
	)
	ws.register(fs)
	registerTargetFlags(fs, &target.AllowPrivate, &target.AllowedPorts, &target.DeniedPorts)
	fs.StringVar(&rawURL, "url", "", "receiver URL, http:// or https:// (required)")
	fs.StringVar(&granularity, "granularity", "", "none (one call per message), 1h, 6h, 12h or 24h (required)")
	fs.StringVar(&ownerEmail, "owner-email", "", "who is emailed when the webhook is auto-disabled (required)")
	fs.StringVar(&secret, "secret", "", "signing secret: whsec_ plus base64, or any other string (empty: unsigned)")
	fs.BoolVar(&disabled, "disabled", false, "configure the webhook switched off")
	pf.register(fs)
	if err := ws.parse(fs, args, stderr); err != nil {
		return err
	}
	guard, err := target.Guard()
	if err != nil {
		return cli.UsageError(err)
	}
	if err := checkSettings(ctx, settings.Settings{URL: rawURL, Granularity: granularity, OwnerEmail: ownerEmail, Secret: secret}, &guard); err != nil {
		return err
	}
	enabled := !disabled
	return pf.publish(ctx, schemas.ControlMessage{Type: schemas.TypeConfigure, WorkspaceID: string(ws),
		URL: rawURL, Granularity: granularity, Enabled: &enabled, OwnerEmail: ownerEmail, Secret: secret}, stdout)
}

// checkSettings says what is wrong with configure's flags, in terms of the
// flags, before the control schema would refuse them in terms of the message.
// ctl does not know whether the workers' SSRF guard is on, so it leaves
// private targets to them.
func checkSettings(ctx context.Context, s settings.Settings, guard *sink.Guard) error {
	var errs []error
	for _, p := range settings.Check(ctx, s, settings.Options{Guard: guard}) {
		flag := "--" + string(p.Field)
		switch {
		case p.Missing:
			errs = append(errs, fmt.Errorf("%s is required: %s", flag, p.Msg))
		case p.Field == settings.URL:
			errs = append(errs, fmt.Errorf("%s %s: %s", flag, urls.Redact(s.URL), p.Msg))
		default:
			errs = append(errs, fmt.Errorf("%s: %s", flag, p.Msg))
		}
	}
	if len(errs) > 0 {
		return cli.UsageError(errors.Join(errs...))
	}
	return nil
}

// ctlSimple builds enable and delete: a workspace and nothing else.
func ctlSimple(typ, help string) ctlCommand {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := cli.NewFlagSet("ctl "+strings.TrimPrefix(typ, "webhook."), help)
		var (
			ws workspaceFlag
			pf publishFlags
		)
		ws.register(fs)
		pf.register(fs)
		if err := ws.parse(fs, args, stderr); err != nil {
			return err
		}
		return pf.publish(ctx, schemas.ControlMessage{Type: typ, WorkspaceID: string(ws)}, stdout)
	}
}

var (
	ctlEnable = ctlSimple(schemas.TypeEnable, `outbound ctl enable: switch a workspace's webhook on.

Enabling starts a fresh consecutive-error count, also for a webhook that is on.
Bundles that were pending while it was off are not delivered.`)
	ctlDelete = ctlSimple(schemas.TypeDelete, `outbound ctl delete: remove a workspace's webhook.

Pending bundles are dropped. Deleting an unknown workspace is not an error.`)
)

func ctlDisable(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("ctl disable", `outbound ctl disable: switch a workspace's webhook off, keeping its configuration.

Bundles pending at the disable are dropped, not delivered after a later enable.`)
	var (
		ws     workspaceFlag
		pf     publishFlags
		reason string
	)
	ws.register(fs)
	fs.StringVar(&reason, "reason", "", `why, shown as the disabled reason (default "disabled by operator")`)
	pf.register(fs)
	if err := ws.parse(fs, args, stderr); err != nil {
		return err
	}
	return pf.publish(ctx, schemas.ControlMessage{Type: schemas.TypeDisable, WorkspaceID: string(ws), Reason: reason}, stdout)
}

// stateFlags are the flags of the subcommands that read a webhook's state from
// the Redis the workers keep it in.
type stateFlags struct {
	ws     workspaceFlag
	redis  redisconn.Config
	prefix string
}

func (f *stateFlags) register(fs *cli.FlagSet) {
	f.ws.register(fs)
	registerRedisFlags(fs, &f.redis, &f.prefix)
}

// load parses args, opens Redis and reads the workspace's webhook from the
// workers' materialisation, or says why there is none. The caller closes the
// client.
func (f *stateFlags) load(ctx context.Context, fs *cli.FlagSet, args []string, stderr io.Writer) (redis.UniversalClient, webhook.Webhook, error) {
	if err := f.ws.parse(fs, args, stderr); err != nil {
		return nil, webhook.Webhook{}, err
	}
	rdb, err := redisconn.Open(f.redis)
	if err != nil {
		return nil, webhook.Webhook{}, cli.UsageError(fmt.Errorf("--redis-url: %w", err))
	}
	wh, ok, err := control.LoadWebhook(ctx, rdb, control.Keys(f.prefix), string(f.ws))
	if err == nil && !ok {
		err = fmt.Errorf("workspace %q has no webhook (never configured, deleted, or no worker has applied it yet)", f.ws)
	}
	if err != nil {
		rdb.Close()
		return nil, wh, err
	}
	return rdb, wh, nil
}

func ctlStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("ctl status", `outbound ctl status: show a workspace's webhook: configuration (secret redacted),
state, consecutive errors and the activity log (10 most recent actions).`)
	var (
		sf     stateFlags
		asJSON bool
	)
	sf.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON (the admin API's format) instead of text")
	rdb, wh, err := sf.load(ctx, fs, args, stderr)
	if err != nil {
		return err
	}
	defer rdb.Close()
	errs, err := sink.ConsecutiveErrors(ctx, rdb, sf.prefix, wh.Workspace, wh.Epoch)
	if err != nil {
		return fmt.Errorf("reading consecutive errors of %s: %w", wh.Workspace, err)
	}
	activity, err := webhooklog.New(rdb, sf.prefix).Activity(ctx, wh.Workspace)
	if err != nil {
		return err
	}
	st := app.NewWebhookStatus(wh, errs, activity)
	if asJSON {
		return webhooklog.WriteJSON(stdout, st)
	}
	return printStatus(stdout, st)
}

// printStatus writes st for a human.
func printStatus(out io.Writer, st app.WebhookStatus) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	state := "enabled"
	if !st.Config.Enabled {
		state = "disabled: " + st.DisabledReason
	}
	secret := "(none: deliveries are unsigned)"
	if st.Config.Secret != "" {
		secret = st.Config.Secret
	}
	granularity := st.Config.Granularity
	if granularity == string(webhook.None) {
		granularity += " (one call per message)"
	}
	for _, row := range [][2]string{
		{"workspace", st.Workspace},
		{"state", state},
		{"url", st.Config.URL},
		{"granularity", granularity},
		{"owner email", st.Config.OwnerEmail},
		{"secret", secret},
		{"consecutive errors", fmt.Sprintf("%d (more than 10 disable the webhook)", st.ConsecutiveErrors)},
		{"updated at", st.UpdatedAt.UTC().Format(time.RFC3339)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nactivity (newest first, %d most recent):\n", webhooklog.ActivitySize)
	if len(st.Activity) == 0 {
		fmt.Fprintln(out, "  (none yet)")
		return nil
	}
	for _, a := range st.Activity {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.At.UTC().Format(time.RFC3339), a.Action, a.Describe())
	}
	return tw.Flush()
}

func ctlRequests(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("ctl requests", `outbound ctl requests: download a workspace's detailed request log as JSON: the
100 most recent attempts, newest first, each with the request sent (signature
redacted) and the response received.`)
	var (
		sf     stateFlags
		output string
	)
	sf.register(fs)
	fs.StringVar(&output, "o", "", "write to this file (mode 0600: it holds customer data) instead of stdout")
	rdb, _, err := sf.load(ctx, fs, args, stderr)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ws := sf.ws
	reqs, err := webhooklog.New(rdb, sf.prefix).Requests(ctx, string(ws))
	if err != nil {
		return err
	}
	log := webhooklog.NewRequestLog(string(ws), reqs)
	if output == "" {
		return webhooklog.WriteJSON(stdout, log)
	}
	var buf bytes.Buffer
	if err := webhooklog.WriteJSON(&buf, log); err != nil {
		return err
	}
	if err := os.WriteFile(output, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("writing request log: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d request(s) of %s to %s\n", len(reqs), string(ws), output)
	return nil
}
