package logtransfer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseTopics(t *testing.T) {
	tp, err := ParseTopics(`web_log, /.*_log$/ ,/a{1,3}b/,app_log`, "{topic}.dlq")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tp.Names) != "[web_log app_log]" || len(tp.Patterns) != 2 {
		t.Fatalf("%v %v", tp.Names, tp.Patterns)
	}
	got := tp.Resolve([]string{"payments_log", "__consumer_offsets", "__x_log", "payments_log.dlq", "aab", "aaaab", "other", "web_log"})
	if want := []string{"aab", "app_log", "payments_log", "web_log"}; !slices.Equal(got, want) {
		t.Fatalf("resolved %v, want %v", got, want)
	}
	all, _ := ParseTopics(`/.*/`, "dead-{topic}")
	if got := all.Resolve([]string{"a", "__b", "c.dlq", "dead-a", "d"}); !slices.Equal(got, []string{"a", "d"}) {
		t.Fatalf("/.*/ resolved %v", got)
	}
	for _, bad := range []string{``, `/(/`, `/abc`, `,`, "/" + string(make([]byte, 2000)) + "/"} {
		if _, err := ParseTopics(bad, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// produceTo writes n lines to topic, with agent headers so that each has its own id.
func produceTo(t testing.TB, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s %d", topic, i)), Headers: []kgo.RecordHeader{
			{Key: "host", Value: []byte("h")}, {Key: "path", Value: []byte("/var/log/" + topic)},
			{Key: "offset", Value: []byte(strconv.Itoa(i))}, {Key: "file_id", Value: []byte(topic)}}})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestTopicPatterns runs the transfer with the shipped defaults (metadata_refresh
// 10 s, session timeout 10 s) and topics = /.*_log$/: a topic created while it runs
// is consumed through a rejoin; a dead-letter topic is not (internal topics: this
// broker refuses to create __ names, see TestParseTopics); a consumed
// topic deleted does not wedge the group (a topic created after that is consumed).
func TestTopicPatterns(t *testing.T) {
	b := brokertest.Start(t, 3)
	es := startES(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tp := range []string{"web_log", "web_log.dlq"} {
		if _, err := adm.CreateTopic(context.Background(), 3, 1, nil, tp); err != nil {
			t.Fatal(err)
		}
		produceTo(t, cl, tp, 0, 100)
	}
	cfg := DefaultConfig()
	cfg.Kafka.Brokers, cfg.ES.URLs, cfg.Metrics.Listen = b.Addr(), es.URL(), ""
	cfg.Kafka.Topics = "/.*_log$/"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	startTransfer(t, cfg)
	wait.For(t, 30*time.Second, "web_log", func() bool { return es.Count("web_log-*") >= 100 })

	start := time.Now()
	if _, err := adm.CreateTopic(context.Background(), 3, 1, nil, "payments_log"); err != nil {
		t.Fatal(err)
	}
	produceTo(t, cl, "payments_log", 0, 100)
	wait.For(t, 45*time.Second, "payments_log, created later", func() bool { return es.Count("payments_log-*") >= 100 })
	t.Logf("a topic created later was indexed after %v (metadata_refresh %v)", time.Since(start).Round(time.Millisecond), cfg.Kafka.MetadataRefresh)

	if _, err := adm.DeleteTopics(context.Background(), "web_log"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := adm.CreateTopic(context.Background(), 3, 1, nil, "later_log"); err != nil {
		t.Fatal(err)
	}
	produceTo(t, cl, "later_log", 0, 100)
	produceTo(t, cl, "payments_log", 100, 150)
	wait.For(t, 45*time.Second, "later_log after web_log was deleted", func() bool {
		return es.Count("later_log-*") >= 100 && es.Count("payments_log-*") >= 150
	})
	t.Logf("after a consumed topic was deleted, a new one was indexed after %v", time.Since(start).Round(time.Millisecond))
	if n := es.Count("web_log.dlq-*"); n != 0 {
		t.Fatalf("%d documents from the dead-letter topic", n)
	}
	if n := es.Count("*"); n != 350 {
		t.Fatalf("%d documents, want 350", n)
	}
}
