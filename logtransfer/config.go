// Package logtransfer is the transfer: it consumes the log topics in a consumer
// group, indexes every record into Elasticsearch (or NDJSON files) under a
// deterministic id, and commits Kafka offsets only past what the output acknowledged.
package logtransfer

import (
	"fmt"
	"strings"
	"time"

	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/kafkasec"
	imetrics "github.com/logpipe/logpipe/internal/metrics"
)

// Config is the transfer's configuration, logtransfer.ini.
type Config struct {
	Kafka struct {
		kafkasec.Config `ini:"-"` // tls, ca_file, sasl_mechanism, username, password_file, ...

		Brokers          string        `ini:"brokers"`
		Group            string        `ini:"group"`
		Topics           string        `ini:"topics"`
		InitialOffset    string        `ini:"initial_offset"` // oldest | newest, for partitions with no commit
		SessionTimeout   time.Duration `ini:"session_timeout"`
		RebalanceTimeout time.Duration `ini:"rebalance_timeout"`
		DLQTopic         string        `ini:"dlq_topic"`       // {topic} is replaced by the record's topic
		CommitInterval   time.Duration `ini:"commit_interval"` // how often acknowledged offsets are committed
		// MaxDecompressedBatchBytes bounds what one compressed record batch may inflate
		// to (sarama.MaxDecompressedBatchSize, process-wide); a batch over it is skipped.
		MaxDecompressedBatchBytes int `ini:"max_decompressed_batch_bytes"`
		// DLQMaxMessageBytes is the largest dead-letter record produced; a larger copy is
		// truncated (and says so in its headers).
		DLQMaxMessageBytes int `ini:"dlq_max_message_bytes"`
	} `ini:"kafka"`
	Output struct {
		Type          string        `ini:"type"` // elasticsearch | file
		Dir           string        `ini:"dir"`
		BulkActions   int           `ini:"bulk_actions"`
		BulkBytes     int           `ini:"bulk_bytes"`
		FlushInterval time.Duration `ini:"flush_interval"`
		BackoffMax    time.Duration `ini:"backoff_max"`
	} `ini:"output"`
	ES struct {
		URLs     string        `ini:"urls"`
		Index    string        `ini:"index"`
		Username string        `ini:"username"`
		Password string        `ini:"password"`
		CAFile   string        `ini:"ca_file"`
		Insecure bool          `ini:"insecure"`
		Sniff    bool          `ini:"sniff"`
		Template bool          `ini:"template"`
		Timeout  time.Duration `ini:"timeout"`
	} `ini:"es"`
	Decode struct {
		JSONTopics string `ini:"json_topics"` // topics whose lines are JSON objects; * = all
		JSONTarget string `ini:"json_target"` // field for the decoded object; empty = top level
		// A record timestamp further ahead of the clock than MaxTimestampFuture, or
		// behind it by more than MaxTimestampAge, is replaced by the time of indexing
		// (the original kept in kafka.timestamp); 0 = no bound.
		MaxTimestampFuture time.Duration `ini:"max_timestamp_future"`
		MaxTimestampAge    time.Duration `ini:"max_timestamp_age"`
	} `ini:"decode"`
	Metrics imetrics.Config `ini:"metrics"`
	Logging struct {
		Level  string `ini:"level"`
		Format string `ini:"format"`
	} `ini:"logging"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	var c Config
	c.Kafka.Brokers = "127.0.0.1:9092"
	c.Kafka.Group = "logtransfer"
	c.Kafka.Topics = "web_log,app_log"
	c.Kafka.InitialOffset = "oldest"
	c.Kafka.SessionTimeout = 10 * time.Second
	c.Kafka.RebalanceTimeout = 60 * time.Second
	c.Kafka.DLQTopic = "{topic}.dlq"
	c.Kafka.CommitInterval = time.Second
	c.Kafka.MaxDecompressedBatchBytes = 64 << 20
	c.Kafka.DLQMaxMessageBytes = 1000000
	c.Output.Type = "elasticsearch"
	c.Output.Dir = "./data/out"
	c.Output.BulkActions = 5000
	c.Output.BulkBytes = 5 << 20
	c.Output.FlushInterval = time.Second
	c.Output.BackoffMax = 60 * time.Second
	c.ES.URLs = "http://127.0.0.1:9200"
	c.ES.Index = "{topic}-{date}"
	c.ES.Template = true
	c.ES.Timeout = 60 * time.Second
	c.Decode.JSONTarget = "json"
	c.Decode.MaxTimestampFuture = 24 * time.Hour
	c.Decode.MaxTimestampAge = 30 * 24 * time.Hour
	c.Metrics = imetrics.DefaultConfig("127.0.0.1:9310")
	c.Logging.Level = "info"
	c.Logging.Format = "text"
	return c
}

// LoadConfig reads path over the defaults.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if err := config.Load(path, &c); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks values that the ini types do not.
func (c Config) Validate() error {
	if len(config.SplitList(c.Kafka.Brokers)) == 0 {
		return fmt.Errorf("[kafka] brokers is empty")
	}
	if c.Kafka.Group == "" {
		return fmt.Errorf("[kafka] group is empty")
	}
	if len(config.SplitList(c.Kafka.Topics)) == 0 {
		return fmt.Errorf("[kafka] topics is empty")
	}
	if c.Kafka.InitialOffset != "oldest" && c.Kafka.InitialOffset != "newest" {
		return fmt.Errorf("[kafka] initial_offset %q: want oldest or newest", c.Kafka.InitialOffset)
	}
	switch c.Output.Type {
	case "elasticsearch":
		if len(config.SplitList(c.ES.URLs)) == 0 {
			return fmt.Errorf("[es] urls is empty")
		}
	case "file":
		if c.Output.Dir == "" {
			return fmt.Errorf("[output] dir is empty")
		}
	default:
		return fmt.Errorf("[output] type %q: want elasticsearch or file", c.Output.Type)
	}
	if t := c.Decode.JSONTarget; t != "" && (strings.ContainsAny(t, ".\"") || t == "@timestamp" || t == "message" || t == "host" || t == "log" || t == "kafka") {
		return fmt.Errorf("[decode] json_target %q: want a plain field name that is not one of logpipe's own (@timestamp, message, host, log, kafka)", t)
	}
	if c.Kafka.CommitInterval <= 0 {
		return fmt.Errorf("[kafka] commit_interval must be positive")
	}
	if c.Kafka.MaxDecompressedBatchBytes < 1<<20 || c.Kafka.MaxDecompressedBatchBytes > 1<<30 {
		return fmt.Errorf("[kafka] max_decompressed_batch_bytes %d: want 1 MiB to 1 GiB", c.Kafka.MaxDecompressedBatchBytes)
	}
	if c.Kafka.DLQMaxMessageBytes < 4096 {
		return fmt.Errorf("[kafka] dlq_max_message_bytes %d: want at least 4096", c.Kafka.DLQMaxMessageBytes)
	}
	if c.Decode.MaxTimestampFuture < 0 || c.Decode.MaxTimestampAge < 0 {
		return fmt.Errorf("[decode] max_timestamp_future and max_timestamp_age must not be negative")
	}
	if c.Output.BulkActions < 1 || c.Output.BulkBytes < 1 || c.Output.FlushInterval <= 0 || c.Output.BackoffMax <= 0 {
		return fmt.Errorf("[output] bulk_actions, bulk_bytes, flush_interval and backoff_max must be positive")
	}
	return nil
}
