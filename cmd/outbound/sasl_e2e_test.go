package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/app/apptest"
	"github.com/outbound-webhooks/outbound/internal/kafkaconn"
	"github.com/outbound-webhooks/outbound/internal/testenv"
)

// One message travels over the test broker's SASL_SSL listener (SCRAM-SHA-512)
// end to end: `ctl configure` publishes the webhook, `produce` the event, and
// `outbound worker` consumes and delivers it, all with the same flags and the
// password from the environment.
func TestSASLSSLEndToEnd(t *testing.T) {
	c := newCluster(t, 1)
	brokers, kc := testenv.KafkaSASL(t, kafkaconn.ScramSHA512)
	c.Brokers = brokers // the topics are the same broker's
	c.extraFlags = []string{"--kafka-tls", "--kafka-tls-ca", kc.CAFile,
		"--kafka-sasl-mechanism", kc.SASLMechanism, "--kafka-sasl-user", kc.Username}
	c.env = []string{"OUTBOUND_KAFKA_SASL_PASSWORD=" + kc.Password}
	cli := func(stdin string, args ...string) {
		t.Helper()
		args = append(append(args, "--kafka-brokers", strings.Join(brokers, ",")), c.extraFlags...)
		if _, errOut, code := runCLI(t, strings.NewReader(stdin), c.env, args...); code != 0 {
			t.Fatalf("outbound %s: exit %d:\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	recv := apptest.NewReceiver(t)
	cli("", "ctl", "configure", "--workspace", "ws", "--url", recv.Srv.URL+"/ws", "--granularity", "none",
		"--owner-email", "owner@example.com", "--allow-private-targets", "--control-topic", c.Control)
	ev := apptest.Event("ws", "chat", "over-sasl", time.Now())
	cli(string(bytes.TrimSpace(ev.Value))+"\n", "produce", "--events-topic", c.Events)
	c.startWorker("worker")
	testenv.Eventually(t, "the delivery over SASL_SSL", 60*time.Second, func() bool { return recv.Unique()["over-sasl"] == 1 })
}
