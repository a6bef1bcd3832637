// Package metrics serves a component's Prometheus metrics and health over HTTP.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime and process collectors, so
// that every component reports its CPU, memory and goroutines.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Config is the [metrics] section of every component's ini file: where the HTTP
// port listens and what bounds each client. A zero value means its default.
type Config struct {
	Listen string `ini:"listen"` // host:port of /metrics, /healthz (and the broker's status page); empty = off
	// Pprof serves Go's profiler under /debug/pprof/. Off by default: a profile
	// costs CPU, and the pages tell much about the process.
	Pprof bool `ini:"pprof"`
	// ReadTimeout bounds reading a request, headers and body.
	ReadTimeout time.Duration `ini:"read_timeout"`
	// WriteTimeout bounds writing a response. Profiles are not bound by it: with
	// pprof on, /debug/pprof/ responses may take up to PprofWriteTimeout.
	WriteTimeout time.Duration `ini:"write_timeout"`
	// IdleTimeout is how long a kept-alive connection may wait for its next request.
	IdleTimeout time.Duration `ini:"idle_timeout"`
	// MaxHeaderBytes bounds a request's headers; a larger request gets 431.
	MaxHeaderBytes int `ini:"max_header_bytes"`
}

// Defaults of Config's bounds.
const (
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultMaxHeaderBytes = 64 << 10
	// PprofWriteTimeout bounds the responses of /debug/pprof/: a CPU profile or a
	// trace lasts its "seconds" parameter (30 by default), which must be shorter.
	PprofWriteTimeout = 2 * time.Minute
)

// DefaultConfig returns the defaults, listening on listen.
func DefaultConfig(listen string) Config {
	return Config{
		Listen:         listen,
		ReadTimeout:    DefaultReadTimeout,
		WriteTimeout:   DefaultWriteTimeout,
		IdleTimeout:    DefaultIdleTimeout,
		MaxHeaderBytes: DefaultMaxHeaderBytes,
	}
}

// withDefaults fills in the zero (or negative) bounds.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Listen)
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return c
}

// Server serves /metrics, /healthz, Go's profiler under /debug/pprof/ (when
// enabled) and any extra handlers on one listener.
type Server struct {
	ln           net.Listener
	srv          *http.Server
	mux          *http.ServeMux
	writeTimeout time.Duration
}

// Listen binds c.Listen and returns a Server that is not yet serving, so that callers
// can add handlers with Handle before Serve. Health reports nil when the component is
// healthy.
func Listen(c Config, reg *prometheus.Registry, health func() error, logger *slog.Logger) (*Server, error) {
	c = c.withDefaults()
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", c.Listen, err)
	}
	s := &Server{ln: ln, mux: http.NewServeMux(), writeTimeout: c.WriteTimeout}
	s.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if health != nil {
			if err := health(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	}))
	serverWrite := c.WriteTimeout
	if c.Pprof {
		// Go's profiler, for `go tool pprof http://ADDR/debug/pprof/profile`. It
		// refuses a profile as long as the server's write timeout, so the server's is
		// the profiler's, and every other handler sets its own shorter deadline.
		serverWrite = max(serverWrite, PprofWriteTimeout)
		s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: c.ReadTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      serverWrite,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handle adds a handler, for pages beyond /metrics and /healthz. Call it before
// Serve. Its responses are bound by the write timeout.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.writeTimeout))
		h.ServeHTTP(w, r)
	}))
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Close; it returns nil after Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the server, waiting up to a few seconds for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
