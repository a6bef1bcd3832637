// Package embedetcd runs a real, single-member etcd server inside the process, for
// tests and for `make run`.
package embedetcd

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Server is a running embedded etcd member.
type Server struct {
	e        *embed.Etcd
	endpoint string
	once     sync.Once
}

// Start starts a single-member etcd cluster with its data in dir, serving clients on
// clientAddr (host:port; port 0 picks a free one). To restart a server with the same
// data, Close it and Start again with the same dir and the address Endpoint reported.
func Start(dir, clientAddr string) (*Server, error) { return StartWith(dir, clientAddr, TLS{}) }

// TLS is the client-facing TLS of a server: with CertFile set, clients must
// connect with TLS and present a certificate signed by CAFile.
type TLS struct {
	CertFile, KeyFile, CAFile string
}

// StartWith is Start with client TLS (and client certificates required).
func StartWith(dir, clientAddr string, tlsCfg TLS) (*Server, error) {
	peerAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if _, port, _ := net.SplitHostPort(clientAddr); port == "0" {
		if clientAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	cfg := embed.NewConfig()
	cfg.Name = "logpipe"
	cfg.Dir = dir
	cfg.LogLevel = "fatal" // its shutdown logs errors that are not
	cfg.Logger = "zap"
	scheme := "http"
	if tlsCfg.CertFile != "" {
		scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: tlsCfg.CertFile, KeyFile: tlsCfg.KeyFile, TrustedCAFile: tlsCfg.CAFile, ClientCertAuth: true}
	}
	cu := url.URL{Scheme: scheme, Host: clientAddr}
	pu := url.URL{Scheme: "http", Host: peerAddr}
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd in %s: %w", dir, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd in %s did not become ready in 30s", dir)
	}
	return &Server{e: e, endpoint: clientAddr}, nil
}

// Endpoint is the host:port clients connect to.
func (s *Server) Endpoint() string { return s.endpoint }

// Close stops the server and waits until it has released its ports and files. It may
// be called more than once.
func (s *Server) Close() { s.once.Do(s.e.Close) }

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Put stores value at key, through a client of its own (for tests and make run's seed).
func (s *Server) Put(key, value string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, value); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}
