package storage

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Lower bounds of segment.bytes and segment.ms. Kafka accepts segments of 14 bytes
// and a roll every millisecond, so one client could make a segment, with its three
// files, for every batch it sends. At 1 MiB a client has to store a mebibyte for each
// new segment, so segments grow with the data kept (which retention bounds) rather
// than with the number of requests; at one minute, rolling by age makes at most 10,080
// segments per partition in a week of retention.
const (
	MinSegmentBytes = 1 << 20
	MinSegmentMs    = 60 * 1000
)

// IsInternalTopic reports whether a topic is the broker's own (its name starts with
// "__", like __consumer_offsets): clients may not produce to it, delete it or add
// partitions to it.
func IsInternalTopic(name string) bool { return strings.HasPrefix(name, "__") }

// TopicConfig is the log configuration of one topic. The broker's defaults come from
// broker.ini; CreateTopics and AlterConfigs can override them per topic.
type TopicConfig struct {
	SegmentBytes       int64  `json:"segment.bytes"`        // roll the active segment at this size
	SegmentMs          int64  `json:"segment.ms"`           // roll the active segment after this age
	RetentionMs        int64  `json:"retention.ms"`         // delete whole segments older than this; -1 = keep
	RetentionBytes     int64  `json:"retention.bytes"`      // keep at most this many bytes per partition; -1 = unlimited
	MaxMessageBytes    int32  `json:"max.message.bytes"`    // largest record batch accepted
	IndexIntervalBytes int32  `json:"index.interval.bytes"` // bytes between offset-index entries
	CleanupPolicy      string `json:"cleanup.policy"`       // "delete" or "compact"
}

// DefaultTopicConfig returns Kafka's defaults.
func DefaultTopicConfig() TopicConfig {
	return TopicConfig{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * 3600 * 1000,
		RetentionMs:        7 * 24 * 3600 * 1000,
		RetentionBytes:     -1,
		MaxMessageBytes:    1048588,
		IndexIntervalBytes: 4096,
		CleanupPolicy:      "delete",
	}
}

// ConfigEntry is one config value as DescribeConfigs reports it.
type ConfigEntry struct {
	Name    string
	Value   string
	Default bool // the value is the broker default, not set for this topic
}

// Set sets one config by its Kafka name. Unknown names and bad values give ErrInvalidConfig.
func (c *TopicConfig) Set(name, value string) error {
	num := func(min int64) (int64, error) {
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil || v < min {
			return 0, fmt.Errorf("%w: %s = %q: want an integer >= %d", ErrInvalidConfig, name, value, min)
		}
		return v, nil
	}
	var err error
	var v int64
	switch name {
	case "segment.bytes":
		if v, err = num(MinSegmentBytes); err == nil {
			if v > math.MaxInt32 {
				return fmt.Errorf("%w: %s = %q: at most %d", ErrInvalidConfig, name, value, math.MaxInt32)
			}
			c.SegmentBytes = v
		}
	case "segment.ms":
		if v, err = num(MinSegmentMs); err == nil {
			c.SegmentMs = v
		}
	case "retention.ms":
		if v, err = num(-1); err == nil {
			c.RetentionMs = v
		}
	case "retention.bytes":
		if v, err = num(-1); err == nil {
			c.RetentionBytes = v
		}
	case "max.message.bytes":
		if v, err = num(0); err == nil {
			if v > 1<<30 {
				return fmt.Errorf("%w: %s = %q: at most %d", ErrInvalidConfig, name, value, 1<<30)
			}
			c.MaxMessageBytes = int32(v)
		}
	case "index.interval.bytes":
		if v, err = num(0); err == nil {
			if v > 1<<30 {
				return fmt.Errorf("%w: %s = %q: at most %d", ErrInvalidConfig, name, value, 1<<30)
			}
			c.IndexIntervalBytes = int32(v)
		}
	case "cleanup.policy":
		if value != "delete" && value != "compact" {
			return fmt.Errorf("%w: cleanup.policy = %q: want delete or compact", ErrInvalidConfig, value)
		}
		c.CleanupPolicy = value
	default:
		return fmt.Errorf("%w: unknown or unsupported config %q", ErrInvalidConfig, name)
	}
	return err
}

// Entries lists every config the broker honours, sorted by name, marking the values
// equal to def as defaults.
func (c TopicConfig) Entries() []ConfigEntry {
	return c.entriesAgainst(DefaultTopicConfig())
}

func (c TopicConfig) entriesAgainst(def TopicConfig) []ConfigEntry {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []ConfigEntry{
		{"cleanup.policy", c.CleanupPolicy, c.CleanupPolicy == def.CleanupPolicy},
		{"index.interval.bytes", i(int64(c.IndexIntervalBytes)), c.IndexIntervalBytes == def.IndexIntervalBytes},
		{"max.message.bytes", i(int64(c.MaxMessageBytes)), c.MaxMessageBytes == def.MaxMessageBytes},
		{"retention.bytes", i(c.RetentionBytes), c.RetentionBytes == def.RetentionBytes},
		{"retention.ms", i(c.RetentionMs), c.RetentionMs == def.RetentionMs},
		{"segment.bytes", i(c.SegmentBytes), c.SegmentBytes == def.SegmentBytes},
		{"segment.ms", i(c.SegmentMs), c.SegmentMs == def.SegmentMs},
	}
}
