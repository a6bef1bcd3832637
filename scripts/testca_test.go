package scripts

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMakeTestCA runs make-test-ca.sh and completes a mutual TLS handshake with
// what it wrote: the broker's certificate for its host and a client's.
func TestMakeTestCA(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("bash", filepath.Join(root, "scripts/make-test-ca.sh"), dir, "logs.example.net", "agent-1").CombinedOutput()
	if err != nil {
		t.Fatalf("make-test-ca.sh: %v\n%s", err, out)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	server, err := tls.LoadX509KeyPair(filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := tls.LoadX509KeyPair(filepath.Join(dir, "agent-1.pem"), filepath.Join(dir, "agent-1-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "broker-key.pem")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("broker-key.pem mode %v", fi.Mode().Perm())
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	cl := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "logs.example.net", Certificates: []tls.Certificate{client}})
	if err := cl.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if cn := srv.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "agent-1" {
		t.Fatalf("client certificate CN %q", cn)
	}
}
