package broker

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/internal/tlsconfig"
)

// TLSConfig is the [tls] section: the certificate of the SSL and SASL_SSL
// listeners, reloaded when its files change or on SIGHUP.
type TLSConfig struct {
	CertFile     string `ini:"cert_file"`
	KeyFile      string `ini:"key_file"`
	ClientCAFile string `ini:"client_ca_file"` // CA of client certificates (mTLS)
	ClientAuth   string `ini:"client_auth"`    // none | requested | required
}

// SASLConfig is the [sasl] section.
type SASLConfig struct {
	// Mechanisms enabled on SASL listeners, in the order offered.
	Mechanisms string `ini:"mechanisms"`
	// BootstrapUser and BootstrapPasswordFile create a first user (with
	// SCRAM-SHA-512 and SCRAM-SHA-256 credentials) at start when no user exists.
	BootstrapUser         string `ini:"bootstrap_user"`
	BootstrapPasswordFile string `ini:"bootstrap_password_file"`
}

// ACLConfig is the [acl] section.
type ACLConfig struct {
	Enabled    bool   `ini:"enabled"`     // true: no access unless an ACL allows it
	SuperUsers string `ini:"super_users"` // principals allowed everything, comma-separated
}

// ListenerSpec is one listener of [server] listeners.
type ListenerSpec struct {
	Protocol   server.SecurityProtocol
	Address    string // host:port to bind
	Advertised string // host:port given to clients
}

// Listeners returns the listeners the configuration asks for: [server]
// listeners (with advertised_listeners) when set, else one PLAINTEXT listener
// on listen (advertised).
func (c Config) Listeners() ([]ListenerSpec, error) {
	if strings.TrimSpace(c.Server.Listeners) == "" {
		return []ListenerSpec{{Protocol: server.Plaintext, Address: c.Server.Listen, Advertised: c.Server.Advertised}}, nil
	}
	specs, err := parseListeners(c.Server.Listeners)
	if err != nil {
		return nil, fmt.Errorf("[server] listeners: %w", err)
	}
	if strings.TrimSpace(c.Server.AdvertisedListeners) != "" {
		adv, err := parseListeners(c.Server.AdvertisedListeners)
		if err != nil {
			return nil, fmt.Errorf("[server] advertised_listeners: %w", err)
		}
		for _, a := range adv {
			found := false
			for i := range specs {
				if specs[i].Protocol == a.Protocol {
					specs[i].Advertised, found = a.Address, true
				}
			}
			if !found {
				return nil, fmt.Errorf("[server] advertised_listeners names %s, which listeners does not", a.Protocol)
			}
		}
	}
	return specs, nil
}

// parseListeners reads "PROTOCOL://host:port,..." (one listener per protocol).
func parseListeners(s string) ([]ListenerSpec, error) {
	var out []ListenerSpec
	seen := map[server.SecurityProtocol]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "://")
		if !ok {
			return nil, fmt.Errorf("%q: want PROTOCOL://host:port", item)
		}
		p, err := server.ParseSecurityProtocol(name)
		if err != nil {
			return nil, err
		}
		if seen[p] {
			return nil, fmt.Errorf("%s named twice", p)
		}
		seen[p] = true
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		out = append(out, ListenerSpec{Protocol: p, Address: addr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listener in %q", s)
	}
	return out, nil
}

// mechanisms parses [sasl] mechanisms.
func (c Config) mechanisms() ([]sasl.Mechanism, error) {
	var out []sasl.Mechanism
	for _, m := range strings.Split(c.SASL.Mechanisms, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		mech, err := sasl.ParseMechanism(m)
		if err != nil {
			return nil, fmt.Errorf("[sasl] mechanisms: %w", err)
		}
		out = append(out, mech)
	}
	return out, nil
}

// validateSecurity checks the listeners, TLS and SASL settings together.
func (c Config) validateSecurity() error {
	specs, err := c.Listeners()
	if err != nil {
		return err
	}
	mechs, err := c.mechanisms()
	if err != nil {
		return err
	}
	for _, l := range specs {
		if (l.Protocol == server.SSL || l.Protocol == server.SASLSSL) && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
			return fmt.Errorf("[server] listeners: %s needs [tls] cert_file and key_file", l.Protocol)
		}
		if (l.Protocol == server.SASLPlaintext || l.Protocol == server.SASLSSL) && len(mechs) == 0 {
			return fmt.Errorf("[server] listeners: %s needs [sasl] mechanisms", l.Protocol)
		}
	}
	if (c.SASL.BootstrapUser == "") != (c.SASL.BootstrapPasswordFile == "") {
		return fmt.Errorf("[sasl] bootstrap_user and bootstrap_password_file go together")
	}
	return nil
}

// security is what Start builds from the security sections.
type security struct {
	users    *sasl.Users
	auth     *sasl.Authenticator
	tls      *tls.Config
	reloader *tlsconfig.Reloader
}

func (c Config) openSecurity(needTLS bool) (*security, error) {
	users, err := sasl.OpenUsers(c.Log.Dir)
	if err != nil {
		return nil, err
	}
	sec := &security{users: users}
	if c.SASL.BootstrapUser != "" {
		if err := bootstrapUser(users, c.SASL.BootstrapUser, c.SASL.BootstrapPasswordFile); err != nil {
			return nil, err
		}
	}
	mechs, err := c.mechanisms()
	if err != nil {
		return nil, err
	}
	if len(mechs) > 0 {
		if sec.auth, err = sasl.NewAuthenticator(users, mechs); err != nil {
			return nil, err
		}
	}
	if needTLS {
		sec.tls, sec.reloader, err = tlsconfig.Server(tlsconfig.ServerOptions{
			CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
			ClientCAFile: c.TLS.ClientCAFile, ClientAuth: tlsconfig.ClientAuth(c.TLS.ClientAuth),
		})
		if err != nil {
			return nil, err
		}
	}
	return sec, nil
}

// bootstrapUser creates the first user of a fresh broker, with both SCRAM
// mechanisms, unless some user exists already.
func bootstrapUser(users *sasl.Users, name, passwordFile string) error {
	list, err := users.List()
	if err != nil || len(list) > 0 {
		return err
	}
	pw, err := ReadPasswordFile(passwordFile)
	if err != nil {
		return fmt.Errorf("[sasl] bootstrap_password_file: %w", err)
	}
	for _, m := range []sasl.Mechanism{sasl.ScramSHA512, sasl.ScramSHA256} {
		if err := users.SetPassword(name, m, pw, sasl.DefaultIterations); err != nil {
			return fmt.Errorf("[sasl] bootstrap_user: %w", err)
		}
	}
	return nil
}

// ReadPasswordFile returns the first line of a password file.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("%s: empty password", path)
	}
	return pw, nil
}

// ReloadTLS reads the listeners' certificate files again (on SIGHUP); the
// previous certificate stays in use if they cannot be loaded.
func (b *Broker) ReloadTLS() error {
	if b.sec == nil || b.sec.reloader == nil {
		return nil
	}
	return b.sec.reloader.Reload()
}
