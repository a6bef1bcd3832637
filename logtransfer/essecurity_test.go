package logtransfer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/tlsconfig"
	"github.com/logpipe/logpipe/internal/tlstest"
	"github.com/logpipe/logpipe/internal/wait"
)

// syncBuffer is a log destination tests can read while the transfer writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestElasticsearchSecurity: Elasticsearch 8 over https that requires a client
// certificate and credentials. The transfer indexes with an API key read from
// api_key_file, and with username and password_file; wrong secrets are refused at
// start with an error that names the key but not the secret, and no secret is ever
// in the log (debug level).
func TestElasticsearchSecurity(t *testing.T) {
	ca := tlstest.NewCA(t, "es-ca")
	srvCert, srvKey := ca.Issue(t, "es", "localhost", tlstest.Options{})
	cliCert, cliKey := ca.Issue(t, "transfer", "logtransfer-1", tlstest.Options{Client: true})
	tc, _, err := tlsconfig.Server(tlsconfig.ServerOptions{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: ca.CAFile, ClientAuth: tlsconfig.ClientAuthRequired})
	if err != nil {
		t.Fatal(err)
	}
	es, err := estest.StartTLS(estest.Elasticsearch8, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	const apiKey, password = "a2V5LWlkOnMzY3IzdC1hcGkta2V5", "p4ssw0rd-s3cret"
	es.SetAuth(estest.Auth{Username: "logpipe_writer", Password: password, APIKey: apiKey})
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b := brokertest.Start(t, 3)
	createTopic(t, b.Addr(), "web_log", 3)
	produce(t, b.Addr(), "web_log", 0, 500)

	var logs syncBuffer
	run := func(cfg Config) error {
		log, _ := logging.New(&logs, "debug", "text")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tr, err := New(ctx, cfg, log)
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- tr.Run(ctx) }()
		defer func() { cancel(); <-done }()
		wait.For(t, 30*time.Second, "documents", func() bool { return es.Count("web_log-*") >= 500 })
		return nil
	}
	base := testConfig(b.Addr(), es.URL())
	base.ES.CAFile, base.ES.CertFile, base.ES.KeyFile = ca.CAFile, cliCert, cliKey

	cfg := base
	cfg.ES.APIKeyFile = write("api_key", apiKey+"\n")
	if err := run(cfg); err != nil {
		t.Fatal(err)
	}
	if scheme, cn := es.LastAuth(); scheme != "ApiKey" || cn != "logtransfer-1" {
		t.Fatalf("auth %s, client certificate %q", scheme, cn)
	}
	checkDocs(t, es, 500)

	cfg = base
	cfg.Kafka.Group = "other"
	cfg.ES.Username, cfg.ES.PasswordFile = "logpipe_writer", write("password", password+"\n")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := run(cfg); err != nil {
		t.Fatal(err)
	}
	if scheme, _ := es.LastAuth(); scheme != "Basic" {
		t.Fatalf("auth %s", scheme)
	}

	// Wrong secrets: refused at start, the error says which key, not the secret.
	for _, c := range []struct{ key, file, user string }{{"api_key_file", "wrong-api-key-value", ""}, {"password_file", "wrong-password-value", "logpipe_writer"}} {
		cfg = base
		cfg.ES.Username = c.user
		if c.key == "api_key_file" {
			cfg.ES.APIKeyFile = write("bad", c.file)
		} else {
			cfg.ES.PasswordFile = write("bad", c.file)
		}
		err := run(cfg)
		if err == nil || !strings.Contains(err.Error(), "refused the credentials") || strings.Contains(err.Error(), c.file) {
			t.Fatalf("%s: %v", c.key, err)
		}
	}
	// Without the client certificate the TLS handshake fails: an error, retried until
	// the context ends, that names no secret either.
	cfg = base
	cfg.ES.CertFile, cfg.ES.KeyFile = "", ""
	cfg.ES.APIKey = apiKey
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	log, _ := logging.New(&logs, "debug", "text")
	_, err = New(ctx, cfg, log)
	cancel()
	if err == nil {
		t.Fatal("no client certificate: accepted")
	}
	for _, secret := range []string{apiKey, password, "wrong-api-key-value", "wrong-password-value"} {
		if strings.Contains(logs.String(), secret) || strings.Contains(err.Error(), secret) {
			t.Fatalf("secret %q in the log or error:\n%s\n%v", secret, logs.String(), err)
		}
	}
	if !strings.Contains(logs.String(), `auth="api_key, client certificate"`) || !strings.Contains(logs.String(), "distribution=elasticsearch") {
		t.Fatalf("log does not say the cluster and the auth kind:\n%s", logs.String())
	}
}
