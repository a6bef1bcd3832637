package brokertest

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestStart(t *testing.T) {
	b := Start(t, 4)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	part, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: "auto", Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("v")})
	if err != nil || off != 0 {
		t.Fatalf("produce: partition %d offset %d err %v", part, off, err)
	}
	c, err := sarama.NewClient([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions("auto")
	if err != nil || len(parts) != 4 {
		t.Fatalf("auto-created topic has %d partitions (%v), want 4", len(parts), err)
	}
}
