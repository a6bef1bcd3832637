package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
)

// TestConsumerGroupRouting drives the group APIs through the server with kgo
// and sarama: members share the partitions, commit, and a later member resumes
// from the committed offsets.
func TestConsumerGroupRouting(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) { c.Group.InitialRebalanceDelay = 0 })
	const topic = "grouped"
	createTopic(t, b.Addr(), topic, 3, nil)
	p := newKgo(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produce := func(from, n int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 600)

	// Two kgo members consume everything once between them and commit.
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	var members []*kgo.Client
	for range 2 {
		cl := newKgo(t, b.Addr(), kgo.ConsumerGroup("g"), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
		members = append(members, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				fs := cl.PollFetches(cctx)
				mu.Lock()
				for _, r := range fs.Records() {
					seen[string(r.Value)]++
				}
				done := len(seen) >= 600
				mu.Unlock()
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					t.Errorf("commit: %v", err)
					return
				}
				if done {
					ccancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 600 {
		t.Fatalf("group consumed %d distinct records, want 600", len(seen))
	}
	for _, cl := range members {
		cl.Close() // leaves the group
	}

	// A sarama group member resumes after the committed offsets.
	produce(600, 10)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup([]string{b.Addr()}, "g", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	h := &collectHandler{want: 10, got: make(chan string, 1000)}
	gctx, gcancel := context.WithCancel(ctx)
	defer gcancel()
	go func() {
		for gctx.Err() == nil {
			if err := cg.Consume(gctx, []string{topic}, h); err != nil && gctx.Err() == nil {
				t.Errorf("sarama consume: %v", err)
				return
			}
		}
	}()
	got := map[string]bool{}
	for len(got) < 10 {
		select {
		case v := <-h.got:
			got[v] = true
		case <-ctx.Done():
			t.Fatalf("sarama member got %d of 10 new records", len(got))
		}
	}
	for v := range got {
		var i int
		fmt.Sscan(v, &i)
		if i < 600 {
			t.Fatalf("sarama member re-read committed record %s", v)
		}
	}
}

type collectHandler struct {
	want int
	got  chan string
}

func (h *collectHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *collectHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *collectHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.got <- string(m.Value)
		s.MarkMessage(m, "")
	}
	return nil
}
