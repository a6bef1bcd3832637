// Package broker is logpipe's built-in single-node Kafka-compatible broker: it
// wires the storage engine (broker/storage), the Kafka protocol server
// (broker/server), the consumer-group coordinator and the metrics endpoint, as
// configured by broker.ini.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/logpipe/logpipe/broker/acl"
	"github.com/logpipe/logpipe/broker/group"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/broker/status"
	"github.com/logpipe/logpipe/broker/storage"
	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/metrics"
	"github.com/logpipe/logpipe/internal/version"
)

// Config is the broker's configuration, as read from broker.ini.
type Config struct {
	Server  ServerConfig  `ini:"server"`
	TLS     TLSConfig     `ini:"tls"`
	SASL    SASLConfig    `ini:"sasl"`
	ACL     ACLConfig     `ini:"acl"`
	Log     LogConfig     `ini:"log"`
	Metrics MetricsConfig `ini:"metrics"`
	Logging LoggingConfig `ini:"logging"`
	Group   GroupConfig   `ini:"group"`
}

// ServerConfig is the [server] section: the Kafka listener.
type ServerConfig struct {
	Listen     string `ini:"listen"`     // host:port to listen on
	Advertised string `ini:"advertised"` // host:port given to clients; empty = the listen address

	// Listeners, when set, replaces listen: PROTOCOL://host:port,... with
	// PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL; AdvertisedListeners gives
	// each protocol's address for clients.
	Listeners           string `ini:"listeners"`
	AdvertisedListeners string `ini:"advertised_listeners"`

	MaxRequestBytes int32         `ini:"max_request_bytes"` // largest Produce request accepted
	ShutdownTimeout time.Duration `ini:"shutdown_timeout"`  // how long requests in flight may finish on SIGTERM

	// Limits on what clients can make the broker hold (README, "Limits").
	MaxOtherRequestBytes      int32         `ini:"max_other_request_bytes"`      // largest request other than Produce
	QueuedMaxRequestBytes     int64         `ini:"queued_max_request_bytes"`     // request bytes being read or queued, all connections
	MaxUncompressedBatchBytes int64         `ini:"max_uncompressed_batch_bytes"` // what one produced batch may decompress to
	MaxConnections            int           `ini:"max_connections"`
	MaxConnectionsPerIP       int           `ini:"max_connections_per_ip"`
	IdleTimeout               time.Duration `ini:"idle_timeout"`    // Kafka's connections.max.idle.ms
	RequestTimeout            time.Duration `ini:"request_timeout"` // a request must arrive whole within this
	WriteTimeout              time.Duration `ini:"write_timeout"`   // a client must take its response within this
	MaxFetchWait              time.Duration `ini:"max_fetch_wait"`  // cap on a Fetch's long poll
}

// LogConfig is the [log] section: storage and topic defaults.
type LogConfig struct {
	Dir                    string        `ini:"dir"`
	NumPartitions          int32         `ini:"num_partitions"` // for auto-created topics and CreateTopics without a count
	AutoCreateTopics       bool          `ini:"auto_create_topics"`
	SegmentBytes           int64         `ini:"segment_bytes"`
	SegmentHours           int64         `ini:"segment_hours"`
	RetentionHours         int64         `ini:"retention_hours"` // -1 = unlimited
	RetentionBytes         int64         `ini:"retention_bytes"` // per partition, -1 = unlimited
	MaxMessageBytes        int32         `ini:"max_message_bytes"`
	IndexIntervalBytes     int32         `ini:"index_interval_bytes"`
	RetentionCheckInterval time.Duration `ini:"retention_check_interval"`
	MaxOpenSegments        int           `ini:"max_open_segments"` // sealed segment files open at once; 0 = 1000 capped at RLIMIT_NOFILE/4
	MaxTopics              int           `ini:"max_topics"`        // -1 = unlimited
	MaxPartitions          int           `ini:"max_partitions"`    // of all topics; -1 = unlimited
}

// MetricsConfig is the [metrics] section: the status page, /metrics and /healthz.
type MetricsConfig = metrics.Config

// LoggingConfig is the [logging] section.
type LoggingConfig struct {
	Level  string `ini:"level"`  // debug, info, warn, error
	Format string `ini:"format"` // text or json
}

// DefaultConfig returns the configuration used for keys broker.ini does not set.
func DefaultConfig() Config {
	d := storage.DefaultTopicConfig()
	return Config{
		Server: ServerConfig{
			Listen:          "127.0.0.1:9092",
			MaxRequestBytes: server.DefaultMaxRequestBytes,
			ShutdownTimeout: 5 * time.Second,

			MaxOtherRequestBytes:      server.DefaultMaxOtherRequestBytes,
			QueuedMaxRequestBytes:     server.DefaultQueuedMaxRequestBytes,
			MaxUncompressedBatchBytes: server.DefaultMaxUncompressedBatchBytes,
			MaxConnections:            server.DefaultMaxConnections,
			MaxConnectionsPerIP:       server.DefaultMaxConnectionsPerIP,
			IdleTimeout:               server.DefaultIdleTimeout,
			RequestTimeout:            server.DefaultRequestTimeout,
			WriteTimeout:              server.DefaultWriteTimeout,
			MaxFetchWait:              server.DefaultMaxFetchWait,
		},
		Log: LogConfig{
			Dir:                    "./data/broker",
			NumPartitions:          3,
			AutoCreateTopics:       true,
			SegmentBytes:           d.SegmentBytes,
			SegmentHours:           d.SegmentMs / int64(time.Hour/time.Millisecond),
			RetentionHours:         168,
			RetentionBytes:         -1,
			MaxMessageBytes:        d.MaxMessageBytes,
			IndexIntervalBytes:     d.IndexIntervalBytes,
			RetentionCheckInterval: 5 * time.Minute,
			MaxOpenSegments:        storage.DefaultMaxOpenSegments,
			MaxTopics:              storage.DefaultMaxTopics,
			MaxPartitions:          storage.DefaultMaxPartitions,
		},
		TLS:     TLSConfig{ClientAuth: "none"},
		SASL:    SASLConfig{Mechanisms: "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"},
		ACL:     ACLConfig{SuperUsers: "User:admin"},
		Metrics: metrics.DefaultConfig("127.0.0.1:9308"),
		Logging: LoggingConfig{Level: "info", Format: "text"},
		Group:   DefaultGroupConfig(),
	}
}

// LoadConfig reads broker.ini at path on top of DefaultConfig and validates it.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks the values that have limits.
func (c Config) Validate() error {
	if c.Server.Listen == "" && c.Server.Listeners == "" {
		return errors.New("[server] listen is empty")
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	if c.Server.Advertised != "" {
		if _, _, err := net.SplitHostPort(c.Server.Advertised); err != nil {
			return fmt.Errorf("[server] advertised: %w", err)
		}
	}
	if c.Server.MaxRequestBytes < 1024 {
		return fmt.Errorf("[server] max_request_bytes = %d: want at least 1024", c.Server.MaxRequestBytes)
	}
	sv := c.Server
	switch {
	case sv.MaxOtherRequestBytes < 1024:
		return fmt.Errorf("[server] max_other_request_bytes = %d: want at least 1024", sv.MaxOtherRequestBytes)
	case sv.QueuedMaxRequestBytes < int64(sv.MaxRequestBytes):
		return fmt.Errorf("[server] queued_max_request_bytes = %d: want at least max_request_bytes (%d)", sv.QueuedMaxRequestBytes, sv.MaxRequestBytes)
	case sv.MaxUncompressedBatchBytes < int64(c.Log.MaxMessageBytes):
		return fmt.Errorf("[server] max_uncompressed_batch_bytes = %d: want at least [log] max_message_bytes (%d)", sv.MaxUncompressedBatchBytes, c.Log.MaxMessageBytes)
	case sv.MaxConnections < 1 || sv.MaxConnectionsPerIP < 1:
		return fmt.Errorf("[server] max_connections = %d, max_connections_per_ip = %d: want at least 1", sv.MaxConnections, sv.MaxConnectionsPerIP)
	case sv.IdleTimeout < time.Second || sv.RequestTimeout < time.Second || sv.WriteTimeout < time.Second:
		return fmt.Errorf("[server] idle_timeout, request_timeout and write_timeout must be at least 1s")
	case sv.MaxFetchWait < 100*time.Millisecond:
		return fmt.Errorf("[server] max_fetch_wait = %s: want at least 100ms", sv.MaxFetchWait)
	}
	if c.Log.Dir == "" {
		return errors.New("[log] dir is empty")
	}
	if c.Log.NumPartitions < 1 {
		return fmt.Errorf("[log] num_partitions = %d: want at least 1", c.Log.NumPartitions)
	}
	if c.Log.RetentionHours == 0 || c.Log.RetentionHours < -1 {
		return fmt.Errorf("[log] retention_hours = %d: want -1 (unlimited) or more than 0", c.Log.RetentionHours)
	}
	if c.Log.SegmentHours < 1 {
		return fmt.Errorf("[log] segment_hours = %d: want at least 1", c.Log.SegmentHours)
	}
	if c.Log.MaxOpenSegments < 0 {
		return fmt.Errorf("[log] max_open_segments = %d: want 0 (automatic) or more", c.Log.MaxOpenSegments)
	}
	if c.Log.MaxTopics == 0 || c.Log.MaxTopics < -1 {
		return fmt.Errorf("[log] max_topics = %d: want -1 (unlimited) or at least 1", c.Log.MaxTopics)
	}
	if c.Log.MaxPartitions == 0 || c.Log.MaxPartitions < -1 {
		return fmt.Errorf("[log] max_partitions = %d: want -1 (unlimited) or at least 1", c.Log.MaxPartitions)
	}
	if c.Log.MaxMessageBytes > c.Server.MaxRequestBytes {
		return fmt.Errorf("[log] max_message_bytes = %d exceeds [server] max_request_bytes = %d", c.Log.MaxMessageBytes, c.Server.MaxRequestBytes)
	}
	if _, err := c.topicDefaults(); err != nil {
		return err
	}
	return nil
}

// topicDefaults turns the [log] keys into the store's topic defaults, validated
// by the storage's own rules.
func (c Config) topicDefaults() (storage.TopicConfig, error) {
	t := storage.DefaultTopicConfig()
	retentionMs := int64(-1)
	if c.Log.RetentionHours > 0 {
		retentionMs = c.Log.RetentionHours * int64(time.Hour/time.Millisecond)
	}
	for _, kv := range [][2]string{
		{"segment.bytes", strconv.FormatInt(c.Log.SegmentBytes, 10)},
		{"segment.ms", strconv.FormatInt(c.Log.SegmentHours*int64(time.Hour/time.Millisecond), 10)},
		{"retention.ms", strconv.FormatInt(retentionMs, 10)},
		{"retention.bytes", strconv.FormatInt(c.Log.RetentionBytes, 10)},
		{"max.message.bytes", strconv.FormatInt(int64(c.Log.MaxMessageBytes), 10)},
		{"index.interval.bytes", strconv.FormatInt(int64(c.Log.IndexIntervalBytes), 10)},
	} {
		if err := t.Set(kv[0], kv[1]); err != nil {
			return t, fmt.Errorf("[log] %s = %s: %w", kv[0], kv[1], err)
		}
	}
	return t, nil
}

// Broker is a running broker.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	store   *storage.Store
	srv     *server.Server
	lns     []net.Listener // in the order of Config.Listeners
	specs   []ListenerSpec
	sec     *security
	metrics *metrics.Server
	groups  *group.Coordinator // nil until started

	done       chan struct{} // closed when serving stops
	stopStatus chan struct{} // stops the status page's sampler
	errMu      sync.Mutex
	serveErr   error // the first listener failure
	closeMu    sync.Mutex
	closed     bool
	wg         sync.WaitGroup
}

// Start opens the store in cfg.Log.Dir (recovering it if the last shutdown was not
// clean), listens on cfg.Server.Listen and serves until Close. A nil logger
// discards logs.
func Start(cfg Config, logger *slog.Logger) (*Broker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defaults, err := cfg.topicDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Log.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	b := &Broker{cfg: cfg, log: logger, done: make(chan struct{}), stopStatus: make(chan struct{})}
	start := time.Now()
	b.store, err = storage.Open(storage.Options{
		Dir:                    cfg.Log.Dir,
		Defaults:               defaults,
		Logger:                 logger.With("component", "storage"),
		RetentionCheckInterval: cfg.Log.RetentionCheckInterval,
		MaxOpenSegments:        cfg.Log.MaxOpenSegments,
		MaxTopics:              cfg.Log.MaxTopics,
		MaxPartitions:          cfg.Log.MaxPartitions,
	})
	if err != nil {
		return nil, fmt.Errorf("open log dir %s: %w", cfg.Log.Dir, err)
	}
	logger.Info("storage opened", "dir", cfg.Log.Dir, "topics", len(b.store.Topics()), "took", time.Since(start).Round(time.Millisecond))
	warnDescriptors(cfg, logger)

	fail := func(err error) (*Broker, error) {
		for _, ln := range b.lns {
			ln.Close()
		}
		if b.groups != nil {
			b.groups.Close()
		}
		b.store.Close()
		return nil, err
	}
	reg := metrics.NewRegistry()
	b.groups, err = newGroups(b.store, cfg.Group, logger.With("component", "group"), reg)
	if err != nil {
		return fail(fmt.Errorf("start group coordinator: %w", err))
	}
	b.specs, err = cfg.Listeners()
	if err != nil {
		return fail(err)
	}
	needTLS := false
	for _, l := range b.specs {
		needTLS = needTLS || l.Protocol == server.SSL || l.Protocol == server.SASLSSL
	}
	if b.sec, err = cfg.openSecurity(needTLS); err != nil {
		return fail(err)
	}
	supers, err := acl.ParseSuperUsers(cfg.ACL.SuperUsers)
	if err != nil {
		return fail(fmt.Errorf("[acl] super_users: %w", err))
	}
	authz, err := acl.Open(cfg.Log.Dir, acl.Config{Enabled: cfg.ACL.Enabled, SuperUsers: supers, Registerer: reg})
	if err != nil {
		return fail(err)
	}
	b.srv, err = server.New(server.Config{
		Store:            b.store,
		ACL:              authz,
		SASL:             b.sec.auth,
		Users:            b.sec.users,
		AutoCreateTopics: cfg.Log.AutoCreateTopics,
		NumPartitions:    cfg.Log.NumPartitions,
		TopicDefaults:    defaults,
		MaxRequestBytes:  cfg.Server.MaxRequestBytes,
		BrokerConfigs:    brokerConfigs(cfg),

		MaxOtherRequestBytes:      cfg.Server.MaxOtherRequestBytes,
		QueuedMaxRequestBytes:     cfg.Server.QueuedMaxRequestBytes,
		MaxUncompressedBatchBytes: cfg.Server.MaxUncompressedBatchBytes,
		MaxConnections:            cfg.Server.MaxConnections,
		MaxConnectionsPerIP:       cfg.Server.MaxConnectionsPerIP,
		IdleTimeout:               cfg.Server.IdleTimeout,
		RequestTimeout:            cfg.Server.RequestTimeout,
		WriteTimeout:              cfg.Server.WriteTimeout,
		MaxFetchWait:              cfg.Server.MaxFetchWait,
		Groups:                    b.groups,
		Logger:                    logger.With("component", "server"),
		Registry:                  reg,
	})
	if err != nil {
		return fail(err)
	}
	for _, l := range b.specs {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			return fail(fmt.Errorf("listen %s (%s): %w", l.Address, l.Protocol, err))
		}
		b.lns = append(b.lns, ln)
	}
	if cfg.Metrics.Listen != "" {
		b.metrics, err = metrics.Listen(cfg.Metrics, reg, b.health, logger)
		if err != nil {
			return fail(err)
		}
		pageCfg := status.Config{
			Store: b.store, Traffic: b.srv.Traffic, DataDir: cfg.Log.Dir,
			Listen: b.Addr(), Version: version.Version, Logger: logger,
		}
		if b.groups != nil {
			pageCfg.Groups = b.groups.Snapshot
		}
		page := status.New(pageCfg)
		b.metrics.Handle("GET /", page) // the status page, and /status.json
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			page.Run(b.stopStatus)
		}()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.metrics.Serve(); err != nil {
				logger.Error("metrics server stopped", "err", err)
			}
		}()
	}
	var doneOnce sync.Once
	for i, ln := range b.lns {
		l := server.Listener{Protocol: b.specs[i].Protocol, Advertised: b.specs[i].Advertised}
		switch l.Protocol {
		case server.SSL:
			l.TLS = b.sec.tls
		case server.SASLSSL:
			// As in Kafka, client_auth applies to SSL listeners: on SASL_SSL the
			// principal comes from SASL.
			l.TLS = b.sec.tls.Clone()
			l.TLS.ClientAuth, l.TLS.ClientCAs = tls.NoClientCert, nil
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			// The broker is done when any listener stops: after Close, or
			// because it failed (then Close reports why).
			defer doneOnce.Do(func() { close(b.done) })
			if err := b.srv.ServeListener(ln, l); err != nil {
				b.errMu.Lock()
				if b.serveErr == nil {
					b.serveErr = err
				}
				b.errMu.Unlock()
				logger.Error("kafka listener stopped", "listener", l.Protocol, "err", err)
			}
		}()
		logger.Info("kafka listener", "protocol", l.Protocol, "addr", ln.Addr().String(), "advertised", l.Advertised)
	}
	logger.Info("broker listening", "addr", b.Addr(), "metrics", b.MetricsAddr())
	return b, nil
}

// warnDescriptors warns when the descriptor limit cannot hold an open file for
// every partition allowed ([log] max_partitions) besides the segment cache.
func warnDescriptors(cfg Config, logger *slog.Logger) {
	var rl syscall.Rlimit
	if cfg.Log.MaxPartitions < 0 || syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil || rl.Cur > 1<<30 {
		return
	}
	if need := uint64(cfg.Log.MaxPartitions) + uint64(rl.Cur)/4; need > rl.Cur {
		logger.Warn("the descriptor limit is lower than [log] max_partitions needs: raise LimitNOFILE (ulimit -n) or lower max_partitions",
			"nofile", rl.Cur, "max_partitions", cfg.Log.MaxPartitions)
	}
}

// brokerConfigs is what DescribeConfigs reports for broker 0.
func brokerConfigs(cfg Config) map[string]string {
	specs, _ := cfg.Listeners()
	var lns, adv []string
	for _, l := range specs {
		a := l.Advertised
		if a == "" {
			a = l.Address
		}
		lns = append(lns, string(l.Protocol)+"://"+l.Address)
		adv = append(adv, string(l.Protocol)+"://"+a)
	}
	return map[string]string{
		"broker.id":                        "0",
		"advertised.listeners":             strings.Join(adv, ","),
		"listeners":                        strings.Join(lns, ","),
		"log.dirs":                         cfg.Log.Dir,
		"num.partitions":                   strconv.Itoa(int(cfg.Log.NumPartitions)),
		"auto.create.topics.enable":        strconv.FormatBool(cfg.Log.AutoCreateTopics),
		"log.segment.bytes":                strconv.FormatInt(cfg.Log.SegmentBytes, 10),
		"log.roll.hours":                   strconv.FormatInt(cfg.Log.SegmentHours, 10),
		"log.retention.hours":              strconv.FormatInt(cfg.Log.RetentionHours, 10),
		"log.retention.bytes":              strconv.FormatInt(cfg.Log.RetentionBytes, 10),
		"message.max.bytes":                strconv.Itoa(int(cfg.Log.MaxMessageBytes)),
		"log.index.interval.bytes":         strconv.Itoa(int(cfg.Log.IndexIntervalBytes)),
		"socket.request.max.bytes":         strconv.Itoa(int(cfg.Server.MaxRequestBytes)),
		"default.replication.factor":       "1",
		"min.insync.replicas":              "1",
		"offsets.topic.replication.factor": "1",
	}
}

func (b *Broker) health() error {
	select {
	case <-b.done:
		b.errMu.Lock()
		defer b.errMu.Unlock()
		if b.serveErr != nil {
			return fmt.Errorf("kafka listener stopped: %w", b.serveErr)
		}
		return errors.New("broker stopped")
	default:
		return nil
	}
}

// Addr is the address the first Kafka listener is bound to, host:port.
func (b *Broker) Addr() string { return b.lns[0].Addr().String() }

// ListenerAddr is the address the listener of protocol p is bound to, or "".
func (b *Broker) ListenerAddr(p server.SecurityProtocol) string {
	for i, l := range b.specs {
		if l.Protocol == p {
			return b.lns[i].Addr().String()
		}
	}
	return ""
}

// MetricsAddr is the address of the status page, /metrics and /healthz, or "" when
// off.
func (b *Broker) MetricsAddr() string {
	if b.metrics == nil {
		return ""
	}
	return b.metrics.Addr()
}

// Done is closed when the broker stops serving, after Close or because the
// listener failed (then Close reports why).
func (b *Broker) Done() <-chan struct{} { return b.done }

// Close stops accepting connections, lets requests in flight finish for up to
// [server] shutdown_timeout, then closes the group coordinator and the store
// (flushing and fsyncing everything and marking a clean shutdown).
func (b *Broker) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	close(b.stopStatus)
	b.srv.Close(b.cfg.Server.ShutdownTimeout)
	var errs []error
	if b.metrics != nil {
		if err := b.metrics.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close metrics server: %w", err))
		}
	}
	b.wg.Wait()
	b.errMu.Lock()
	if b.serveErr != nil {
		errs = append(errs, b.serveErr)
	}
	b.errMu.Unlock()
	if b.groups != nil {
		if err := b.groups.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close group coordinator: %w", err))
		}
	}
	if err := b.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	b.log.Info("broker stopped")
	return errors.Join(errs...)
}

// DataDir is the broker's data directory ([log] dir).
func (b *Broker) DataDir() string { return b.cfg.Log.Dir }
