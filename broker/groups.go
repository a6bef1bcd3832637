package broker

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logpipe/logpipe/broker/group"
	"github.com/logpipe/logpipe/broker/storage"
)

// GroupConfig is the [group] section: the consumer group coordinator.
type GroupConfig struct {
	// OffsetsRetentionMinutes is how long the committed offsets of a group without members
	// are kept (Kafka's offsets.retention.minutes).
	OffsetsRetentionMinutes int64 `ini:"offsets_retention_minutes"`
	// InitialRebalanceDelay is how long a new group waits for more members before its
	// first rebalance (group.initial.rebalance.delay.ms); 0 = no delay.
	InitialRebalanceDelay time.Duration `ini:"initial_rebalance_delay"`
	// MinSessionTimeout and MaxSessionTimeout bound the session timeouts members may use.
	MinSessionTimeout time.Duration `ini:"min_session_timeout"`
	MaxSessionTimeout time.Duration `ini:"max_session_timeout"`
	// OffsetsTopicPartitions is the partition count of __consumer_offsets when created.
	OffsetsTopicPartitions int32 `ini:"offsets_topic_partitions"`
	// OffsetsSegmentBytes is the segment size of __consumer_offsets (and how many bytes of
	// commits trigger a rewrite of the live offsets; see broker/group).
	OffsetsSegmentBytes int64 `ini:"offsets_segment_bytes"`
}

// DefaultGroupConfig is the [group] section's defaults (Kafka's).
func DefaultGroupConfig() GroupConfig {
	return GroupConfig{
		OffsetsRetentionMinutes: int64(group.DefaultOffsetsRetention / time.Minute),
		InitialRebalanceDelay:   group.DefaultInitialRebalanceDelay,
		MinSessionTimeout:       group.DefaultMinSessionTimeout,
		MaxSessionTimeout:       group.DefaultMaxSessionTimeout,
		OffsetsTopicPartitions:  group.DefaultOffsetsPartitions,
		OffsetsSegmentBytes:     group.DefaultOffsetsSegmentBytes,
	}
}

// newGroups starts the consumer-group coordinator on store. It returns the
// concrete type, so that a failure is a plain nil (an interface holding a nil
// pointer would not compare equal to nil, and cleanup would call Close on it).
func newGroups(store *storage.Store, cfg GroupConfig, logger *slog.Logger, reg prometheus.Registerer) (*group.Coordinator, error) {
	delay := cfg.InitialRebalanceDelay
	if delay <= 0 {
		delay = -1 // group.Config: negative = none, 0 = default
	}
	return group.New(group.Config{
		Store:                 store,
		Logger:                logger,
		OffsetsPartitions:     cfg.OffsetsTopicPartitions,
		OffsetsSegmentBytes:   cfg.OffsetsSegmentBytes,
		InitialRebalanceDelay: delay,
		MinSessionTimeout:     cfg.MinSessionTimeout,
		MaxSessionTimeout:     cfg.MaxSessionTimeout,
		OffsetsRetention:      time.Duration(cfg.OffsetsRetentionMinutes) * time.Minute,
		Registerer:            reg,
	})
}
