// Package tlsconfig builds the TLS configurations of logpipe's components from
// file names in their ini files: a server's (the broker's listeners, with
// certificates reloaded when their files change or on SIGHUP) and a client's
// (the agent, the transfer and logpipectl towards Kafka, etcd and
// Elasticsearch). Both use TLS 1.2 or newer.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ClientAuth is how a server treats client certificates.
type ClientAuth string

// The client_auth values of broker.ini.
const (
	ClientAuthNone      ClientAuth = "none"
	ClientAuthRequested ClientAuth = "requested"
	ClientAuthRequired  ClientAuth = "required"
)

// ServerOptions are a server's certificate files.
type ServerOptions struct {
	CertFile, KeyFile string
	ClientCAFile      string     // CA of client certificates; required unless ClientAuth is none
	ClientAuth        ClientAuth // "" = none
}

// Server returns a server configuration and the reloader behind its
// certificate.
func Server(o ServerOptions) (*tls.Config, *Reloader, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, nil, errors.New("tls: cert_file and key_file are required")
	}
	r := &Reloader{certFile: o.CertFile, keyFile: o.KeyFile}
	if err := r.Reload(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
	switch o.ClientAuth {
	case "", ClientAuthNone:
		cfg.ClientAuth = tls.NoClientCert
	case ClientAuthRequested:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, nil, fmt.Errorf("tls: client_auth = %q: want none, requested or required", o.ClientAuth)
	}
	if cfg.ClientAuth != tls.NoClientCert {
		if o.ClientCAFile == "" {
			return nil, nil, fmt.Errorf("tls: client_auth = %s needs client_ca_file", o.ClientAuth)
		}
		pool, err := loadPool(o.ClientCAFile)
		if err != nil {
			return nil, nil, err
		}
		cfg.ClientCAs = pool
	}
	return cfg, r, nil
}

// ClientOptions are a client's TLS settings.
type ClientOptions struct {
	CAFile             string // CAs to trust; empty = the system's
	CertFile, KeyFile  string // a client certificate (mTLS); both or neither
	ServerName         string // expected name in the server's certificate; empty = the dialled host
	InsecureSkipVerify bool   // accept any server certificate: for tests only, and logged loudly by callers
}

// Client returns a client configuration.
func Client(o ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" {
		pool, err := loadPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("tls: cert_file and key_file go together")
	}
	if o.CertFile != "" {
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Reloader serves a certificate and key pair from files, reading them again
// when they change (checked at most once a second, at a handshake) or when
// Reload is called (on SIGHUP). A pair that fails to load is reported by Reload
// and leaves the previous one in use.
type Reloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time // modification times of the loaded files
	checked time.Time
}

// Reload reads the files now.
func (r *Reloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cert = &c
	r.stamp = r.stamps()
	r.checked = time.Now()
	return nil
}

func (r *Reloader) stamps() [2]time.Time {
	var s [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			s[i] = fi.ModTime()
		}
	}
	return s
}

func (r *Reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	stale := time.Since(r.checked) >= time.Second
	if stale {
		r.checked = time.Now()
		stale = r.stamps() != r.stamp
	}
	cert := r.cert
	r.mu.Unlock()
	if stale {
		if err := r.Reload(); err == nil {
			r.mu.Lock()
			cert = r.cert
			r.mu.Unlock()
		}
	}
	return cert, nil
}
