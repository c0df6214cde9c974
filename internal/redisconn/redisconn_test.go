package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const clusterURL = "redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002"

func TestOpenPicksTheClientByTheFlag(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster bool
		want    string // a substring of the error; "" for success
	}{
		{"redis://127.0.0.1:6379/3", false, ""},
		{clusterURL, true, ""},
		{clusterURL, false, "needs --redis-cluster"},
		{"http://127.0.0.1:7000", true, "a Redis Cluster URL"},
		{"redis://127.0.0.1:7000?dial_timeout=x", true, "a Redis Cluster URL"},
	} {
		c, err := Open(Config{URL: tc.url, Cluster: tc.cluster})
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q, %v): error %v, want one containing %q", tc.url, tc.cluster, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Open(%q, %v): %v", tc.url, tc.cluster, err)
		}
		if _, isCluster := c.(*redis.ClusterClient); isCluster != tc.cluster {
			t.Errorf("Open(%q, %v) gave a %T", tc.url, tc.cluster, c)
		}
		if tc.cluster {
			if got := c.(*redis.ClusterClient).Options().Addrs; len(got) != 3 {
				t.Errorf("cluster addrs %v, want 3", got)
			}
		}
		_ = c.Close()
	}
}

func TestTopologyOfAnUnreachableClusterSaysSo(t *testing.T) {
	c, err := Open(Config{URL: "redis://127.0.0.1:1?addr=127.0.0.1:2", Cluster: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Topology(ctx, c); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Topology: %v, want an unreachable error", err)
	}
}
