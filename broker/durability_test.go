package broker_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/internal/proctest"
	"github.com/logpipe/logpipe/internal/wait"
)

// buildBroker builds cmd/broker into a temporary directory.
func buildBroker(t *testing.T) string {
	t.Helper()
	return filepath.Join(proctest.Build(t, t.TempDir(), "broker"), "broker")
}

// brokerProc is the broker running as a real process.
type brokerProc struct {
	cmd  *exec.Cmd
	addr string
	log  string
	done chan error
}

// startProc starts bin with a config using dataDir and waits until it listens: on listen
// ("" = a free port), with the ini sections extra added.
func startProc(t *testing.T, bin, dataDir, listen, extra string) *brokerProc {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	dir := t.TempDir()
	ini := filepath.Join(dir, "broker.ini")
	conf := fmt.Sprintf("[server]\nlisten = %s\nshutdown_timeout = 2s\n[log]\ndir = %s\nnum_partitions = 3\n[metrics]\nlisten = 127.0.0.1:0\n[logging]\nformat = json\nlevel = info\n%s", listen, dataDir, extra)
	if err := os.WriteFile(ini, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{log: filepath.Join(dir, "broker.log"), done: make(chan error, 1)}
	lf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	p.cmd = exec.Command(bin, "-config", ini)
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	wait.For(t, 30*time.Second, "the broker to listen", func() bool {
		f, err := os.Open(p.log)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "broker listening" {
				p.addr = line.Addr
				return true
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			out, _ := os.ReadFile(p.log)
			t.Fatalf("broker exited: %v\n%s", err, out)
		default:
		}
		return false
	})
	return p
}

// kill SIGKILLs the broker and waits for it to exit.
func (p *brokerProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err // for the cleanup
}

type acked struct {
	partition int32
	offset    int64
}

// TestKillDuringProduce kills the broker with SIGKILL while a kgo producer
// (idempotent, acks=all) writes, tears the tail of a segment and deletes its
// index, restarts the broker and checks that every acknowledged record is there,
// in order, at the offset it was acknowledged with.
func TestKillDuringProduce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the broker binary")
	}
	bin := buildBroker(t)
	data := t.TempDir()
	p1 := startProc(t, bin, data, "", "")
	const topic = "durable"

	var mu sync.Mutex
	ack := map[string]acked{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p1.addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.RecordRetries(3),
		kgo.RecordDeliveryTimeout(5*time.Second), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			v := fmt.Sprintf("record-%08d", i)
			cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 10)), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					ack[string(r.Value)] = acked{r.Partition, r.Offset}
					mu.Unlock()
				}
			})
		}
	}()
	wait.For(t, 30*time.Second, "20000 acknowledged records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ack) >= 20000
	})
	p1.kill()
	cancel()
	wg.Wait()
	cl.Close() // fails what is still buffered
	mu.Lock()
	acks := ack
	mu.Unlock()
	t.Logf("%d records acknowledged before SIGKILL", len(acks))

	// A torn write at the tail of partition 0's active segment, and no index.
	dir := filepath.Join(data, topic+"-0")
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatalf("no segments in %s", dir)
	}
	sort.Strings(logs)
	active := logs[len(logs)-1]
	torn := make([]byte, 100)
	binary.BigEndian.PutUint64(torn, 1<<40)    // base offset
	binary.BigEndian.PutUint32(torn[8:], 5000) // batch length beyond the file
	torn[16] = 2                               // magic
	f, err := os.OpenFile(active, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn)
	f.Close()
	os.Remove(strings.TrimSuffix(active, ".log") + ".index")

	p2 := startProc(t, bin, data, "", "")
	adm := kadm.NewClient(newKgo(t, p2.addr))
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	recs := consumeAll(t, p2.addr, topic, total)
	at := map[acked]string{}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[string(r.Value)] {
			t.Fatalf("record %s stored twice", r.Value)
		}
		seen[string(r.Value)] = true
		at[acked{r.Partition, r.Offset}] = string(r.Value)
	}
	for v, a := range acks {
		if at[a] != v {
			t.Fatalf("acknowledged %s at %d/%d, found %q there after the restart", v, a.partition, a.offset, at[a])
		}
	}
	// Appends continue right after the recovered end of partition 0.
	end0, _ := ends.Lookup(topic, 0)
	pcl := newKgo(t, p2.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r, err := pcl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Value: []byte("after restart")}).First()
	if err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	if r.Offset != end0.Offset {
		t.Fatalf("produce after restart: offset %d, want %d", r.Offset, end0.Offset)
	}

	// SIGTERM: a clean stop.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p2.done:
		p2.done <- nil
		if err != nil {
			out, _ := os.ReadFile(p2.log)
			t.Fatalf("broker exit after SIGTERM: %v\n%s", err, out)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("broker did not stop within 15 s of SIGTERM")
	}
}
