package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// redisEnv hands out empty databases of one redis-server and flushes them at
// close. On a Redis Cluster (newClusterEnv), which has only database 0, it
// hands out the whole cluster, emptied: the bench must own it.
type redisEnv struct {
	addr    string
	admin   redis.UniversalClient
	cluster *redis.ClusterClient // nil for a single redis-server
	dbs     int

	mu      sync.Mutex
	clients []redis.UniversalClient
}

// counterKey allocates database numbers across runs that share a server.
const counterKey = "outbound-bench:next-db"

func newRedisEnv(ctx context.Context, addr string) (*redisEnv, error) {
	admin := redis.NewClient(&redis.Options{Addr: addr})
	v, err := admin.ConfigGet(ctx, "databases").Result()
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("asking redis-server at %s for its databases: %w", addr, err)
	}
	dbs, err := strconv.Atoi(v["databases"])
	if err != nil || dbs < 8 {
		admin.Close()
		return nil, fmt.Errorf("redis-server at %s has %q databases; the bench needs at least 8", addr, v["databases"])
	}
	return &redisEnv{addr: addr, admin: admin, dbs: dbs}, nil
}

// newClusterEnv serves the Redis Cluster that answers at addrs.
func newClusterEnv(ctx context.Context, addrs []string) (*redisEnv, error) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 64})
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() }); err != nil {
		c.Close()
		return nil, fmt.Errorf("reaching the Redis Cluster at %s: %w", strings.Join(addrs, ","), err)
	}
	return &redisEnv{addr: strings.Join(addrs, ","), admin: c, cluster: c}, nil
}

// fresh returns a client on an empty database no one else is using and its
// number.
func (r *redisEnv) fresh(ctx context.Context) (redis.UniversalClient, int, error) {
	if r.cluster != nil {
		return r.cluster, 0, r.flushCluster(ctx)
	}
	n, err := r.admin.Incr(ctx, counterKey).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("allocating a redis database: %w", err)
	}
	db := int(n%int64(r.dbs-1)) + 1 // database 0 holds only the counter
	c := redis.NewClient(&redis.Options{Addr: r.addr, DB: db, PoolSize: 64})
	if err := c.FlushDB(ctx).Err(); err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("emptying redis database %d: %w", db, err)
	}
	r.mu.Lock()
	r.clients = append(r.clients, c)
	r.mu.Unlock()
	return c, db, nil
}

// url is the redis:// URL of database db, for a worker subprocess.
func (r *redisEnv) url(db int) string { return "redis://" + r.addr + "/" + strconv.Itoa(db) }

// drop empties and closes a database from fresh before close would, so that
// the next phase's memory figures start from an empty server.
func (r *redisEnv) drop(ctx context.Context, c redis.UniversalClient) error {
	if r.cluster != nil {
		return r.flushCluster(ctx)
	}
	r.mu.Lock()
	for i, x := range r.clients {
		if x == c {
			r.clients = append(r.clients[:i], r.clients[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	err := c.FlushDB(ctx).Err()
	c.Close()
	if err != nil {
		return fmt.Errorf("emptying a bench database: %w", err)
	}
	return nil
}

// database is fresh for one measurement: it returns the database and the func
// that drops it, which says under name why a drop failed. The drop runs even
// when ctx is cancelled, so that a stopped run leaves no data behind.
func (r *run) database(ctx context.Context, name string) (redis.UniversalClient, int, func(), error) {
	rdb, db, err := r.r.fresh(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	return rdb, db, func() {
		if err := r.r.drop(context.WithoutCancel(ctx), rdb); err != nil {
			r.say("%s: %v", name, err)
		}
	}, nil
}

// flushCluster empties every master of the cluster.
func (r *redisEnv) flushCluster(ctx context.Context) error {
	err := r.cluster.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushDB(ctx).Err() })
	if err != nil {
		return fmt.Errorf("emptying the Redis Cluster: %w", err)
	}
	return nil
}

func (r *redisEnv) close(ctx context.Context) error {
	if r.cluster != nil {
		err := r.flushCluster(ctx)
		r.cluster.Close()
		return err
	}
	r.mu.Lock()
	clients := r.clients
	r.clients = nil
	r.mu.Unlock()
	var errs []error
	for _, c := range clients {
		if err := c.FlushDB(ctx).Err(); err != nil {
			errs = append(errs, fmt.Errorf("emptying a bench database: %w", err))
		}
		c.Close()
	}
	r.admin.Close()
	return errors.Join(errs...)
}

// info reads numeric fields of one INFO section, summed over a cluster's
// masters.
func (r *redisEnv) info(ctx context.Context, section string, fields ...string) (map[string]float64, error) {
	if r.cluster == nil {
		return nodeInfo(ctx, r.admin, section, fields)
	}
	var mu sync.Mutex
	sum := make(map[string]float64, len(fields))
	err := r.cluster.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		one, err := nodeInfo(ctx, m, section, fields)
		mu.Lock()
		defer mu.Unlock()
		for k, v := range one {
			sum[k] += v
		}
		return err
	})
	return sum, err
}

// nodeInfo reads numeric fields of one INFO section of one server.
func nodeInfo(ctx context.Context, c redis.Cmdable, section string, fields []string) (map[string]float64, error) {
	txt, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("reading redis INFO %s: %w", section, err)
	}
	want := make(map[string]bool, len(fields))
	for _, f := range fields {
		want[f] = true
	}
	out := make(map[string]float64, len(fields))
	for _, line := range strings.Split(txt, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !want[k] {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = x
		}
	}
	if len(out) != len(fields) {
		return nil, fmt.Errorf("redis INFO %s lacks some of %v", section, fields)
	}
	return out, nil
}

// usedMemory is the server's used_memory: the bytes its allocator holds for
// data, the figure maxmemory is checked against.
func (r *redisEnv) usedMemory(ctx context.Context) (int64, error) {
	m, err := r.info(ctx, "memory", "used_memory")
	if err != nil {
		return 0, err
	}
	return int64(m["used_memory"]), nil
}

// cpuSeconds is the CPU time redis-server has used so far.
func (r *redisEnv) cpuSeconds(ctx context.Context) (float64, error) {
	m, err := r.info(ctx, "cpu", "used_cpu_sys", "used_cpu_user")
	if err != nil {
		return 0, err
	}
	return m["used_cpu_sys"] + m["used_cpu_user"], nil
}
