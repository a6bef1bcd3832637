package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kcat runs Debian's kcat (librdkafka 2.0.2) against the broker.
func kcat(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not installed (apt-get install -y kcat); .ci/run installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestKcat(t *testing.T) {
	b := startBroker(t, nil)
	dir := t.TempDir()
	var file bytes.Buffer
	for i := range 3000 {
		fmt.Fprintf(&file, "%s line %d \t \"quoted\" é ü 日本 %s\n", time.Unix(int64(i), 0).UTC().Format(time.RFC3339), i, strings.Repeat("x", i%97))
	}
	path := filepath.Join(dir, "access.log")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, b.Addr(), topic, 1, nil)
			args := []string{"-b", b.Addr(), "-t", topic, "-P", "-l", "-X", "linger.ms=20"}
			if codec != "none" {
				args = append(args, "-z", codec)
			}
			kcat(t, append(args, path)...)
			out := kcat(t, "-b", b.Addr(), "-t", topic, "-C", "-e", "-q", "-o", "beginning")
			if !bytes.Equal(out, file.Bytes()) {
				t.Fatalf("consumed %d bytes, produced %d; differ", len(out), file.Len())
			}
			// The batches kcat sent are stored compressed as they came.
			recs := consumeAll(t, b.Addr(), topic, 3000)
			want := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3}[codec]
			if got := recs[0].Attrs.CompressionType(); got != want {
				t.Fatalf("stored compression %d, want %d", got, want)
			}
		})
	}

	t.Run("metadata", func(t *testing.T) {
		out := string(kcat(t, "-b", b.Addr(), "-L"))
		for _, want := range []string{"1 brokers:", "broker 0 at " + b.Addr(), `topic "kcat-none" with 1 partitions:`, "partition 0, leader 0, replicas: 0, isrs: 0"} {
			if !strings.Contains(out, want) {
				t.Fatalf("kcat -L lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("offsets for times", func(t *testing.T) {
		topic := "kcat-times"
		createTopic(t, b.Addr(), topic, 1, nil)
		base := time.UnixMilli(1_700_000_000_000)
		cl := newKgo(t, b.Addr(), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(25))
		ctx := context.Background()
		for i := range 500 {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for ts, want := range map[int64]int{base.UnixMilli(): 0, base.Add(250 * time.Second).UnixMilli(): 250, base.Add(250*time.Second + time.Millisecond).UnixMilli(): 251, base.Add(499 * time.Second).UnixMilli(): 499} {
			out := string(kcat(t, "-b", b.Addr(), "-Q", "-t", fmt.Sprintf("%s:0:%d", topic, ts)))
			m := regexp.MustCompile(`offset (-?\d+)`).FindStringSubmatch(out)
			if m == nil || m[1] != fmt.Sprint(want) {
				t.Fatalf("kcat -Q at %d: %q, want offset %d", ts, out, want)
			}
		}
	})
}
