package broker_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/internal/kafkasec"
	"github.com/logpipe/logpipe/internal/tlstest"
)

// secureBroker starts a broker with PLAINTEXT, SASL_SSL, SSL (client
// certificates required) and SASL_PLAINTEXT listeners, and two users.
func secureBroker(t *testing.T, ca *tlstest.CA) *broker.Broker {
	t.Helper()
	cert, key := ca.Issue(t, "broker", "localhost", tlstest.Options{})
	b := startBroker(t, func(c *broker.Config) {
		c.Server.Listeners = "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"
		c.TLS = broker.TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: ca.CAFile, ClientAuth: "required"}
	})
	users, err := sasl.OpenUsers(brokerDir(t, b))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []sasl.Mechanism{sasl.ScramSHA512, sasl.ScramSHA256} {
		if err := users.SetPassword("agent", m, "agent-secret", sasl.DefaultIterations); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// kgoWith is a kgo client with the given security settings.
func kgoWith(t *testing.T, addr string, sec kafkasec.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	so, err := sec.KgoOpts()
	if err != nil {
		t.Fatal(err)
	}
	return newKgo(t, addr, append(append(so, kgo.DialTimeout(3*time.Second), kgo.RequestRetries(1)), opts...)...)
}

// request sends one Metadata request with cl and returns its error.
func request(cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err
}

// produceOnce produces one record with cl and returns the error.
func produceOnce(cl *kgo.Client, topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("secret line")}).FirstErr()
}

func TestSASLAndTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "logpipe test CA")
	b := secureBroker(t, ca)
	saslSSL := b.ListenerAddr(server.SASLSSL)
	sslAddr := b.ListenerAddr(server.SSL)
	saslPlain := b.ListenerAddr(server.SASLPlaintext)
	createTopic(t, b.Addr(), "secure", 1, nil)

	good := kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: "agent", Password: "agent-secret"}
	for name, sec := range map[string]kafkasec.Config{
		"kgo SCRAM-SHA-512 over TLS": good,
		"kgo SCRAM-SHA-256 over TLS": {TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-256", Username: "agent", Password: "agent-secret"},
		"kgo PLAIN over TLS":         {TLS: true, CAFile: ca.CAFile, SASLMechanism: "PLAIN", Username: "agent", Password: "agent-secret"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := produceOnce(kgoWith(t, saslSSL, sec), "secure"); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("kgo SCRAM on SASL_PLAINTEXT", func(t *testing.T) {
		sec := good
		sec.TLS = false
		if err := produceOnce(kgoWith(t, saslPlain, sec), "secure"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("sarama SCRAM-SHA-512 over TLS", func(t *testing.T) {
		sc := sarama.NewConfig()
		sc.Version = sarama.V2_8_0_0
		sc.Producer.Return.Successes = true
		sc.Net.DialTimeout = 3 * time.Second
		if err := good.ApplySarama(sc); err != nil {
			t.Fatal(err)
		}
		p, err := sarama.NewSyncProducer([]string{saslSSL}, sc)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "secure", Value: sarama.StringEncoder("from sarama")}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mTLS", func(t *testing.T) {
		cert, key := ca.Issue(t, "client", "writer-1", tlstest.Options{Client: true})
		sec := kafkasec.Config{TLS: true, CAFile: ca.CAFile, CertFile: cert, KeyFile: key}
		if err := produceOnce(kgoWith(t, sslAddr, sec), "secure"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("kcat SASL_SSL", func(t *testing.T) {
		if _, err := exec.LookPath("kcat"); err != nil {
			t.Fatal("kcat is not installed (apt-get install -y kcat); .ci/run installs it")
		}
		cmd := exec.Command("kcat", "-b", saslSSL, "-P", "-t", "secure",
			"-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=agent", "-X", "sasl.password=agent-secret", "-X", "ssl.ca.location="+ca.CAFile)
		cmd.Stdin = strings.NewReader("from kcat\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v\n%s", err, out)
		}
		bad := exec.Command("kcat", "-b", saslSSL, "-L", "-m", "5",
			"-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=agent", "-X", "sasl.password=wrong", "-X", "ssl.ca.location="+ca.CAFile)
		out, err := bad.CombinedOutput()
		if err == nil {
			t.Fatalf("kcat with a wrong password listed metadata:\n%s", out)
		}
		if !strings.Contains(string(out), "Authentication failed") && !strings.Contains(string(out), "SASL authentication error") {
			t.Fatalf("kcat with a wrong password: %s", out)
		}
	})

	// Refusals.
	refused := map[string]struct {
		addr string
		sec  kafkasec.Config
		want error
	}{
		"wrong password":                       {saslSSL, kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: "agent", Password: "guess"}, kerr.SaslAuthenticationFailed},
		"unknown user":                         {saslSSL, kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: "mallory", Password: "x"}, kerr.SaslAuthenticationFailed},
		"PLAIN wrong":                          {saslSSL, kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "PLAIN", Username: "agent", Password: "guess"}, kerr.SaslAuthenticationFailed},
		"plaintext client on the TLS listener": {saslSSL, kafkasec.Config{SASLMechanism: "SCRAM-SHA-512", Username: "agent", Password: "agent-secret"}, nil},
		"no SASL on the SASL listener":         {saslSSL, kafkasec.Config{TLS: true, CAFile: ca.CAFile}, nil},
		"unknown CA":                           {saslSSL, kafkasec.Config{TLS: true, SASLMechanism: "SCRAM-SHA-512", Username: "agent", Password: "agent-secret"}, nil},
	}
	for name, c := range refused {
		t.Run("refused: "+name, func(t *testing.T) {
			err := request(kgoWith(t, c.addr, c.sec))
			if err == nil {
				t.Fatal("a Metadata request was answered")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
	t.Run("refused: expired client certificate", func(t *testing.T) {
		cert, key := ca.Issue(t, "expired", "old", tlstest.Options{Client: true, NotAfter: time.Now().Add(-time.Hour)})
		sec := kafkasec.Config{TLS: true, CAFile: ca.CAFile, CertFile: cert, KeyFile: key}
		if err := request(kgoWith(t, sslAddr, sec)); err == nil {
			t.Fatal("an expired certificate was accepted")
		}
	})
	t.Run("refused: certificate of another CA", func(t *testing.T) {
		other := tlstest.NewCA(t, "someone else")
		cert, key := other.Issue(t, "stranger", "stranger", tlstest.Options{Client: true})
		sec := kafkasec.Config{TLS: true, CAFile: ca.CAFile, CertFile: cert, KeyFile: key}
		if err := request(kgoWith(t, sslAddr, sec)); err == nil {
			t.Fatal("a certificate of an unknown CA was accepted")
		}
	})
	t.Run("refused: no client certificate on SSL", func(t *testing.T) {
		if err := request(kgoWith(t, sslAddr, kafkasec.Config{TLS: true, CAFile: ca.CAFile})); err == nil {
			t.Fatal("a client without a certificate was accepted")
		}
	})

	// Each listener advertises itself.
	t.Run("metadata per listener", func(t *testing.T) {
		for addr, sec := range map[string]kafkasec.Config{saslSSL: good, b.Addr(): {}} {
			adm := kadm.NewClient(kgoWith(t, addr, sec))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := adm.BrokerMetadata(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%s:%d", m.Brokers[0].Host, m.Brokers[0].Port); got != addr {
				t.Fatalf("listener %s advertises %s", addr, got)
			}
		}
	})
}

// TestSCRAMAdmin: users managed over the Kafka protocol with kadm can log in;
// deleted ones cannot; Describe lists mechanisms and iterations, never secrets.
func TestSCRAMAdmin(t *testing.T) {
	ca := tlstest.NewCA(t, "logpipe test CA")
	b := secureBroker(t, ca)
	adm := kadm.NewClient(newKgo(t, b.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "transfer", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "t-pass"}})
	if err != nil || res.Error() != nil {
		t.Fatalf("upsert: %v %v", err, res.Error())
	}
	sec := kafkasec.Config{TLS: true, CAFile: ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: "transfer", Password: "t-pass"}
	createTopic(t, b.Addr(), "t", 1, nil)
	if err := produceOnce(kgoWith(t, b.ListenerAddr(server.SASLSSL), sec), "t"); err != nil {
		t.Fatalf("the new user: %v", err)
	}
	d, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u := d["transfer"]; u.Err != nil || len(u.CredInfos) != 1 || u.CredInfos[0].Iterations != 4096 {
		t.Fatalf("describe: %+v", d)
	}
	if len(d) != 2 {
		t.Fatalf("describe lists %d users, want 2", len(d))
	}
	res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "transfer", Mechanism: kadm.ScramSha512}}, nil)
	if err != nil || res.Error() != nil {
		t.Fatalf("delete: %v %v", err, res.Error())
	}
	if err := request(kgoWith(t, b.ListenerAddr(server.SASLSSL), sec)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("the deleted user: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(brokerDir(t, b), "users.json"))
	if strings.Contains(string(raw), "t-pass") || strings.Contains(string(raw), "agent-secret") {
		t.Fatal("users.json holds a password")
	}
}

// TestCertificateReload: new certificate files are served without a restart.
func TestCertificateReload(t *testing.T) {
	ca := tlstest.NewCA(t, "logpipe test CA")
	b := secureBroker(t, ca)
	serial := func() string {
		c, err := tls.Dial("tcp", b.ListenerAddr(server.SSL), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName + "/" + c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	// Issue a new certificate into the same files.
	cert, key := ca.Issue(t, "broker", "localhost", tlstest.Options{})
	_ = cert
	_ = key
	if err := b.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if after := serial(); after == before {
		t.Fatalf("still serving %s after the reload", after)
	}
}

func brokerDir(t *testing.T, b *broker.Broker) string { t.Helper(); return b.DataDir() }
