package kafkaconn_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/internal/cli"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/testenv"
)

// Over the test broker's SASL_SSL listener, a writer, a consumer-group reader
// and a client built from one Conn produce, consume and commit.
func TestSASLSSL(t *testing.T) {
	for _, mech := range []string{kafkaconn.Plain, kafkaconn.ScramSHA256, kafkaconn.ScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			brokers, cfg := testenv.KafkaSASL(t, mech)
			conn, err := kafkaconn.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(conn.Close)
			topic := testenv.NewTopic(t, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Transport: conn.Transport(), Topic: topic,
				RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte(mech)}); err != nil {
				t.Fatalf("producing over SASL_SSL: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			group := "sasl-" + strings.ReplaceAll(mech, "-", "")
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Dialer: conn.Dialer(), Topic: topic, GroupID: group,
				StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("consuming over SASL_SSL: %v", err)
			}
			if string(m.Value) != mech {
				t.Fatalf("consumed %q, want %q", m.Value, mech)
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("committing over SASL_SSL: %v", err)
			}

			c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: conn.Transport()}
			res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
			if err != nil {
				t.Fatalf("fetching the committed offset over SASL_SSL: %v", err)
			}
			if got := res.Topics[topic]; len(got) != 1 || got[0].CommittedOffset != 1 {
				t.Fatalf("committed offsets %+v, want offset 1 of partition 0", got)
			}
		})
	}
}

// A wrong password is refused by the broker with SASL's own error.
func TestSASLWrongPassword(t *testing.T) {
	for _, mech := range []string{kafkaconn.Plain, kafkaconn.ScramSHA512} {
		brokers, cfg := testenv.KafkaSASL(t, mech)
		cfg.Password += "-wrong"
		err := dial(t, brokers[0], cfg)
		if !errors.Is(err, kafka.SASLAuthenticationFailed) {
			t.Errorf("%s with a wrong password: got %v, want %v", mech, err, kafka.SASLAuthenticationFailed)
		}
	}
}

// The password may come from a file (a mounted secret), newline and all.
func TestSASLPasswordFile(t *testing.T) {
	brokers, cfg := testenv.KafkaSASL(t, kafkaconn.ScramSHA512)
	cfg.PasswordFile = filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(cfg.PasswordFile, []byte(cfg.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Password = ""
	if err := dial(t, brokers[0], cfg); err != nil {
		t.Fatalf("SCRAM-SHA-512 with the password from a file: %v", err)
	}
}

// Without the broker's CA, the system's roots do not trust its certificate.
func TestTLSUntrustedBroker(t *testing.T) {
	brokers, cfg := testenv.KafkaSASL(t, kafkaconn.ScramSHA512)
	cfg.CAFile = ""
	var unknown x509.UnknownAuthorityError
	if err := dial(t, brokers[0], cfg); !errors.As(err, &unknown) {
		t.Fatalf("TLS without the broker's CA: got %v, want %T", err, unknown)
	}
}

func dial(t *testing.T, broker string, cfg kafkaconn.Config) error {
	t.Helper()
	conn, err := kafkaconn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := conn.Dialer().DialContext(ctx, "tcp", broker)
	if err == nil {
		c.Close()
	}
	return err
}

// Settings that cannot work are refused before anything connects.
func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  kafkaconn.Config
		want string
	}{
		{kafkaconn.Config{SASLMechanism: "GSSAPI", Username: "u", Password: "p"}, `unknown Kafka SASL mechanism "GSSAPI"`},
		{kafkaconn.Config{SASLMechanism: "scram-sha-512", Username: "u"}, "needs a user and a password"},
		{kafkaconn.Config{Username: "u", Password: "p"}, "needs a SASL mechanism"},
		{kafkaconn.Config{TLS: true, CAFile: filepath.Join(dir, "missing.pem")}, "reading the Kafka TLS CA file"},
		{kafkaconn.Config{TLS: true, CAFile: notPEM}, "holds no PEM certificate"},
		{kafkaconn.Config{TLS: true, CertFile: notPEM}, "set both or neither"},
		{kafkaconn.Config{CAFile: notPEM}, "need TLS on"},
		{kafkaconn.Config{SASLMechanism: "plain", Username: "u", Password: "p", PasswordFile: notPEM}, "not both"},
		{kafkaconn.Config{SASLMechanism: "plain", Username: "u", PasswordFile: filepath.Join(dir, "missing")}, "reading the secret file"},
	} {
		if _, err := kafkaconn.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := kafkaconn.New(kafkaconn.Config{SASLMechanism: "SCRAM-SHA-256", Username: "u", Password: "p"}); err != nil {
		t.Errorf("mechanism names are case-insensitive: %v", err)
	}
}

// Env hands a child process the Config that its flags, registered by Register,
// read back.
func TestEnvRoundTrip(t *testing.T) {
	want := kafkaconn.Config{TLS: true, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", InsecureSkipVerify: true,
		SASLMechanism: kafkaconn.ScramSHA256, Username: "u", Password: "p w", PasswordFile: "pw.txt"}
	for _, kv := range want.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	var got kafkaconn.Config
	fs := cli.NewFlagSet("test", "")
	got.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
}
