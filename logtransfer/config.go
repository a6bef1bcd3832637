// Package logtransfer is the transfer: it consumes the log topics in a consumer
// group, indexes every record into Elasticsearch (or NDJSON files) under a
// deterministic id, and commits Kafka offsets only past what the output acknowledged.
package logtransfer

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/kafkasec"
	imetrics "github.com/logpipe/logpipe/internal/metrics"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/logtransfer/output"
	"github.com/logpipe/logpipe/logtransfer/parse"
)

// Config is the transfer's configuration, logtransfer.ini.
type Config struct {
	Kafka struct {
		kafkasec.Config `ini:"-"` // tls, ca_file, sasl_mechanism, username, password_file, ...

		Brokers string `ini:"brokers"`
		Group   string `ini:"group"`
		Topics  string `ini:"topics"` // names and /regular expressions/
		// MetadataRefresh is how often the topics are listed to find new ones that a
		// pattern matches (and deleted ones).
		MetadataRefresh  time.Duration `ini:"metadata_refresh"`
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
		MaxInflight   int           `ini:"max_inflight"` // bulk requests of one partition in flight at once
		BackoffMax    time.Duration `ini:"backoff_max"`
	} `ini:"output"`
	ES struct {
		URLs  string `ini:"urls"`
		Index string `ini:"index"`
		// Mode is index (daily indices named by Index) or data_stream (create
		// actions into data streams named by DataStream).
		Mode         string `ini:"mode"`
		DataStream   string `ini:"data_stream"`
		Username     string `ini:"username"`
		Password     string `ini:"password"`
		PasswordFile string `ini:"password_file"` // read at start, instead of password
		APIKey       string `ini:"api_key"`       // encoded (base64 of id:key) or id:key
		APIKeyFile   string `ini:"api_key_file"`  // read at start, instead of api_key
		CAFile       string `ini:"ca_file"`
		CertFile     string `ini:"cert_file"` // client certificate
		KeyFile      string `ini:"key_file"`
		Insecure     bool   `ini:"insecure"`
		Sniff        bool   `ini:"sniff"`
		Template     bool   `ini:"template"`
		// RetentionDays > 0 installs a lifecycle policy (ILM / ISM) deleting data after
		// that many days; with RetentionDelete the transfer deletes its own expired
		// daily indices instead (clusters without a policy engine).
		RetentionDays   int           `ini:"retention_days"`
		RetentionDelete bool          `ini:"retention_delete"`
		Timeout         time.Duration `ini:"timeout"`
	} `ini:"es"`
	Decode struct {
		JSONTopics string `ini:"json_topics"` // topics whose lines are JSON objects; * = all
		JSONTarget string `ini:"json_target"` // field for the decoded object; empty = top level
		// TimestampField of a JSON line sets @timestamp (the agent's read time goes to
		// event.created); TimestampFormat: empty (RFC 3339), unix, unix_ms or a Go layout.
		TimestampField  string `ini:"timestamp_field"`
		TimestampFormat string `ini:"timestamp_format"`
		// A record timestamp further ahead of the clock than MaxTimestampFuture, or
		// behind it by more than MaxTimestampAge, is replaced by the time of indexing
		// (the original kept in kafka.timestamp); 0 = no bound.
		MaxTimestampFuture time.Duration `ini:"max_timestamp_future"`
		MaxTimestampAge    time.Duration `ini:"max_timestamp_age"`
	} `ini:"decode"`
	// Datasets are the custom datasets, one [dataset.NAME] section each (see
	// DatasetConfig); NAME is what collection entries give as "dataset".
	Datasets map[string]DatasetConfig `ini:"dataset.*"`
	Kibana   struct {
		// URL: when set, the transfer creates the index pattern / data view at start
		// (logtransfer setup kibana does it on demand).
		URL          string `ini:"url"`
		Title        string `ini:"title"` // index pattern of the data view; empty = where the documents go
		Username     string `ini:"username"`
		Password     string `ini:"password"`
		PasswordFile string `ini:"password_file"`
		APIKey       string `ini:"api_key"`
		APIKeyFile   string `ini:"api_key_file"`
		CAFile       string `ini:"ca_file"`
		Insecure     bool   `ini:"insecure"`
	} `ini:"kibana"`
	Metrics imetrics.Config `ini:"metrics"`
	Logging struct {
		Level  string `ini:"level"`
		Format string `ini:"format"`
	} `ini:"logging"`
}

// DatasetConfig is a custom dataset: how its lines are parsed into fields and where
// their time is.
type DatasetConfig struct {
	Parser  string `ini:"parser"`  // regex | dissect | logfmt | json
	Pattern string `ini:"pattern"` // regex: RE2 with named groups naming dotted fields; dissect: %{field} pattern
	// Target puts the fields of logfmt and json lines under this field ("" top level).
	Target     string `ini:"target"`
	TimeField  string `ini:"time_field"`  // the field whose time becomes @timestamp
	TimeLayout string `ini:"time_layout"` // rfc3339 (default), unix, unix_ms, httpdate, or a Go layout
	// Timezone is what times without a zone mean in this dataset (IANA name or
	// ±hh:mm); empty: the record's event.timezone, from the agent.
	Timezone string `ini:"timezone"`
	// Types converts and maps fields: "field:type, ..." with long, double, boolean, ip
	// or keyword. ECS fields known to logpipe get their type without it.
	Types string `ini:"types"`
}

// spec is the parse package's form of a custom dataset.
func (d DatasetConfig) spec(name string) (parse.Spec, error) {
	s := parse.Spec{Parser: d.Parser, Pattern: d.Pattern, Target: d.Target, TimeField: d.TimeField, TimeLayout: d.TimeLayout, Timezone: d.Timezone}
	for _, item := range config.SplitList(d.Types) {
		field, typ, ok := strings.Cut(item, ":")
		if !ok || strings.TrimSpace(field) == "" {
			return s, fmt.Errorf("[dataset.%s] types: %q: want field:type", name, item)
		}
		if s.Types == nil {
			s.Types = map[string]string{}
		}
		s.Types[strings.TrimSpace(field)] = strings.TrimSpace(typ)
	}
	return s, nil
}

// datasets compiles the built-in and custom datasets.
func (c Config) datasets() (*parse.Set, error) {
	specs := map[string]parse.Spec{}
	for name, d := range c.Datasets {
		if err := record.ValidDataset(name); err != nil {
			return nil, fmt.Errorf("[dataset.%s]: %v", name, err)
		}
		s, err := d.spec(name)
		if err != nil {
			return nil, err
		}
		specs[name] = s
	}
	set, err := parse.NewSet(specs)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	return set, nil
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	var c Config
	c.Kafka.Brokers = "127.0.0.1:9092"
	c.Kafka.Group = "logtransfer"
	c.Kafka.Topics = "web_log,app_log"
	c.Kafka.InitialOffset = "oldest"
	c.Kafka.MetadataRefresh = 10 * time.Second
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
	c.Output.MaxInflight = 2
	c.Output.BackoffMax = 60 * time.Second
	c.ES.URLs = "http://127.0.0.1:9200"
	c.ES.Index = "{topic}-{date}"
	c.ES.Mode = "index"
	c.ES.DataStream = "logs-{dataset}-default"
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
	if _, err := ParseTopics(c.Kafka.Topics, c.Kafka.DLQTopic); err != nil {
		return err
	}
	if c.Kafka.MetadataRefresh < time.Second {
		return fmt.Errorf("[kafka] metadata_refresh %v: want at least 1s", c.Kafka.MetadataRefresh)
	}
	if c.Kafka.InitialOffset != "oldest" && c.Kafka.InitialOffset != "newest" {
		return fmt.Errorf("[kafka] initial_offset %q: want oldest or newest", c.Kafka.InitialOffset)
	}
	switch c.Output.Type {
	case "elasticsearch":
		if len(config.SplitList(c.ES.URLs)) == 0 {
			return fmt.Errorf("[es] urls is empty")
		}
		if err := c.validateES(); err != nil {
			return err
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
	if _, err := c.datasets(); err != nil {
		return err
	}
	if c.Output.BulkActions < 1 || c.Output.BulkBytes < 1 || c.Output.FlushInterval <= 0 || c.Output.BackoffMax <= 0 || c.Output.MaxInflight < 1 {
		return fmt.Errorf("[output] bulk_actions, bulk_bytes, flush_interval, max_inflight and backoff_max must be positive")
	}
	return nil
}

func (c Config) validateES() error {
	switch c.ES.Mode {
	case "index":
		if !strings.Contains(c.ES.Index, "{topic}") && !strings.Contains(c.ES.Index, "{dataset}") {
			return fmt.Errorf("[es] index %q: needs {topic} or {dataset}", c.ES.Index)
		}
	case "data_stream":
		ds := c.ES.DataStream
		if !strings.Contains(ds, "{topic}") && !strings.Contains(ds, "{dataset}") || strings.Contains(ds, "{date}") || strings.ToLower(ds) != ds || strings.HasPrefix(ds, ".") || strings.HasPrefix(ds, "_") || strings.HasPrefix(ds, "-") {
			return fmt.Errorf("[es] data_stream %q: want a lowercase name with {dataset} or {topic} and no {date}, such as logs-{dataset}-default", ds)
		}
		if c.ES.RetentionDelete {
			return fmt.Errorf("[es] retention_delete deletes daily indices: it needs mode = index (data streams need a lifecycle policy)")
		}
	default:
		return fmt.Errorf("[es] mode %q: want index or data_stream", c.ES.Mode)
	}
	if c.ES.RetentionDays < 0 {
		return fmt.Errorf("[es] retention_days must not be negative")
	}
	if c.ES.RetentionDelete && (c.ES.RetentionDays == 0 || !strings.Contains(c.ES.Index, "{date}")) {
		return fmt.Errorf("[es] retention_delete needs retention_days > 0 and {date} in index")
	}
	n := 0
	for _, s := range []string{c.ES.Password, c.ES.PasswordFile, c.ES.APIKey, c.ES.APIKeyFile} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("[es] set one of password, password_file, api_key, api_key_file")
	}
	if (c.ES.Password != "" || c.ES.PasswordFile != "") && c.ES.Username == "" {
		return fmt.Errorf("[es] password needs username")
	}
	if (c.ES.APIKey != "" || c.ES.APIKeyFile != "") && c.ES.Username != "" {
		return fmt.Errorf("[es] api_key and username exclude each other")
	}
	if (c.ES.CertFile == "") != (c.ES.KeyFile == "") {
		return fmt.Errorf("[es] cert_file and key_file go together")
	}
	return nil
}

// readSecret reads the first line of a secret file; its content is never part of
// an error.
func readSecret(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("[es] %s: %w", key, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("[es] %s %s: empty", key, path)
	}
	return line, nil
}

// esConfig is the sink's configuration, with secret files read.
func (c Config) esConfig() (output.ESConfig, error) {
	e := output.ESConfig{
		URLs: config.SplitList(c.ES.URLs), Username: c.ES.Username, Password: c.ES.Password, APIKey: c.ES.APIKey,
		CAFile: c.ES.CAFile, CertFile: c.ES.CertFile, KeyFile: c.ES.KeyFile, Insecure: c.ES.Insecure, Sniff: c.ES.Sniff,
		IndexPattern: c.indexPattern(), DataStream: c.ES.Mode == "data_stream", Template: c.ES.Template,
		RetentionDays: c.ES.RetentionDays, RetentionDelete: c.ES.RetentionDelete, Timeout: c.ES.Timeout,
	}
	var err error
	if c.ES.PasswordFile != "" {
		if e.Password, err = readSecret("password_file", c.ES.PasswordFile); err != nil {
			return e, err
		}
	}
	if c.ES.APIKeyFile != "" {
		if e.APIKey, err = readSecret("api_key_file", c.ES.APIKeyFile); err != nil {
			return e, err
		}
	}
	return e, nil
}

// indexPattern is where documents go: the index pattern, or the data stream name.
func (c Config) indexPattern() string {
	if c.ES.Mode == "data_stream" {
		return c.ES.DataStream
	}
	return c.ES.Index
}

// esAuth describes the Elasticsearch credentials without a secret.
func (c Config) esAuth() string {
	var parts []string
	switch {
	case c.ES.APIKey != "" || c.ES.APIKeyFile != "":
		parts = append(parts, "api_key")
	case c.ES.Username != "":
		parts = append(parts, "basic user="+c.ES.Username)
	}
	if c.ES.CertFile != "" {
		parts = append(parts, "client certificate")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
