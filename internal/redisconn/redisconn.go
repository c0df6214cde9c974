// Package redisconn opens the Redis that the worker, ctl, the demo and the
// tests are pointed at: one node by redis:// URL, or a Redis Cluster by
// go-redis's cluster URL (redis://host:port?addr=host2:port2&addr=...).
package redisconn

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Open returns a client for url: a single node's URL, or with cluster a
// cluster URL. Nothing connects yet.
func Open(url string, cluster bool) (redis.UniversalClient, error) {
	if cluster {
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("a Redis Cluster URL (redis://host:port?addr=host2:port2&addr=...): %w", err)
		}
		return redis.NewClusterClient(o), nil
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected option: addr") {
			// The one mistake a cluster user makes: say what fixes it.
			err = fmt.Errorf("%w (a Redis Cluster URL needs --redis-cluster)", err)
		}
		return nil, err
	}
	return redis.NewClient(o), nil
}

// Check reports whether Open would accept url.
func Check(url string, cluster bool) error {
	c, err := Open(url, cluster)
	if err != nil {
		return err
	}
	return c.Close()
}

// ForEachMaster calls fn once per master: on every master of a cluster, or
// once on a single node. Reads across slots (SCAN, INFO) go through it, since
// a cluster client sends such a command to one node only.
func ForEachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("redisconn: unsupported client %T", rdb)
	}
}

// Shard is one master of a cluster and the slots it serves.
type Shard struct {
	Master string
	Slots  []string // "0-5460", ...
}

// Topology pings rdb and returns the masters of a cluster with their slot
// ranges, or nil for a single node. An unreachable Redis, or a cluster that
// has not covered every slot, is an error that says so.
func Topology(ctx context.Context, rdb redis.UniversalClient) ([]Shard, error) {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis unreachable: %w", err)
	}
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return nil, nil
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	var shards []Shard
	byMaster := map[string]int{}
	covered := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		m := s.Nodes[0].Addr
		i, seen := byMaster[m]
		if !seen {
			i = len(shards)
			byMaster[m] = i
			shards = append(shards, Shard{Master: m})
		}
		shards[i].Slots = append(shards[i].Slots, fmt.Sprintf("%d-%d", s.Start, s.End))
		covered += s.End - s.Start + 1
	}
	if covered != 16384 {
		return shards, fmt.Errorf("the cluster serves %d of 16384 slots (CLUSTER SLOTS): is it fully created?", covered)
	}
	return shards, nil
}
