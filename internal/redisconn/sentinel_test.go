package redisconn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/redisconn"
	"github.com/outbound-webhooks/outbound/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// secretFile writes password to a file of the test's, with the newline an
// editor leaves, and returns its path.
func secretFile(t *testing.T, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A worker pointed at Sentinels reaches the master they name, signing in with
// the password from --redis-password-file; a wrong password fails with
// Redis's own word for it and without the password.
func TestSentinelAndPasswordFileReachTheMaster(t *testing.T) {
	const password, name = "s3cret-redis-pw", "outbound-test"
	master := redistest.Start(t, "--requirepass", password)
	sentinel := redistest.StartSentinel(t, master, name, password)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	url := "redis://" + sentinel.Addr() + "?master_name=" + name
	rdb, err := redisconn.Open(redisconn.Config{URL: url, Sentinel: true, PasswordFile: secretFile(t, password)})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "through sentinel", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinel's master: %v", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: master.Addr(), Password: password})
	defer direct.Close()
	if v, err := direct.Get(ctx, "k").Result(); err != nil || v != "through sentinel" {
		t.Fatalf("the master holds k = %q, %v; want the value written through the sentinel", v, err)
	}
	// The same password file on the node's own URL.
	node, err := redisconn.Open(redisconn.Config{URL: "redis://" + master.Addr(), PasswordFile: secretFile(t, password)})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	if err := node.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with the password file: %v", err)
	}

	wrong, err := redisconn.Open(redisconn.Config{URL: url, Sentinel: true, PasswordFile: secretFile(t, "not-the-password")})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if err := wrong.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") ||
		strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("PING with a wrong password: %v, want WRONGPASS without the password", err)
	}
}

func TestOpenRefusesABadSentinelOrPasswordSetting(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    redisconn.Config
		want string
	}{
		{"sentinel without master_name", redisconn.Config{URL: "redis://127.0.0.1:26379", Sentinel: true}, "master_name"},
		{"cluster and sentinel", redisconn.Config{URL: "redis://127.0.0.1:7000?addr=127.0.0.1:7001", Cluster: true, Sentinel: true}, "exclude each other"},
		{"missing password file", redisconn.Config{URL: "redis://127.0.0.1:6379", PasswordFile: "/nonexistent/pw"}, "/nonexistent/pw"},
		{"empty password file", redisconn.Config{URL: "redis://127.0.0.1:6379", PasswordFile: empty}, "is empty"},
	} {
		if _, err := redisconn.Open(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
