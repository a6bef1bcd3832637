package brokertest

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/internal/kafkasec"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/tlstest"
)

// Secure is a broker that clients reach over SASL_SSL with SCRAM-SHA-512, as
// the README's secured setup has it.
type Secure struct {
	Addr   string          // the SASL_SSL listener
	Client kafkasec.Config // what a client needs: TLS with the test CA, a user
	CA     *tlstest.CA
}

// StartSecure starts logpipe's broker with a SASL_SSL listener (and auto-created
// topics of the given partition count) and one user, stopped when the test
// ends.
func StartSecure(t testing.TB, partitions int32) *Secure {
	t.Helper()
	ca := tlstest.NewCA(t, "logpipe test CA")
	cert, key := ca.Issue(t, "broker", "localhost", tlstest.Options{})
	cfg := broker.DefaultConfig()
	cfg.Server.Listeners = "SASL_SSL://127.0.0.1:0"
	cfg.Server.ShutdownTimeout = 2 * time.Second
	cfg.TLS = broker.TLSConfig{CertFile: cert, KeyFile: key}
	cfg.Log.Dir = t.TempDir()
	cfg.Log.NumPartitions = partitions
	cfg.Metrics.Listen = ""
	cfg.Group.InitialRebalanceDelay = 0
	users, err := sasl.OpenUsers(cfg.Log.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword("logpipe", sasl.ScramSHA512, "test-password", sasl.MinIterations); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(cfg, logging.Discard())
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return &Secure{
		Addr:   b.ListenerAddr(server.SASLSSL),
		Client: kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: "logpipe", Password: "test-password"},
		CA:     ca,
	}
}

// StartKfakeSecure starts franz-go's kfake, a second, independent
// implementation of Kafka's SASL and TLS, with the same kind of listener and
// user, so that the clients are not tested against logpipe's server alone.
func StartKfakeSecure(t testing.TB, partitions int32, topics ...string) *Secure {
	t.Helper()
	ca := tlstest.NewCA(t, "logpipe test CA")
	certFile, keyFile := ca.Issue(t, "kfake", "localhost", tlstest.Options{})
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "logpipe", "test-password"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &Secure{
		Addr:   c.ListenAddrs()[0],
		Client: kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: "logpipe", Password: "test-password"},
		CA:     ca,
	}
}
