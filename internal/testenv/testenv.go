// Package testenv hands each test real services: a real Apache Kafka broker and a
// fresh, empty database on a real redis-server.
//
// `make test` provides both: it runs the tests under scripts/with-services, which
// installs and starts a single-node Kafka (KRaft) and a redis-server on free loopback
// ports and exports their addresses as OUTBOUND_TEST_KAFKA_BROKERS and
// OUTBOUND_TEST_REDIS_ADDR. To run a single package by hand:
//
//	scripts/with-services go test ./windowing/
//
// A test that needs a service and finds its variable unset fails (it never skips), so a
// missing service cannot turn into a silently green run.
//
// Every helper isolates the calling test: NewTopic makes a uniquely named topic that is
// deleted at cleanup, and Redis/RedisURL allocate a database no other test (in this or a
// parallel test process) is using, flushed at cleanup.
//
// With OUTBOUND_TEST_REDIS=cluster, Redis hands out a client of the three-master
// Redis Cluster that scripts/with-services also starts (OUTBOUND_TEST_REDIS_CLUSTER_ADDRS).
// A cluster has only database 0, so there a test isolates its keys by KeyPrefix.
//
// With OUTBOUND_TEST_KAFKA=sasl, Kafka hands out the broker's SASL_SSL listener
// with SCRAM-SHA-512 (OUTBOUND_TEST_KAFKA_SASL_*) instead of the plaintext one,
// and NewTopic creates topics through it: the end-to-end tests reach Kafka only
// through Kafka, so that they run with every client authenticated.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/topics"
)

// Environment variables set by scripts/with-services.
const (
	EnvKafkaBrokers = "OUTBOUND_TEST_KAFKA_BROKERS"
	EnvRedisAddr    = "OUTBOUND_TEST_REDIS_ADDR"
	// EnvRedisClusterAddrs lists the cluster's masters, comma-separated.
	EnvRedisClusterAddrs = "OUTBOUND_TEST_REDIS_CLUSTER_ADDRS"
	// EnvRedis selects what Redis hands out: "cluster", or the single node.
	EnvRedis = "OUTBOUND_TEST_REDIS"
	// EnvKafka selects what Kafka hands out: "sasl", or the plaintext listener.
	EnvKafka = "OUTBOUND_TEST_KAFKA"
	// The test broker's SASL_SSL listener: its address, the CA of its
	// certificate, and the user that PLAIN and SCRAM accept.
	EnvKafkaSASLBrokers  = "OUTBOUND_TEST_KAFKA_SASL_BROKERS"
	EnvKafkaSASLCA       = "OUTBOUND_TEST_KAFKA_SASL_CA"
	EnvKafkaSASLUser     = "OUTBOUND_TEST_KAFKA_SASL_USER"
	EnvKafkaSASLPassword = "OUTBOUND_TEST_KAFKA_SASL_PASSWORD"
)

// How long a helper waits for a service before it fails the test.
const serviceTimeout = 30 * time.Second

// KafkaBrokers returns the bootstrap addresses of the test broker (env
// OUTBOUND_TEST_KAFKA_BROKERS, comma-separated).
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	return brokersOf(t, EnvKafkaBrokers)
}

// KafkaSASL returns the bootstrap addresses of the test broker's SASL_SSL
// listener and the client settings it accepts with mechanism (kafkaconn.Plain,
// ScramSHA256 or ScramSHA512). Topics are the broker's, whichever listener
// made them: NewTopic's serve both.
func KafkaSASL(t testing.TB, mechanism string) ([]string, kafkaconn.Config) {
	t.Helper()
	brokers := brokersOf(t, EnvKafkaSASLBrokers)
	cfg := kafkaconn.Config{TLS: true, CAFile: os.Getenv(EnvKafkaSASLCA), SASLMechanism: mechanism,
		Username: os.Getenv(EnvKafkaSASLUser), Password: os.Getenv(EnvKafkaSASLPassword)}
	if cfg.CAFile == "" || cfg.Username == "" || cfg.Password == "" {
		t.Fatalf("%s, %s and %s must be set with %s (scripts/with-services sets them)",
			EnvKafkaSASLCA, EnvKafkaSASLUser, EnvKafkaSASLPassword, EnvKafkaSASLBrokers)
	}
	return brokers, cfg
}

// KafkaClient is the test Kafka a run selected and how its clients reach it.
type KafkaClient struct {
	Brokers []string
	// Config holds the settings for code and processes that take them as
	// flags; the zero Config on the plaintext listener.
	Config kafkaconn.Config
	// Conn is Config made ready, closed at the test's cleanup.
	Conn kafkaconn.Conn
}

// Kafka returns the test broker's plaintext listener or, with
// OUTBOUND_TEST_KAFKA=sasl, its SASL_SSL listener with SCRAM-SHA-512.
func Kafka(t testing.TB) KafkaClient {
	t.Helper()
	k := KafkaClient{}
	if os.Getenv(EnvKafka) == "sasl" {
		k.Brokers, k.Config = KafkaSASL(t, kafkaconn.ScramSHA512)
	} else {
		k.Brokers = KafkaBrokers(t)
	}
	conn, err := kafkaconn.New(k.Config)
	if err != nil {
		t.Fatalf("testenv: the Kafka client settings: %v", err)
	}
	t.Cleanup(conn.Close)
	k.Conn = conn
	return k
}

// brokersOf returns the comma-separated addresses in env, or fails the test.
func brokersOf(t testing.TB, env string) []string {
	t.Helper()
	brokers := cli.SplitList(os.Getenv(env))
	if len(brokers) == 0 {
		t.Fatalf("Kafka for tests is not running: run `make test` (it installs and starts Apache Kafka "+
			"and redis-server via scripts/with-services), or `scripts/with-services go test ./...`, "+
			"or set %s to a broker's host:port", env)
	}
	return brokers
}

// NewTopic creates a uniquely named topic with the given number of partitions
// (replication 1) through Kafka, waits until it is usable, on the plaintext
// listener also by writers on kafka.DefaultTransport (see topics.Create), and
// deletes it at cleanup. Name has a
// readable prefix from t.Name() (sanitised) + random suffix.
func NewTopic(t testing.TB, partitions int) string {
	t.Helper()
	k := Kafka(t)
	name := topicName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), serviceTimeout)
	defer cancel()
	if err := topics.Create(ctx, k.Conn, k.Brokers, name, partitions); err != nil {
		t.Fatalf("testenv.NewTopic: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), serviceTimeout)
		defer cancel()
		if err := topics.Delete(ctx, k.Conn, k.Brokers, name); err != nil {
			t.Logf("testenv: %v", err)
		}
	})
	return name
}

// topicName turns a test name into a legal, unique Kafka topic name:
// [a-zA-Z0-9-] only (no '.' or '_', which Kafka treats as colliding), at most
// 100 characters of the test name, and a random suffix.
func topicName(testName string) string {
	var b strings.Builder
	dash := false
	for _, r := range testName {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok {
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
			continue
		}
		if b.Len() >= 100 {
			break
		}
		b.WriteRune(r)
		dash = false
	}
	prefix := strings.TrimRight(b.String(), "-")
	if prefix == "" {
		prefix = "test"
	}
	return prefix + "-" + randomHex(5)
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(buf)
}

// Redis returns a client on a fresh, empty database of the test redis-server (env
// OUTBOUND_TEST_REDIS_ADDR); the client is closed and the DB flushed at cleanup.
// With OUTBOUND_TEST_REDIS=cluster it is a client of the test cluster instead,
// shared with other tests: keys go under KeyPrefix.
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	if Cluster() {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: clusterAddrs(t)})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	addr, db := freshDB(t)
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisURL is like Redis but returns "redis://127.0.0.1:P/DB" for code that dials by
// URL (e.g. a subprocess).
func RedisURL(t testing.TB) string {
	t.Helper()
	addr, db := freshDB(t)
	return "redis://" + addr + "/" + strconv.Itoa(db)
}

// RedisConfig is like RedisURL but, with OUTBOUND_TEST_REDIS=cluster, names
// the test cluster instead (shared: keys go under KeyPrefix), for code that
// opens Redis by redisconn.Config, such as a worker.
func RedisConfig(t testing.TB) redisconn.Config {
	t.Helper()
	if !Cluster() {
		return redisconn.Config{URL: RedisURL(t)}
	}
	return redisconn.Config{URL: redisconn.ClusterURL(clusterAddrs(t)), Cluster: true}
}

// Cluster reports whether the tests run on the Redis Cluster
// (OUTBOUND_TEST_REDIS=cluster).
func Cluster() bool { return os.Getenv(EnvRedis) == "cluster" }

// KeyPrefix returns a key prefix no other test uses, for code that takes one:
// on the cluster, the only isolation there is.
func KeyPrefix() string {
	return "t" + randomHex(6)
}

func clusterAddrs(t testing.TB) []string {
	t.Helper()
	addrs := cli.SplitList(os.Getenv(EnvRedisClusterAddrs))
	if len(addrs) == 0 {
		t.Fatalf("%s=cluster but the Redis Cluster for tests is not running: run `make test`, or "+
			"`scripts/with-services sh -c '%s=cluster go test ./windowing/'` (it starts the cluster "+
			"with scripts/redis-cluster.sh), or set %s to its masters' host:port, comma-separated",
			EnvRedis, EnvRedis, EnvRedisClusterAddrs)
	}
	return addrs
}

func redisAddr(t testing.TB) string {
	t.Helper()
	addr := strings.TrimSpace(os.Getenv(EnvRedisAddr))
	if addr == "" {
		t.Fatalf("Redis for tests is not running: run `make test` (it installs and starts Apache Kafka "+
			"and redis-server via scripts/with-services), or `scripts/with-services go test ./...`, "+
			"or set %s to a redis-server's host:port", EnvRedisAddr)
	}
	return addr
}

// freshDB allocates a database number that no other test in any process is using and
// returns it empty; a cleanup flushes it again. Database 0 holds only the allocation
// counter (INCR is atomic across the parallel `go test` processes) and is never handed
// out; numbers wrap around after databases-1 allocations.
func freshDB(t testing.TB) (addr string, db int) {
	t.Helper()
	addr = redisAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), serviceTimeout)
	defer cancel()

	admin := redis.NewClient(&redis.Options{Addr: addr, DB: 0})
	defer admin.Close()
	dbs := 16
	if v, err := admin.ConfigGet(ctx, "databases").Result(); err != nil {
		t.Fatalf("testenv: redis-server at %s (%s) does not answer: %v", addr, EnvRedisAddr, err)
	} else if n, err := strconv.Atoi(v["databases"]); err == nil {
		dbs = n
	}
	if dbs < 2 {
		t.Fatalf("testenv: redis-server at %s has %d database(s); tests need at least 2 (scripts/redis.sh starts it with --databases 4096)", addr, dbs)
	}
	n, err := admin.Incr(ctx, "testenv:next-db").Result()
	if err != nil {
		t.Fatalf("testenv: allocate a redis database at %s: %v", addr, err)
	}
	db = int(n%int64(dbs-1)) + 1

	flush := func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
		defer c.Close()
		return c.FlushDB(ctx).Err()
	}
	if err := flush(ctx); err != nil {
		t.Fatalf("testenv: flush redis database %d at %s: %v", db, addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), serviceTimeout)
		defer cancel()
		if err := flush(ctx); err != nil {
			t.Logf("testenv: flush redis database %d at %s at cleanup: %v", db, addr, err)
		}
	})
	return addr, db
}

// Eventually polls cond until it holds, failing the test with what it waited
// for once timeout has passed. Tests wait for outcomes this way, never by
// sleeping a fixed time and hoping.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
