// Package partition chooses Kafka partitions exactly as Kafka's Java client does, so
// that logpipe's producers and any other client put the same key in the same partition.
package partition

import (
	"sync/atomic"

	"github.com/IBM/sarama"
)

// Murmur2 is the 32-bit murmur2 hash used by Kafka's Java client
// (org.apache.kafka.common.utils.Utils.murmur2), with its seed 0x9747b28c.
func Murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	i := 0
	for ; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// ForKey returns the partition Kafka's default partitioner picks for a non-null key:
// toPositive(murmur2(key)) % partitions.
func ForKey(key []byte, partitions int32) int32 {
	return int32((Murmur2(key) & 0x7fffffff) % uint32(partitions))
}

// Partitioner is a sarama.Partitioner that hashes keys with ForKey and spreads
// records without a key round-robin.
type Partitioner struct {
	next atomic.Uint32
}

// NewPartitioner returns a Partitioner; its signature fits sarama.PartitionerConstructor.
func NewPartitioner(topic string) sarama.Partitioner { return &Partitioner{} }

// Partition implements sarama.Partitioner.
func (p *Partitioner) Partition(msg *sarama.ProducerMessage, partitions int32) (int32, error) {
	if msg.Key == nil {
		return int32(p.next.Add(1)-1) % partitions, nil
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return -1, err
	}
	if key == nil {
		return int32(p.next.Add(1)-1) % partitions, nil
	}
	return ForKey(key, partitions), nil
}

// RequiresConsistency implements sarama.Partitioner: a key must always map to the same
// partition, so sarama must not re-route records when a partition is unavailable.
func (p *Partitioner) RequiresConsistency() bool { return true }
