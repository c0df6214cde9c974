package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/outbound-webhooks/outbound/internal/cli"
)

// The SASL mechanisms Config accepts, as brokers name them (case-insensitive).
const (
	Plain       = "plain"
	ScramSHA256 = "scram-sha-256"
	ScramSHA512 = "scram-sha-512"
)

// Config says how to reach the brokers. The zero Config is plaintext without
// authentication.
type Config struct {
	// TLS encrypts the connection; CAFile, CertFile, KeyFile and
	// InsecureSkipVerify only apply with it.
	TLS bool
	// CAFile holds the PEM certificates that verify the brokers; empty: the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key (mTLS),
	// both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any broker certificate (tests only).
	InsecureSkipVerify bool
	// SASLMechanism is Plain, ScramSHA256 or ScramSHA512; empty: no SASL.
	SASLMechanism string
	// Username and Password are the SASL credentials.
	Username, Password string
	// PasswordFile holds the SASL password instead of Password.
	PasswordFile string
}

// Register registers c's flags on fs, the same on every command that reaches
// Kafka.
func (c *Config) Register(fs *cli.FlagSet) {
	fs.BoolVar(&c.TLS, "kafka-tls", false, "connect to Kafka over TLS")
	fs.StringVar(&c.CAFile, "kafka-tls-ca", "", "PEM file of the CA certificates that verify the Kafka brokers (empty: the system's roots)")
	fs.StringVar(&c.CertFile, "kafka-tls-cert", "", "PEM file of the client certificate, for brokers that require mTLS")
	fs.StringVar(&c.KeyFile, "kafka-tls-key", "", "PEM file of the client certificate's key")
	fs.BoolVar(&c.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "accept any Kafka broker certificate (tests only)")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (empty: no SASL)")
	fs.StringVar(&c.Username, "kafka-sasl-user", "", "SASL user")
	fs.StringVar(&c.Password, "kafka-sasl-password", "", "SASL password; prefer the environment variable OUTBOUND_KAFKA_SASL_PASSWORD or --kafka-sasl-password-file")
	fs.StringVar(&c.PasswordFile, "kafka-sasl-password-file", "", "file that holds the SASL password, instead of --kafka-sasl-password")
}

// Env returns c as the OUTBOUND_* variables of its flags, for a child process
// such as a worker the bench starts: unlike arguments, ps does not show them.
func (c Config) Env() []string {
	return []string{
		"OUTBOUND_KAFKA_TLS=" + strconv.FormatBool(c.TLS),
		"OUTBOUND_KAFKA_TLS_CA=" + c.CAFile,
		"OUTBOUND_KAFKA_TLS_CERT=" + c.CertFile,
		"OUTBOUND_KAFKA_TLS_KEY=" + c.KeyFile,
		"OUTBOUND_KAFKA_TLS_INSECURE_SKIP_VERIFY=" + strconv.FormatBool(c.InsecureSkipVerify),
		"OUTBOUND_KAFKA_SASL_MECHANISM=" + c.SASLMechanism,
		"OUTBOUND_KAFKA_SASL_USER=" + c.Username,
		"OUTBOUND_KAFKA_SASL_PASSWORD=" + c.Password,
		"OUTBOUND_KAFKA_SASL_PASSWORD_FILE=" + c.PasswordFile,
	}
}

// Conn is a Config made ready: what every Kafka client of a process shares.
// The zero Conn is kafka-go's plaintext default.
type Conn struct {
	tls  *tls.Config
	sasl sasl.Mechanism
	// transport is shared by writers and clients so that they share
	// connections and metadata; nil when plaintext, which leaves them on
	// kafka.DefaultTransport as before.
	transport *kafka.Transport
}

// New checks c and loads its files. Every error is about c itself.
func New(c Config) (Conn, error) {
	var conn Conn
	var errs []error
	if c.TLS {
		t, err := c.tlsConfig()
		if err != nil {
			errs = append(errs, err)
		}
		conn.tls = t
	} else if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.InsecureSkipVerify {
		errs = append(errs, errors.New("the Kafka TLS CA, certificate, key and skip-verify settings need TLS on (--kafka-tls)"))
	}
	m, err := c.mechanism()
	if err != nil {
		errs = append(errs, err)
	}
	conn.sasl = m
	if err := errors.Join(errs...); err != nil {
		return Conn{}, err
	}
	if conn.tls != nil || conn.sasl != nil {
		conn.transport = conn.NewTransport()
	}
	return conn, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	// Same floor as crypto/tls's client default; set so that no caller lowers it.
	t := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the Kafka TLS CA file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the Kafka TLS CA file %s holds no PEM certificate", c.CAFile)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("the Kafka TLS client certificate and key go together: set both or neither")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the Kafka TLS client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

func (c Config) mechanism() (sasl.Mechanism, error) {
	if c.PasswordFile != "" {
		if c.Password != "" {
			return nil, errors.New("the Kafka SASL password comes from --kafka-sasl-password or --kafka-sasl-password-file, not both")
		}
		p, err := cli.ReadSecretFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("the Kafka SASL password: %w", err)
		}
		c.Password = p
	}
	name := strings.ToLower(c.SASLMechanism)
	if name == "" {
		if c.Username != "" || c.Password != "" {
			return nil, errors.New("a Kafka SASL user or password needs a SASL mechanism (--kafka-sasl-mechanism)")
		}
		return nil, nil
	}
	var algo scram.Algorithm
	switch name {
	case Plain:
	case ScramSHA256:
		algo = scram.SHA256
	case ScramSHA512:
		algo = scram.SHA512
	default:
		return nil, fmt.Errorf("unknown Kafka SASL mechanism %q: want %s, %s or %s", c.SASLMechanism, Plain, ScramSHA256, ScramSHA512)
	}
	if c.Username == "" || c.Password == "" {
		return nil, fmt.Errorf("Kafka SASL %s needs a user and a password", name)
	}
	if algo == nil {
		return plain.Mechanism{Username: c.Username, Password: c.Password}, nil
	}
	return scram.Mechanism(algo, c.Username, c.Password)
}

// Dialer returns a new dialer for kafka.Reader, kafka.ConsumerGroup and direct
// connections: kafka.DefaultDialer's settings, plus c's TLS and SASL.
func (c Conn) Dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: c.tls, SASLMechanism: c.sasl}
}

// Transport returns the transport for kafka.Writer and kafka.Client, shared by
// every one of them built from c: nil, that is kafka.DefaultTransport, when c
// is plaintext.
func (c Conn) Transport() kafka.RoundTripper {
	if c.transport == nil {
		return nil // a nil *kafka.Transport in the interface would not be nil
	}
	return c.transport
}

// NewTransport returns a transport of c's own, for a client that must not
// share connections or cached metadata.
func (c Conn) NewTransport() *kafka.Transport {
	return &kafka.Transport{TLS: c.tls, SASL: c.sasl}
}

// Close closes the shared transport's idle connections.
func (c Conn) Close() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}
