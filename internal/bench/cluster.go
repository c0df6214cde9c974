package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/outbound-webhooks/outbound/webhook"
)

// phaseCluster measures windowed ingest and delivery again with the windows on
// a Redis Cluster, each against the same measurement on one redis-server: what
// the hash-tagged keys and the cluster client cost. On one machine the
// cluster's masters share its cores, so the rows show the cost, not the scale.
func (r *run) phaseCluster(ctx context.Context) error {
	if len(r.cfg.RedisClusterAddrs) == 0 {
		return errors.New("no Redis Cluster: pass --redis-cluster-addrs (make bench starts one through scripts/with-services)")
	}
	env, err := newClusterEnv(ctx, r.cfg.RedisClusterAddrs)
	if err != nil {
		return err
	}
	defer func() {
		if err := env.close(context.WithoutCancel(ctx)); err != nil {
			r.say("cluster: cleaning up: %v", err)
		}
	}()
	on := *r
	on.r = env
	masters := fmt.Sprintf("Redis Cluster of %d masters at %s", len(r.cfg.RedisClusterAddrs), env.addr)

	// Each cluster figure is bounded by the same measurement on one
	// redis-server taken just before it, so that both see the same machine.
	t, err := r.ingestTopic(ctx)
	if err != nil {
		return err
	}
	one, err := r.consume(ctx, t, webhook.H1, "ingest_windowed_one_node")
	if err != nil {
		return fmt.Errorf("measuring windowed ingest on one node: %w", err)
	}
	win, err := on.consume(ctx, t, webhook.H1, "ingest_windowed_cluster")
	if err != nil {
		return fmt.Errorf("measuring windowed ingest on the cluster: %w", err)
	}
	r.rep.add(row("ingest_windowed_cluster", win.rate, "events/s", "higher", one.rate, "ingest_windowed on one redis-server, just before").
		with("as ingest_windowed, on a "+masters, r.topicSettings(t), win.notes, win.cpu, "baseline: "+one.notes+", "+one.cpu))

	single, err := r.deliveryRow(ctx, r, "delivery_throughput_one_node")
	if err != nil {
		return fmt.Errorf("on one node: %w", err)
	}
	x, err := r.deliveryRow(ctx, &on, "delivery_throughput_cluster")
	if err != nil {
		return fmt.Errorf("on the cluster: %w", err)
	}
	r.rep.add(row(x.Name, x.Value, x.Unit, x.Better, single.Value, "delivery_throughput on one redis-server, just before").
		with("as delivery_throughput, on a "+masters, x.Settings))
	return nil
}
