package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/kafkasec"
	"github.com/logpipe/logpipe/internal/tlsconfig"
	"github.com/logpipe/logpipe/internal/tlstest"
)

// security is what the secured pipeline run adds: certificates, users and the
// ini lines that use them. Every method of a nil *security adds nothing.
type security struct {
	dir                   string
	ca                    *tlstest.CA
	brokerCert, brokerKey string
	etcdServer            embedetcd.TLS
	etcdClient            *tls.Config
	agentCert, agentKey   string
}

func newSecurity(t *testing.T) *security {
	ca := tlstest.NewCA(t, "e2e CA")
	s := &security{dir: t.TempDir(), ca: ca}
	s.brokerCert, s.brokerKey = ca.Issue(t, "broker", "localhost", tlstest.Options{})
	cert, key := ca.Issue(t, "etcd", "localhost", tlstest.Options{})
	s.etcdServer = embedetcd.TLS{CertFile: cert, KeyFile: key, CAFile: ca.CAFile}
	s.agentCert, s.agentKey = ca.Issue(t, "agent", "e2e-host", tlstest.Options{Client: true})
	var err error
	if s.etcdClient, err = tlsconfig.Client(tlsconfig.ClientOptions{CAFile: ca.CAFile, CertFile: s.agentCert, KeyFile: s.agentKey}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"admin", "agent", "transfer"} {
		os.WriteFile(s.passwordFile(u), []byte(u+"-secret\n"), 0o600)
	}
	return s
}

func (s *security) passwordFile(user string) string { return filepath.Join(s.dir, user+".pw") }

// brokerIni is the broker's listener, TLS, SASL and ACL settings.
func (s *security) brokerIni(addr string) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf(`listeners = SASL_SSL://%s
advertised_listeners = SASL_SSL://%s
[tls]
cert_file = %s
key_file = %s
[sasl]
mechanisms = SCRAM-SHA-512
[acl]
enabled = true
super_users = User:admin`, addr, addr, s.brokerCert, s.brokerKey)
}

// addUsers makes the users with the broker's own command, before it starts.
func (s *security) addUsers(t *testing.T, brokerBin, ini string) {
	if s == nil {
		return
	}
	for _, u := range []string{"admin", "agent", "transfer"} {
		if out, err := exec.Command(brokerBin, "-config", ini, "users", "add", u, "--password-file", s.passwordFile(u)).CombinedOutput(); err != nil {
			t.Fatalf("broker users add %s: %v\n%s", u, err, out)
		}
	}
}

// client is what a component's [kafka] section says.
func (s *security) client(user string) kafkasec.Config {
	return kafkasec.Config{TLS: true, CAFile: s.ca.CAFile, SASLMechanism: "SCRAM-SHA-512", Username: user, PasswordFile: s.passwordFile(user)}
}

func (s *security) kafkaIni(user string) string {
	if s == nil {
		return ""
	}
	c := s.client(user)
	return fmt.Sprintf("tls = true\nca_file = %s\nsasl_mechanism = %s\nusername = %s\npassword_file = %s", c.CAFile, c.SASLMechanism, c.Username, c.PasswordFile)
}

func (s *security) etcdIni() string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("ca_file = %s\ncert_file = %s\nkey_file = %s", s.ca.CAFile, s.agentCert, s.agentKey)
}

// grant creates the topics and the ACLs, as the admin: the agent writes (and is
// an idempotent producer), the transfers read in their group.
func (s *security) grant(t *testing.T, addr string) {
	if s == nil {
		return
	}
	opts, err := s.client("admin").KgoOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil { // the broker is starting
		if _, err := adm.BrokerMetadata(ctx); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, "web_log", "app_log"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*kadm.ACLBuilder{
		// Topics named later in etcd (late_log) are created by the agent's
		// producer: it may create, write and describe any topic, the transfers
		// read any, in their group.
		kadm.NewACLs().Allow("User:agent").Topics("*").Operations(kadm.OpCreate, kadm.OpWrite, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:agent").Clusters().Operations(kadm.OpIdempotentWrite),
		kadm.NewACLs().Allow("User:transfer").Topics("*").Groups("logtransfer").Operations(kadm.OpRead),
	} {
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("ACL %+v: %v", r, r.Err)
			}
		}
	}
}
