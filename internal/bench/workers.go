package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/outbound-webhooks/outbound/webhook"
)

// The worker subprocesses run on the real clock, so their webhooks are 24h:
// a window closes only at midnight UTC, and a run would have to span it for a
// delivery to happen (the receiver counts them if one does).

// receiverAndControl starts a receiver and creates a control topic that
// configures every workspace's webhook at it, 24h (see above). The caller
// closes the receiver.
func (r *run) receiverAndControl(ctx context.Context, what string) (*receiver, string, error) {
	rec, err := startReceiver(0)
	if err != nil {
		return nil, "", err
	}
	ctl, err := r.controlTopic(ctx, what, webhook.H24, rec.URL)
	if err != nil {
		rec.close()
		return nil, "", err
	}
	return rec, ctl, nil
}

func (r *run) phaseRSS(ctx context.Context) error {
	rec, ctl, err := r.receiverAndControl(ctx, "rss-control")
	if err != nil {
		return err
	}
	defer rec.close()
	topic, err := r.k.createTopic(ctx, "rss", r.sc.Partitions)
	if err != nil {
		return err
	}
	_, db, drop, err := r.database(ctx, "rss")
	if err != nil {
		return err
	}
	defer drop()
	s := workerSetup{topic: topic, control: ctl, group: r.k.name("rss"), db: db}
	w, err := r.startWorker(s)
	if err != nil {
		return err
	}
	defer w.stop()
	pid := w.cmd.Process.Pid
	if _, err := waitFor(ctx, time.Minute, 50*time.Millisecond, "the worker to join", func() (bool, error) {
		return w.assigned.Load() > 0, w.failed()
	}); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	_, peak0, ok := rssOf(pid)
	if !ok {
		return fmt.Errorf("reading /proc/%d/status", pid)
	}
	r.say("rss: idle worker peak %.1f MB", mb(peak0))
	r.rep.add(row("worker_rss_0", mb(peak0), "MB", "lower", 0, "").
		with("VmHWM (peak RSS) of one `outbound worker` subprocess, joined and idle, nothing buffered"))

	names := []string{"worker_rss_100k", "worker_rss_1m"}
	filled := 0
	for i, level := range r.sc.RSSBuffered {
		r.say("rss: buffering %d messages", level)
		if _, _, err := r.k.fill(ctx, topic, r.corpus, filled, level, time.Now()); err != nil {
			return err
		}
		filled = level
		end, err := r.k.endOffsets(ctx, topic, r.sc.Partitions)
		if err != nil {
			return err
		}
		if _, err := waitFor(ctx, budget(level, 2000), 50*time.Millisecond, "the worker to commit", func() (bool, error) {
			if err := w.failed(); err != nil {
				return false, err
			}
			return r.k.committedAll(ctx, s.group, topic, end)
		}); err != nil {
			return err
		}
		rss, peak, ok := rssOf(pid)
		if !ok {
			return fmt.Errorf("reading /proc/%d/status", pid)
		}
		r.say("rss: %d buffered, peak %.1f MB, now %.1f MB", level, mb(peak), mb(rss))
		x := row(names[i], mb(peak), "MB", "lower", mb(peak0), "worker_rss_0")
		if i == len(names)-1 {
			x = x.target("<= worker_rss_0 + 50 MB", mb(peak-peak0) <= 50)
		}
		r.rep.add(x.with(fmt.Sprintf("VmHWM of the same worker after it ingested and committed %s into 24h windows (%d chats), "+
			"catching up on each fill at full speed, so the peak includes its ingest working set; VmRSS then %.1f MB",
			plural(level, "message"), r.sc.Chats, mb(rss)), deliveriesNote(rec)))
	}
	return nil
}

func deliveriesNote(rec *receiver) string {
	if n := rec.requests.Load(); n > 0 {
		return fmt.Sprintf("WARNING: %d windows were delivered during the run (it crossed midnight UTC)", n)
	}
	return ""
}

func (r *run) phaseScaleout(ctx context.Context) error {
	t, err := r.ingestTopic(ctx)
	if err != nil {
		return err
	}
	rec, ctl, err := r.receiverAndControl(ctx, "scaleout-control")
	if err != nil {
		return err
	}
	defer rec.close()
	var one float64
	for n := 1; n <= 3; n++ {
		rate, notes, err := r.scaleout(ctx, t, ctl, n)
		if err != nil {
			return fmt.Errorf("measuring %d workers: %w", n, err)
		}
		name := "scaleout_" + strconv.Itoa(n)
		var x Row
		if n == 1 {
			one = rate
			x = row(name, rate, "events/s", "higher", r.plainRate, "plain kafka-go consumer")
		} else {
			x = row(name, rate, "events/s", "higher", one, "scaleout_1")
		}
		r.rep.add(x.with(fmt.Sprintf("%s in one group, started together, on the ingest topic (%s, 24h windows), until every event is in Redis; on %d cores they share the CPU with Kafka and Redis, so more workers show coordination overhead, not speed-up",
			plural(n, "`outbound worker` subprocess"), plural(t.events, "event"), numCPU()), notes, deliveriesNote(rec)))
	}
	return nil
}

// scaleout times n workers consuming the whole ingest topic in one group.
func (r *run) scaleout(ctx context.Context, t *ingestTopic, ctl string, n int) (float64, string, error) {
	rdb, db, drop, err := r.database(ctx, "scaleout")
	if err != nil {
		return 0, "", err
	}
	defer drop()
	s := workerSetup{topic: t.name, control: ctl, group: r.k.name("scaleout-" + strconv.Itoa(n)), db: db}
	var ws []*workerProc
	defer func() { stopWorkers(ws) }()
	var pids []int
	for range n {
		w, err := r.startWorker(s)
		if err != nil {
			return 0, "", err
		}
		ws = append(ws, w)
		pids = append(pids, w.cmd.Process.Pid)
	}
	// The store's offset watermarks (the last offset applied per partition)
	// time the run: from the first append to the last, as in-process ingest
	// is timed from the first record to the last append.
	wms := make([]string, r.sc.Partitions)
	for p := range wms {
		wms[p] = "outbound:{p" + strconv.Itoa(p) + "}:wm"
	}
	applied := func() (partitions, complete int, err error) {
		vs, err := rdb.MGet(ctx, wms...).Result()
		if err != nil {
			return 0, 0, err
		}
		for p, v := range vs {
			s, ok := v.(string)
			if !ok {
				continue
			}
			partitions++
			if wm, _ := strconv.ParseInt(s, 10, 64); wm >= t.end[p]-1 {
				complete++
			}
		}
		return partitions, complete, nil
	}
	meter := startCPU(ctx, r.r, pids...)
	first, err := waitFor(ctx, time.Minute, 2*time.Millisecond, "the first append", func() (bool, error) {
		if err := workersFailed(ws); err != nil {
			return false, err
		}
		n, _, err := applied()
		return n > 0, err
	})
	if err != nil {
		return 0, "", err
	}
	last, err := waitFor(ctx, budget(t.events, 2000), 2*time.Millisecond, "the last append", func() (bool, error) {
		if err := workersFailed(ws); err != nil {
			return false, err
		}
		_, n, err := applied()
		return n == r.sc.Partitions, err
	})
	if err != nil {
		return 0, "", err
	}
	cpu := meter.stop(ctx)
	committed, err := waitFor(ctx, time.Minute, 10*time.Millisecond, "the last commit", func() (bool, error) {
		if err := workersFailed(ws); err != nil {
			return false, err
		}
		return r.k.committedAll(ctx, s.group, t.name, t.end)
	})
	if err != nil {
		return 0, "", err
	}
	var generations int64
	for _, w := range ws {
		generations += w.assigned.Load()
	}
	rate := float64(t.events) / last.Sub(first).Seconds()
	r.say("scaleout: %d workers %.0f events/s", n, rate)
	return rate, fmt.Sprintf("%.2f s from the first append to the last, everything committed %d ms later; %d partition assignments across the workers (one per worker per group generation); %s",
		last.Sub(first).Seconds(), committed.Sub(last).Milliseconds(), generations, cpu), nil
}
