package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ctl runs logpipectl and returns its exit code, stdout and stderr.
func ctl(t *testing.T, brokers string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"--brokers", brokers, "--timeout", "10s"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func mustCtl(t *testing.T, brokers string, args ...string) string {
	t.Helper()
	code, out, errs := ctl(t, brokers, args...)
	if code != 0 {
		t.Fatalf("logpipectl %v: exit %d\n%s%s", args, code, out, errs)
	}
	return out
}

func TestTopics(t *testing.T) {
	b := brokertest.Start(t, 3).Addr()
	out := mustCtl(t, b, "topics", "create", "web_log", "--partitions", "4", "--config", "retention.ms=3600000")
	if !strings.Contains(out, "created topic web_log with 4 partitions") {
		t.Fatal(out)
	}
	produce(t, b, "web_log", 10)
	if out := mustCtl(t, b, "topics", "list"); !strings.Contains(out, "web_log") || !strings.Contains(out, "PARTITIONS") {
		t.Fatal(out)
	}
	var info topicInfo
	if err := json.Unmarshal([]byte(mustCtl(t, b, "--json", "topics", "describe", "web_log")), &info); err != nil {
		t.Fatal(err)
	}
	var records int64
	for _, p := range info.Partitions {
		records += p.End - p.Start
	}
	if info.Count != 4 || records != 10 || info.Configs["retention.ms"] != "3600000" {
		t.Fatalf("%+v", info)
	}
	// Sizes come from DescribeLogDirs: every partition with records has some bytes.
	var sum int64
	for _, p := range info.Partitions {
		if (p.End > p.Start) != (p.Size > 0) {
			t.Fatalf("partition %+v: size does not match its records", p)
		}
		sum += p.Size
	}
	if info.Size != sum || sum == 0 {
		t.Fatalf("topic size %d, partitions sum to %d", info.Size, sum)
	}
	if out := mustCtl(t, b, "topics", "describe", "web_log"); !strings.Contains(out, "SIZE") || !strings.Contains(out, " B") {
		t.Fatal(out)
	}
	mustCtl(t, b, "topics", "add-partitions", "web_log", "6")
	if err := json.Unmarshal([]byte(mustCtl(t, b, "--json", "topics", "describe", "web_log")), &info); err != nil || info.Count != 6 {
		t.Fatalf("%+v %v", info, err)
	}
	// Errors: a clear message and exit 1; usage errors exit 2.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"topics", "describe", "nope"}, 1, "topic nope does not exist"},
		{[]string{"topics", "delete", "nope"}, 1, "topic nope does not exist"},
		{[]string{"topics", "create", "web_log", "--partitions", "1"}, 1, "create topic web_log"},
		{[]string{"topics", "create", "bad name", "--partitions", "1"}, 1, "create topic bad name"},
		{[]string{"topics", "add-partitions", "web_log", "2"}, 1, "grow topic web_log"},
		{[]string{"topics", "frobnicate"}, 2, "unknown command"},
		{[]string{"topics", "create"}, 2, "usage"},
	} {
		code, _, errs := ctl(t, b, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
	mustCtl(t, b, "topics", "delete", "web_log")
	if out := mustCtl(t, b, "topics", "list"); strings.Contains(out, "web_log") {
		t.Fatal(out)
	}
}

func TestUnreachableBroker(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--brokers", "127.0.0.1:1", "--timeout", "2s", "topics", "list"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "127.0.0.1:1") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestGroups(t *testing.T) {
	b := brokertest.Start(t, 3).Addr()
	mustCtl(t, b, "topics", "create", "app_log", "--partitions", "2")
	produce(t, b, "app_log", 20)
	// A group that consumed part of the topic and stopped: committed offsets, no members.
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "app_log", Partition: 0, At: 3})
	os.Add(kadm.Offset{Topic: "app_log", Partition: 1, At: 4})
	if _, err := adm.CommitOffsets(context.Background(), "transfer", os); err != nil {
		t.Fatal(err)
	}
	if out := mustCtl(t, b, "groups", "list"); !strings.Contains(out, "transfer") {
		t.Fatal(out)
	}
	var g groupInfo
	if err := json.Unmarshal([]byte(mustCtl(t, b, "--json", "groups", "describe", "transfer")), &g); err != nil {
		t.Fatal(err)
	}
	if g.TotalLag != 20-7 || len(g.Offsets) != 2 {
		t.Fatalf("%+v", g)
	}
	mustCtl(t, b, "groups", "reset-offsets", "transfer", "--topic", "app_log", "--to", "earliest")
	if err := json.Unmarshal([]byte(mustCtl(t, b, "--json", "groups", "describe", "transfer")), &g); err != nil || g.TotalLag != 20 {
		t.Fatalf("after reset to earliest: %+v %v", g, err)
	}
	// By time: everything was produced before now+1h, so that is the end; an hour ago is the start.
	mustCtl(t, b, "groups", "reset-offsets", "transfer", "--topic", "app_log", "--to", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	if err := json.Unmarshal([]byte(mustCtl(t, b, "--json", "groups", "describe", "transfer")), &g); err != nil || g.TotalLag != 20 {
		t.Fatalf("after reset to an hour ago: %+v %v", g, err)
	}
	mustCtl(t, b, "groups", "reset-offsets", "transfer", "--topic", "app_log", "--to", "latest")
	if err := json.Unmarshal([]byte(mustCtl(t, b, "--json", "groups", "describe", "transfer")), &g); err != nil || g.TotalLag != 0 {
		t.Fatalf("after reset to latest: %+v %v", g, err)
	}
	// A group with a running member cannot be reset.
	member, _ := kgo.NewClient(kgo.SeedBrokers(b), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("app_log"))
	defer member.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		member.PollFetches(ctx)
		cancel()
		if gs, _ := adm.DescribeGroups(context.Background(), "live"); gs["live"].State == "Stable" || time.Now().After(deadline) {
			break
		}
	}
	code, _, errs := ctl(t, b, "groups", "reset-offsets", "live", "--topic", "app_log", "--to", "0")
	if code != 1 || !strings.Contains(errs, "stop its consumers first") {
		t.Fatalf("reset of a live group: %d %s", code, errs)
	}
	mustCtl(t, b, "groups", "delete", "transfer")
	if code, _, errs := ctl(t, b, "groups", "describe", "transfer"); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("describe after delete: %d %s", code, errs)
	}
}

// TestAgainstAThreeBrokerCluster runs list and describe against franz-go's kfake with
// three brokers, to show the commands are not tied to logpipe's broker.
func TestAgainstAThreeBrokerCluster(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	produce(t, brokers, "events", 12)
	if out := mustCtl(t, brokers, "topics", "list"); !strings.Contains(out, "events") {
		t.Fatal(out)
	}
	var info topicInfo
	if err := json.Unmarshal([]byte(mustCtl(t, brokers, "--json", "topics", "describe", "events")), &info); err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]bool{}
	var records int64
	for _, p := range info.Partitions {
		leaders[p.Leader] = true
		records += p.End - p.Start
	}
	if info.Count != 6 || records != 12 || len(leaders) < 2 {
		t.Fatalf("%+v", info)
	}
}

func produce(t *testing.T, brokers, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProduceConsume(t *testing.T) {
	b := brokertest.Start(t, 3).Addr()
	var out, errb bytes.Buffer
	code := runWith([]string{"--brokers", b, "produce", "app_log", "--key", "web-1", "--acks", "1"}, strings.NewReader("first\nsecond\nthird\n"), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "produced 3 records to app_log") {
		t.Fatalf("produce: %d %s %s", code, out.String(), errb.String())
	}
	got := mustCtl(t, b, "consume", "app_log", "--from-beginning", "--max", "3")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "\tweb-1\t\tfirst") || !strings.HasSuffix(lines[2], "third") {
		t.Fatalf("consume:\n%s", got)
	}
	// In a group, what was printed is committed: a second run prints nothing old.
	js := mustCtl(t, b, "--json", "consume", "app_log", "--from-beginning", "--group", "ops", "--max", "3")
	var first consumedRecord
	if err := json.Unmarshal([]byte(strings.Split(js, "\n")[0]), &first); err != nil || first.Value != "first" || first.Key != "web-1" {
		t.Fatalf("json consume: %v\n%s", err, js)
	}
	var g groupInfo
	if err := json.Unmarshal([]byte(mustCtl(t, b, "--json", "groups", "describe", "ops")), &g); err != nil || g.TotalLag != 0 {
		t.Fatalf("group after consume: %+v %v", g, err)
	}
	if code, _, errs := ctl(t, b, "produce", "app_log", "--acks", "2"); code != 2 || !strings.Contains(errs, "--acks") {
		t.Fatalf("bad acks: %d %s", code, errs)
	}
}

// TestBrokersPrecedence: --brokers, then LOGPIPE_BROKERS, then the ini file, then the
// default; a bad or missing explicit ini file is a usage error.
func TestBrokersPrecedence(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "logpipectl.ini")
	os.WriteFile(ini, []byte("[kafka]\nbrokers = file-1:9092, file-2:9092\n"), 0o644)
	t.Setenv("LOGPIPE_BROKERS", "")
	for _, c := range []struct {
		flag, env, config string
		want              string
	}{
		{"flag:9092", "env:9092", ini, "flag:9092"},
		{"", "env:9092", ini, "env:9092"},
		{"", "", ini, "file-1:9092,file-2:9092"},
		{"", "", "", "127.0.0.1:9092"},
	} {
		t.Setenv("LOGPIPE_BROKERS", c.env)
		got, _, err := resolveBrokers(c.flag, c.config)
		if err != nil || strings.Join(got, ",") != c.want {
			t.Errorf("flag %q env %q config %q: %v %v, want %s", c.flag, c.env, c.config, got, err, c.want)
		}
	}
	t.Setenv("LOGPIPE_BROKERS", "")
	bad := filepath.Join(dir, "bad.ini")
	os.WriteFile(bad, []byte("[kafka]\nbrokerz = x\n"), 0o644)
	for _, path := range []string{bad, filepath.Join(dir, "missing.ini")} {
		var out, errb bytes.Buffer
		if code := runWith([]string{"--config", path, "topics", "list"}, strings.NewReader(""), &out, &errb); code != 2 || !strings.Contains(errb.String(), path) {
			t.Errorf("--config %s: exit %d, %s", path, code, errb.String())
		}
	}
	// The shipped example loads.
	if got, _, err := resolveBrokers("", "../../conf/logpipectl.ini"); err != nil || strings.Join(got, ",") != "127.0.0.1:9092" {
		t.Errorf("conf/logpipectl.ini: %v %v", got, err)
	}
}
