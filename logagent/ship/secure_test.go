package ship

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/internal/brokertest"
)

// TestSecure ships over SASL_SSL with SCRAM-SHA-512 to logpipe's broker and to
// franz-go's kfake, and reads every record back with kgo, also secured.
func TestSecure(t *testing.T) {
	const n = 500
	for name, start := range map[string]func(t *testing.T) *brokertest.Secure{
		"logpipe": func(t *testing.T) *brokertest.Secure { return brokertest.StartSecure(t, 2) },
		"kfake":   func(t *testing.T) *brokertest.Secure { return brokertest.StartKfakeSecure(t, 2, "secure") },
	} {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			a := newAcks(func(uint64) string { return "" })
			p := newProducer(t, b.Addr, "all", func(c *Config) { c.Security = b.Client })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := range n {
				if err := p.Send(ctx, record("secure", fmt.Sprintf("k%d", i%7), i), a, uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			for a.total() < n && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond) // acknowledgements arrive asynchronously; bounded by ctx
			}
			if err := p.Close(5 * time.Second); err != nil || a.total() != n {
				t.Fatalf("%d of %d acknowledged; close: %v", a.total(), n, err)
			}

			opts, err := b.Client.KgoOpts()
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("secure"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			seen := map[string]bool{}
			for len(seen) < n {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("read back %d of %d records", len(seen), n)
				}
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
			}
		})
	}
}
