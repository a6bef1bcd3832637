package logtransfer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/logpipe/logpipe/logtransfer/document"
)

// TestReplayDLQ: a record Elasticsearch rejected goes to web_log.dlq; once the cause
// is fixed, ReplayDLQ indexes it under the _id it would have had, exactly once; a
// second replay finds nothing new.
func TestReplayDLQ(t *testing.T) {
	b := brokertest.Start(t, 3)
	createTopic(t, b.Addr(), "web_log", 3)
	es := startES(t)
	es.SetItemRule(func(it estest.Item) int {
		if strings.Contains(string(it.Source), `"line 77"`) || strings.Contains(string(it.Source), `"line 78"`) {
			return 400
		}
		return 0
	})
	produce(t, b.Addr(), "web_log", 0, 300)
	cfg := testConfig(b.Addr(), es.URL())
	r := startTransfer(t, cfg)
	wait.For(t, 30*time.Second, "298 documents and 2 dead letters", func() bool {
		return es.Count("*") >= 298 && counter(t, r.t, "logtransfer_dead_lettered_total") >= 2
	})
	r.stop()
	es.SetItemRule(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := ReplayDLQ(ctx, cfg, "", logging.Discard())
	if err != nil || n != 2 {
		t.Fatalf("replayed %d: %v", n, err)
	}
	checkDocs(t, es, 300)
	want := document.ID("web_log", 0, 0, []byte("web-1"), []byte("1-2-0"), []byte("7700")) // line 77: f2, offset 7700
	found := false
	for _, d := range es.Docs("web_log-*") {
		found = found || d.ID == want
	}
	if !found {
		t.Fatalf("line 77 is not under its original _id %s", want)
	}
	if n, err := ReplayDLQ(ctx, cfg, "web_log.dlq", logging.Discard()); err != nil || n != 0 {
		t.Fatalf("second replay: %d, %v", n, err)
	}
	if es.Count("*") != 300 {
		t.Fatalf("%d documents", es.Count("*"))
	}
}
