package partition

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Known values of Kafka's Utils.murmur2, from the Java client's own tests
// (UtilsTest.testMurmur2), where the inputs are the UTF-8 bytes of the strings.
func TestMurmur2KnownValues(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range cases {
		if got := int32(Murmur2([]byte(in))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestMatchesKgo checks ForKey against franz-go's default (Kafka-compatible) partitioner
// on many random keys and partition counts.
func TestMatchesKgo(t *testing.T) {
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		key := make([]byte, rng.IntN(64))
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		if i%3 == 0 {
			key = []byte(fmt.Sprintf("web-%d\x00/var/log/app/%d.log", i, i*7))
		}
		n := 1 + rng.IntN(100)
		want := kp.Partition(&kgo.Record{Key: key}, n)
		if got := ForKey(key, int32(n)); int(got) != want {
			t.Fatalf("key %q, %d partitions: got %d, kgo says %d", key, n, got, want)
		}
	}
}

func TestSaramaPartitioner(t *testing.T) {
	p := NewPartitioner("t")
	if !p.RequiresConsistency() {
		t.Fatal("keyed partitioning must require consistency")
	}
	got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder("foobar")}, 7)
	if err != nil || got != ForKey([]byte("foobar"), 7) {
		t.Fatalf("got %d, %v", got, err)
	}
	seen := map[int32]bool{}
	for i := 0; i < 6; i++ {
		part, err := p.Partition(&sarama.ProducerMessage{}, 3)
		if err != nil {
			t.Fatal(err)
		}
		seen[part] = true
	}
	if len(seen) != 3 {
		t.Fatalf("records without a key should spread over all partitions, got %v", seen)
	}
}
