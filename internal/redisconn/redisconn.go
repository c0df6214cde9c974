// Package redisconn opens the Redis that the worker, ctl, the demo and the
// tests are pointed at: one node by redis:// URL, a Redis Cluster by go-redis's
// cluster URL (redis://host:port?addr=host2:port2&addr=...), or a master that
// Redis Sentinel names, by go-redis's failover URL.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/cli"
)

// Config says where Redis is and how to sign in. The zero Config with a URL
// is one node, its password (if any) in the URL.
type Config struct {
	// URL is a redis:// or rediss:// URL: of one node; with Cluster of the
	// cluster's nodes (?addr=host2:port2&addr=...); with Sentinel of the
	// sentinels (?addr=... for more, master_name=NAME required).
	URL string
	// Cluster says URL names a Redis Cluster.
	Cluster bool
	// Sentinel says URL names Redis Sentinels, which name the master.
	Sentinel bool
	// PasswordFile holds the password of Redis's data nodes (not of the
	// sentinels, whose credentials are the URL's); it replaces a password in
	// the URL. Empty: none, or the URL's.
	PasswordFile string
}

// Register registers c's flags on fs, the same on every command that takes
// --redis-url; url and usage are that flag's default and help.
func (c *Config) Register(fs *cli.FlagSet, url, usage string) {
	fs.StringVar(&c.URL, "redis-url", url, usage)
	fs.BoolVar(&c.Cluster, "redis-cluster", false, "--redis-url names a Redis Cluster: redis://host:port?addr=host2:port2&addr=host3:port3")
	fs.BoolVar(&c.Sentinel, "redis-sentinel", false, "--redis-url names Redis Sentinels: redis://[user:pass@]sentinel:port?addr=sentinel2:port&master_name=NAME")
	fs.StringVar(&c.PasswordFile, "redis-password-file", "", "file that holds the Redis password, instead of one in --redis-url")
}

// clusterStateReload is how often a cluster client reads the slot map again.
const clusterStateReload = 2 * time.Second

// Open returns a client for c. It reads the password file, but nothing
// connects yet.
func Open(c Config) (redis.UniversalClient, error) {
	password := ""
	if c.PasswordFile != "" {
		p, err := cli.ReadSecretFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("the Redis password: %w", err)
		}
		password = p
	}
	switch {
	case c.Cluster && c.Sentinel:
		return nil, errors.New("--redis-cluster and --redis-sentinel exclude each other")
	case c.Cluster:
		o, err := redis.ParseClusterURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("a Redis Cluster URL (redis://host:port?addr=host2:port2&addr=...): %w", err)
		}
		if password != "" {
			o.Password = password
		}
		// go-redis asks the cluster which node serves which slot every
		// minute by default, and not when a master stops answering: after a
		// failover, its slots would stay unreachable for up to that minute.
		o.ClusterStateReloadInterval = clusterStateReload
		return redis.NewClusterClient(o), nil
	case c.Sentinel:
		o, err := redis.ParseFailoverURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("a Redis Sentinel URL (redis://sentinel:port?addr=sentinel2:port&master_name=NAME): %w", err)
		}
		if o.MasterName == "" {
			return nil, errors.New("a Redis Sentinel URL needs the master's name: ?master_name=NAME")
		}
		if password != "" {
			o.Password = password
		}
		return redis.NewFailoverClient(o), nil
	}
	o, err := redis.ParseURL(c.URL)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected option: addr") {
			// The one mistake a cluster user makes: say what fixes it.
			err = fmt.Errorf("%w (a Redis Cluster URL needs --redis-cluster, Sentinels' --redis-sentinel)", err)
		}
		return nil, err
	}
	if password != "" {
		o.Password = password
	}
	return redis.NewClient(o), nil
}

// ClusterURL returns the cluster URL of the nodes at addrs (host:port), in
// the form Open takes with Cluster.
func ClusterURL(addrs []string) string {
	if len(addrs) == 0 {
		return ""
	}
	u := "redis://" + addrs[0]
	if len(addrs) > 1 {
		u += "?" + url.Values{"addr": addrs[1:]}.Encode()
	}
	return u
}

// Check reports whether Open would accept c.
func (c Config) Check() error {
	rdb, err := Open(c)
	if err != nil {
		return err
	}
	return rdb.Close()
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
