package broker_test

import (
	"context"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDescribeLogDirs asks for partition sizes with kadm and with sarama's
// ClusterAdmin: every partition of a topic with data reports its size on disk.
func TestDescribeLogDirs(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "sized", 2, nil)
	cl := newKgo(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 200; i++ {
		recs = append(recs, &kgo.Record{Topic: "sized", Partition: 1, Value: testValue("sized", i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dirs, err := kadm.NewClient(cl).DescribeAllLogDirs(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var sizes [2]int64
	for _, broker := range dirs {
		if err := broker.Error(); err != nil {
			t.Fatal(err)
		}
		broker.EachPartition(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "sized" {
				sizes[p.Partition] = p.Size
			}
		})
	}
	if len(dirs) != 1 || sizes[0] != 0 || sizes[1] < 1000 {
		t.Fatalf("kadm: %d brokers, sizes %v", len(dirs), sizes)
	}

	admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, saramaConfig(sarama.V2_8_0_0))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	got, err := admin.DescribeLogDirs([]int32{0})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range got[0] {
		for _, tp := range d.Topics {
			for _, p := range tp.Partitions {
				if tp.Topic == "sized" && p.PartitionID == 1 {
					found = p.Size == sizes[1]
				}
			}
		}
	}
	if !found {
		t.Fatalf("sarama DescribeLogDirs: %+v", got)
	}
}
