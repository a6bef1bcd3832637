package logtransfer

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/wait"
)

// TestSecure consumes over SASL_SSL with SCRAM-SHA-512, from logpipe's broker
// and from franz-go's kfake: every record becomes one document.
func TestSecure(t *testing.T) {
	const n = 3000
	for name, start := range map[string]func(t *testing.T) *brokertest.Secure{
		"logpipe": func(t *testing.T) *brokertest.Secure { return brokertest.StartSecure(t, 3) },
		"kfake":   func(t *testing.T) *brokertest.Secure { return brokertest.StartKfakeSecure(t, 3, "web_log") },
	} {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			opts, err := b.Client.KgoOpts()
			if err != nil {
				t.Fatal(err)
			}
			produce(t, b.Addr, "web_log", 0, n, append(opts, kgo.AllowAutoTopicCreation())...)
			es := startES(t)
			cfg := testConfig(b.Addr, es.URL())
			cfg.Kafka.Config = b.Client
			startTransfer(t, cfg)
			wait.For(t, 60*time.Second, "every document", func() bool { return es.Count("*") >= n })
			checkDocs(t, es, n)
		})
	}
}
