// Package server speaks the Kafka wire protocol for logpipe's single-node broker.
//
// It accepts connections, decodes requests with franz-go's kmsg, answers them
// from a broker/storage Store (and, for consumer groups, a Groups coordinator),
// and writes the responses back in request order. Each connection has one reader
// goroutine that decodes and dispatches, and one writer goroutine that writes
// responses strictly in order; requests that wait (acks=all produce waiting for
// its fsync, Fetch long polls, group requests) complete in their own goroutines
// so that they never stall the decoding of the next request.
package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logpipe/logpipe/broker/acl"
	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/broker/storage"
)

// Defaults of the limits in Config. Each bounds what one client, or all of them,
// can make the broker hold; the README's "Limits" section explains them.
const (
	DefaultMaxRequestBytes           = 100 << 20 // Kafka's socket.request.max.bytes
	DefaultMaxOtherRequestBytes      = 1 << 20
	DefaultQueuedMaxRequestBytes     = 256 << 20
	DefaultMaxUncompressedBatchBytes = 32 << 20
	DefaultMaxConnections            = 10000
	DefaultMaxConnectionsPerIP       = 1000
	DefaultIdleTimeout               = 10 * time.Minute // Kafka's connections.max.idle.ms
	DefaultRequestTimeout            = 30 * time.Second
	DefaultWriteTimeout              = 30 * time.Second
	DefaultMaxFetchWait              = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	Store *storage.Store // required

	// Advertised is the host:port given to clients in Metadata and FindCoordinator.
	// Empty means the listener's address.
	Advertised string

	AutoCreateTopics bool  // create unknown topics named in Metadata requests
	NumPartitions    int32 // partitions of auto-created topics and of CreateTopics without a count

	// TopicDefaults is the configuration of topics created without explicit configs
	// (the store's defaults); CreateTopics configs are applied on top of it.
	TopicDefaults storage.TopicConfig

	// Limits; a zero value means the default above. MaxRequestBytes bounds a
	// Produce request, MaxOtherRequestBytes every other request (they carry no
	// records; decoding their arrays costs a few times their size).
	MaxRequestBytes           int32
	MaxOtherRequestBytes      int32
	QueuedMaxRequestBytes     int64         // request bytes being read or awaiting their response, all connections; Produce and the rest each have this much
	MaxUncompressedBatchBytes int64         // what one produced batch may decompress to
	MaxConnections            int           // open connections, all clients
	MaxConnectionsPerIP       int           // open connections from one address
	IdleTimeout               time.Duration // close a connection that sends nothing this long
	RequestTimeout            time.Duration // a request must arrive whole within this of its first byte
	WriteTimeout              time.Duration // a response must be taken by the client within this
	MaxFetchWait              time.Duration // cap on a Fetch's MaxWaitMillis

	// BrokerConfigs is what DescribeConfigs reports for this broker, by Kafka name.
	BrokerConfigs map[string]string

	// Groups answers the consumer-group APIs; nil = those APIs are not offered.
	Groups Groups

	// SASL authenticates connections on SASL_PLAINTEXT and SASL_SSL listeners;
	// nil = no SASL listener may be served. Users is the SCRAM credential store
	// that AlterUserScramCredentials and DescribeUserScramCredentials manage;
	// nil = those APIs are not offered.
	SASL  *sasl.Authenticator
	Users Users

	// ACL authorizes every request when it is enabled; nil = everything is
	// allowed. CreateAcls, DescribeAcls and DeleteAcls are answered by it.
	ACL *acl.Authorizer

	Logger   *slog.Logger          // nil = discard
	Registry prometheus.Registerer // nil = no metrics
}

// Server serves the Kafka protocol on listeners.
type Server struct {
	cfg      Config
	store    *storage.Store
	log      *slog.Logger
	metrics  *serverMetrics
	versions map[int16]versionRange
	apiKeys  []apiKeyEntry

	advHost string // Config.Advertised, if set
	advPort int32

	produceBudget   *budget       // bytes of Produce requests being read or queued
	otherBudget     *budget       // the same for every other request
	decompressSlots chan struct{} // bounds concurrent decompression of produced batches

	stopping chan struct{} // closed when Close begins: no new requests, long polls end
	stopOnce sync.Once

	mu    sync.Mutex
	lns   map[net.Listener]struct{}
	conns map[*conn]struct{}
	perIP map[string]int // open connections by remote address
	wg    sync.WaitGroup // accept loops and connections
}

// Client identifies the connection a request came on.
type Client struct {
	ID   string // client.id from the request header
	Host string // remote IP, for DescribeGroups' ClientHost
}

// New returns a Server for cfg. It does not listen yet; call Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	if cfg.NumPartitions <= 0 {
		cfg.NumPartitions = 1
	}
	setDefault(&cfg.MaxRequestBytes, DefaultMaxRequestBytes)
	setDefault(&cfg.MaxOtherRequestBytes, DefaultMaxOtherRequestBytes)
	setDefault(&cfg.QueuedMaxRequestBytes, DefaultQueuedMaxRequestBytes)
	setDefault(&cfg.MaxUncompressedBatchBytes, DefaultMaxUncompressedBatchBytes)
	setDefault(&cfg.MaxConnections, DefaultMaxConnections)
	setDefault(&cfg.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.RequestTimeout, DefaultRequestTimeout)
	setDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	setDefault(&cfg.MaxFetchWait, DefaultMaxFetchWait)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:             cfg,
		produceBudget:   newBudget(cfg.QueuedMaxRequestBytes),
		otherBudget:     newBudget(cfg.QueuedMaxRequestBytes),
		decompressSlots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		perIP:           map[string]int{},
		store:           cfg.Store,
		log:             cfg.Logger,
		stopping:        make(chan struct{}),
		lns:             map[net.Listener]struct{}{},
		conns:           map[*conn]struct{}{},
	}
	s.versions, s.apiKeys = buildVersions(cfg.Groups)
	if cfg.Advertised != "" {
		if err := s.setAdvertised(cfg.Advertised); err != nil {
			return nil, err
		}
	}
	m, err := newServerMetrics(cfg.Registry, cfg.Store)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if cfg.Registry != nil {
		for name, b := range map[string]*budget{"produce": s.produceBudget, "other": s.otherBudget} {
			g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "logpipe_broker_queued_request_bytes",
				Help:        "Bytes of requests being read or awaiting their response (limit: queued_max_request_bytes).",
				ConstLabels: prometheus.Labels{"requests": name},
			}, func() float64 { return float64(b.inUse()) })
			if err := cfg.Registry.Register(g); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *Server) setAdvertised(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("server: advertised address %q: %w", hostport, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("server: advertised address %q: bad port", hostport)
	}
	s.advHost, s.advPort = host, int32(p)
	return nil
}

// Serve accepts PLAINTEXT connections on ln until Close. It returns nil after
// Close.
func (s *Server) Serve(ln net.Listener) error { return s.ServeListener(ln, Listener{}) }

// ServeListener accepts connections on ln, secured as l says, until Close. It
// returns nil after Close.
func (s *Server) ServeListener(ln net.Listener, l Listener) error {
	lst := listenerInfo{protocol: l.Protocol, tls: l.TLS}
	if lst.protocol == "" {
		lst.protocol = Plaintext
	}
	switch {
	case lst.protocol.usesTLS() && l.TLS == nil:
		ln.Close()
		return fmt.Errorf("server: %s listener without a TLS configuration", lst.protocol)
	case lst.protocol.usesSASL() && s.cfg.SASL == nil:
		ln.Close()
		return fmt.Errorf("server: %s listener without SASL mechanisms", lst.protocol)
	}
	adv := l.Advertised
	if adv == "" && s.advHost != "" {
		lst.host, lst.port = s.advHost, s.advPort
	} else {
		if adv == "" {
			adv = ln.Addr().String()
		}
		var err error
		if lst.host, lst.port, err = splitHostPort(adv); err != nil {
			ln.Close()
			return fmt.Errorf("server: advertised %w", err)
		}
	}
	s.mu.Lock()
	select {
	case <-s.stopping:
		s.mu.Unlock()
		ln.Close()
		return nil
	default:
	}
	s.lns[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.stopping:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Resource exhaustion (EMFILE and the like): back off and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if lst.tls != nil {
			nc = tls.Server(nc, lst.tls) // the handshake runs in the connection's goroutine
		}
		c := newConn(s, nc, lst)
		s.mu.Lock()
		select {
		case <-s.stopping:
			s.mu.Unlock()
			nc.Close()
			return nil
		default:
		}
		if limit := s.admit(c.client.Host); limit != "" {
			s.mu.Unlock()
			s.metrics.limitHit(limit)
			s.log.Debug("connection refused", "remote", nc.RemoteAddr().String(), "limit", limit)
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.perIP[c.client.Host]++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[c.client.Host]--; s.perIP[c.client.Host] <= 0 {
				delete(s.perIP, c.client.Host)
			}
			s.mu.Unlock()
		}()
	}
}

// admit reports which connection limit a new connection from host would
// exceed, or "". s.mu is held.
func (s *Server) admit(host string) string {
	switch {
	case len(s.conns) >= s.cfg.MaxConnections:
		return "max_connections"
	case s.perIP[host] >= s.cfg.MaxConnectionsPerIP:
		return "max_connections_per_ip"
	}
	return ""
}

// setDefault sets *v to def if it is zero or negative.
func setDefault[T int | int32 | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Close stops accepting, stops reading new requests, lets requests in flight
// finish and their responses go out for up to grace, then closes every connection.
// It does not close the store.
func (s *Server) Close(grace time.Duration) {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		close(s.stopping)
		for ln := range s.lns {
			ln.Close()
		}
		for c := range s.conns {
			c.stopReading()
		}
		s.mu.Unlock()
	})
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	s.mu.Lock()
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	<-done
}

// isStopping reports whether Close has begun.
func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}
