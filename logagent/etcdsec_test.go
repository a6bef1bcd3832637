package logagent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/tlsconfig"
	"github.com/logpipe/logpipe/internal/tlstest"
	"github.com/logpipe/logpipe/internal/wait"
)

// TestEtcdTLSAndRBAC runs the agent against an etcd that requires client
// certificates and has authentication on, with the agent's user limited by RBAC
// to reading its own prefix: the agent follows its collection config; its user
// can read no other host's.
func TestEtcdTLSAndRBAC(t *testing.T) {
	ca := tlstest.NewCA(t, "etcd test CA")
	srvCert, srvKey := ca.Issue(t, "etcd", "localhost", tlstest.Options{})
	rootCert, rootKey := ca.Issue(t, "root", "root", tlstest.Options{Client: true})
	agentCert, agentKey := ca.Issue(t, "agent", "web-1", tlstest.Options{Client: true})
	etcd, err := embedetcd.StartWith(t.TempDir(), "127.0.0.1:0", embedetcd.TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)

	client := func(cert, key, user, pw string) *clientv3.Client {
		tc, err := tlsconfig.Client(tlsconfig.ClientOptions{CAFile: ca.CAFile, CertFile: cert, KeyFile: key})
		if err != nil {
			t.Fatal(err)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint()}, TLS: tc, DialTimeout: 5 * time.Second, Username: user, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Root sets up RBAC: the agent of web-1 may read /logagent/web-1/ only.
	root := client(rootCert, rootKey, "", "")
	steps := []func() error{
		func() error { _, err := root.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.RoleAdd(ctx, "agent-web-1"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "agent-web-1", "/logagent/web-1/", clientv3.GetPrefixRangeEnd("/logagent/web-1/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := root.UserAdd(ctx, "agent-web-1", "agent-pw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "agent-web-1", "agent-web-1"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("RBAC step %d: %v", i, err)
		}
	}
	admin := client(rootCert, rootKey, "root", "root-pw")
	if _, err := admin.Put(ctx, "/logagent/web-2/collect_config", `[{"path":"/secret/*.log","topic":"other"}]`); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t) // a broker (and an unused plain etcd)
	logDir := t.TempDir()
	file := filepath.Join(logDir, "app.log")
	os.WriteFile(file, []byte("first line\nsecond line\n"), 0o644)
	if _, err := admin.Put(ctx, "/logagent/web-1/collect_config", `[{"path":"`+file+`","topic":"web_log"}]`); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "etcd.pw")
	os.WriteFile(pwFile, []byte("agent-pw\n"), 0o600)
	cfg := e.config(t.TempDir())
	cfg.Etcd.Endpoints = etcd.Endpoint()
	cfg.Etcd.CAFile, cfg.Etcd.CertFile, cfg.Etcd.KeyFile = ca.CAFile, agentCert, agentKey
	cfg.Etcd.Username, cfg.Etcd.PasswordFile = "agent-web-1", pwFile
	c := consume(t, e.broker.Addr(), "web_log")
	start(t, cfg)
	wait.For(t, 30*time.Second, "the lines of the file", func() bool { return len(c.records()) >= 2 })

	// The agent's credentials read its own key, and no other host's.
	cc, err := cfg.EtcdClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	agentCli, err := clientv3.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer agentCli.Close()
	if _, err := agentCli.Get(ctx, "/logagent/web-1/collect_config"); err != nil {
		t.Fatalf("own key: %v", err)
	}
	if _, err := agentCli.Get(ctx, "/logagent/web-2/collect_config"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("another host's key: %v, want permission denied", err)
	}
	// Without a client certificate etcd refuses the connection.
	noCert := cc
	noCert.TLS, _ = tlsconfig.Client(tlsconfig.ClientOptions{CAFile: ca.CAFile})
	noCert.DialTimeout = 2 * time.Second
	if cli, err := clientv3.New(noCert); err == nil {
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = cli.Get(short, "/logagent/web-1/collect_config")
		cancel()
		cli.Close()
		if err == nil {
			t.Fatal("etcd answered a client without a certificate")
		}
	}
}
