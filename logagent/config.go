// Package logagent is the agent that runs on every host: it follows the host's
// collection config in etcd, tails the files it names, and produces every line to
// Kafka, remembering durably how far each file has been acknowledged.
package logagent

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/kafkasec"
	imetrics "github.com/logpipe/logpipe/internal/metrics"
	"github.com/logpipe/logpipe/internal/tlsconfig"
)

// Config is the agent's configuration, logagent.ini.
type Config struct {
	Agent struct {
		Host            string        `ini:"host"`              // default: the OS hostname
		DataDir         string        `ini:"data_dir"`          // registry and cached collection config
		ScanInterval    time.Duration `ini:"scan_interval"`     // fallback: how often globs are expanded again without events
		PollInterval    time.Duration `ini:"poll_interval"`     // how often a file at its end is checked
		MaxIdleInterval time.Duration `ini:"max_idle_interval"` // polls of an idle file back off up to this
		// Where file system events report every change (a watched directory on a
		// local file system), polls of idle files and rescans of globs are only a
		// safety net and back off up to this.
		MaxIdleIntervalEvents time.Duration `ini:"max_idle_interval_events"`
		MaxLineBytes          int           `ini:"max_line_bytes"`   // longer lines are split
		RegistryFlush         time.Duration `ini:"registry_flush"`   // acknowledged offsets are saved at most this often (group commit)
		CloseInactive         time.Duration `ini:"close_inactive"`   // an idle file's descriptor is closed after this; 0 = never
		CleanRemoved          bool          `ini:"clean_removed"`    // forget registry entries of files gone and fully acknowledged
		CleanInactive         time.Duration `ini:"clean_inactive"`   // forget entries no harvester follows, unchanged this long; 0 = never
		ShutdownTimeout       time.Duration `ini:"shutdown_timeout"` // how long SIGTERM waits for acknowledgements
	} `ini:"agent"`
	Etcd struct {
		Endpoints   string        `ini:"endpoints"`
		CollectKey  string        `ini:"collect_key"` // {host} is replaced by the host name
		DialTimeout time.Duration `ini:"dial_timeout"`
		// TLS (a CA, and a client certificate when etcd asks for one) and etcd's
		// user name / password authentication (RBAC can then limit the agent's
		// user to reading its own prefix).
		CAFile       string `ini:"ca_file"`
		CertFile     string `ini:"cert_file"`
		KeyFile      string `ini:"key_file"`
		Username     string `ini:"username"`
		Password     string `ini:"password"`
		PasswordFile string `ini:"password_file"` // read at start, instead of password
	} `ini:"etcd"`
	Kafka struct {
		kafkasec.Config `ini:"-"` // tls, ca_file, sasl_mechanism, username, password_file, ...

		Brokers          string        `ini:"brokers"`
		RequiredAcks     string        `ini:"required_acks"` // 0 | 1 | all
		Compression      string        `ini:"compression"`   // none | gzip | snappy | lz4 | zstd
		MaxInFlightBytes int64         `ini:"max_inflight_bytes"`
		FlushBytes       int           `ini:"flush_bytes"`
		FlushMessages    int           `ini:"flush_messages"`
		FlushFrequency   time.Duration `ini:"flush_frequency"`
		MaxMessageBytes  int           `ini:"max_message_bytes"`
		// MaxInFlightRequests is how many batches of a partition may be in flight.
		MaxInFlightRequests int `ini:"max_inflight_requests"`
	} `ini:"kafka"`
	Metrics imetrics.Config `ini:"metrics"`
	Log     struct {
		Level  string `ini:"level"`
		Format string `ini:"format"`
	} `ini:"logging"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	var c Config
	c.Agent.DataDir = "./data/logagent"
	c.Agent.ScanInterval = time.Second
	c.Agent.PollInterval = 50 * time.Millisecond
	c.Agent.MaxIdleInterval = 2 * time.Second
	c.Agent.MaxIdleIntervalEvents = time.Minute
	c.Agent.MaxLineBytes = 512 << 10
	c.Agent.RegistryFlush = 100 * time.Millisecond
	c.Agent.CloseInactive = 5 * time.Minute
	c.Agent.CleanRemoved = true
	c.Agent.ShutdownTimeout = 10 * time.Second
	c.Etcd.Endpoints = "127.0.0.1:2379"
	c.Etcd.CollectKey = "/logagent/{host}/collect_config"
	c.Etcd.DialTimeout = 5 * time.Second
	c.Kafka.Brokers = "127.0.0.1:9092"
	c.Kafka.RequiredAcks = "all"
	c.Kafka.Compression = "snappy"
	c.Kafka.MaxInFlightBytes = 8 << 20
	c.Kafka.FlushBytes = 1 << 20
	c.Kafka.FlushMessages = 0
	c.Kafka.FlushFrequency = 0
	c.Kafka.MaxMessageBytes = 1000000
	c.Kafka.MaxInFlightRequests = 2
	c.Metrics = imetrics.DefaultConfig("127.0.0.1:9309")
	c.Log.Level = "info"
	c.Log.Format = "text"
	return c
}

// LoadConfig reads path over the defaults.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if err := config.Load(path, &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks values that the ini types do not.
func (c *Config) Validate() error {
	if c.Agent.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("[agent] host is empty and the OS hostname is unknown: %w", err)
		}
		c.Agent.Host = h
	}
	if len(config.SplitList(c.Etcd.Endpoints)) == 0 {
		return fmt.Errorf("[etcd] endpoints is empty")
	}
	if len(config.SplitList(c.Kafka.Brokers)) == 0 {
		return fmt.Errorf("[kafka] brokers is empty")
	}
	if c.Agent.MaxLineBytes < 1 || c.Agent.MaxLineBytes >= c.Kafka.MaxMessageBytes {
		return fmt.Errorf("[agent] max_line_bytes %d must be between 1 and [kafka] max_message_bytes %d", c.Agent.MaxLineBytes, c.Kafka.MaxMessageBytes)
	}
	if c.Agent.ScanInterval <= 0 || c.Agent.PollInterval <= 0 || c.Agent.RegistryFlush <= 0 {
		return fmt.Errorf("[agent] scan_interval, poll_interval and registry_flush must be positive")
	}
	if c.Kafka.FlushFrequency < 0 {
		return fmt.Errorf("[kafka] flush_frequency must not be negative")
	}
	if c.Agent.CloseInactive < 0 || c.Agent.CleanInactive < 0 {
		return fmt.Errorf("[agent] close_inactive and clean_inactive must not be negative")
	}
	if c.Kafka.MaxInFlightRequests < 1 || c.Kafka.MaxInFlightRequests > 5 {
		return fmt.Errorf("[kafka] max_inflight_requests %d must be between 1 and 5", c.Kafka.MaxInFlightRequests)
	}
	if _, err := c.shipConfig().SaramaConfig(); err != nil {
		return err
	}
	return nil
}

// CollectKey is the etcd key of this host's collection config.
func (c *Config) CollectKey() string {
	return strings.ReplaceAll(c.Etcd.CollectKey, "{host}", c.Agent.Host)
}

// EtcdClientConfig is the etcd client configuration of [etcd]: endpoints, TLS
// and credentials (the password read from password_file if set).
func (c Config) EtcdClientConfig() (clientv3.Config, error) {
	e := c.Etcd
	cc := clientv3.Config{Endpoints: config.SplitList(e.Endpoints), DialTimeout: e.DialTimeout, Username: e.Username, Password: e.Password}
	if e.CAFile != "" || e.CertFile != "" {
		tc, err := tlsconfig.Client(tlsconfig.ClientOptions{CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile})
		if err != nil {
			return cc, fmt.Errorf("[etcd]: %w", err)
		}
		cc.TLS = tc
	}
	if e.PasswordFile != "" {
		if e.Password != "" {
			return cc, errors.New("[etcd] password and password_file: set one")
		}
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return cc, fmt.Errorf("[etcd] password_file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		cc.Password = strings.TrimRight(pw, "\r")
	}
	if (cc.Username == "") != (cc.Password == "") {
		return cc, errors.New("[etcd] username and a password go together")
	}
	return cc, nil
}
