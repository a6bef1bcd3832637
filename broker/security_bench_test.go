package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/internal/kafkasec"
	"github.com/logpipe/logpipe/internal/tlstest"
)

// BenchmarkProduceSASLSSL produces b.N 100-byte records (kgo, 4 producers,
// acks=all) over PLAINTEXT and then over SASL_SSL with SCRAM-SHA-512 to one
// broker, and reports both rates and their ratio (Kafka's users expect TLS to
// cost well under half).
func BenchmarkProduceSASLSSL(b *testing.B) {
	ca := tlstest.NewCA(b, "bench CA")
	cert, key := ca.Issue(b, "broker", "localhost", tlstest.Options{})
	br := startBroker(b, func(c *broker.Config) {
		c.Server.Listeners = "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
		c.TLS = broker.TLSConfig{CertFile: cert, KeyFile: key}
	})
	users, err := sasl.OpenUsers(br.DataDir())
	if err != nil {
		b.Fatal(err)
	}
	if err := users.SetPassword("bench", sasl.ScramSHA512, "pw", sasl.MinIterations); err != nil {
		b.Fatal(err)
	}
	createTopic(b, br.Addr(), "bench", 4, nil)
	sec, err := kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: "bench", Password: "pw"}.KgoOpts()
	if err != nil {
		b.Fatal(err)
	}
	rate := func(addr string, opts ...kgo.Opt) float64 {
		t0 := time.Now()
		kgoProduceWith(b, addr, "bench", b.N, 4, true, opts...)
		return float64(b.N) / time.Since(t0).Seconds()
	}
	b.SetBytes(benchRecordSize)
	b.ResetTimer()
	plain := rate(br.Addr())
	secure := rate(br.ListenerAddr(server.SASLSSL), sec...)
	b.StopTimer()
	b.ReportMetric(plain, "records/s-plaintext")
	b.ReportMetric(secure, "records/s-sasl_ssl")
	b.ReportMetric(secure/plain, "sasl_ssl/plaintext")
}
