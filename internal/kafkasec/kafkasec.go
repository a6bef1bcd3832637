// Package kafkasec is the client side of Kafka security shared by the agent,
// the transfer and logpipectl: the [kafka] ini keys for TLS and SASL, turned
// into a sarama or a franz-go configuration. Passwords come from the ini, a
// password file or the environment, and never appear in logs or errors.
package kafkasec

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/xdg-go/scram"

	"github.com/logpipe/logpipe/internal/tlsconfig"
)

// Config holds the security keys of a [kafka] section.
type Config struct {
	TLS                bool   `ini:"tls"`
	CAFile             string `ini:"ca_file"`
	CertFile           string `ini:"cert_file"`
	KeyFile            string `ini:"key_file"`
	ServerName         string `ini:"server_name"`
	InsecureSkipVerify bool   `ini:"insecure_skip_verify"` // tests only; logged loudly

	SASLMechanism string `ini:"sasl_mechanism"` // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512; empty = none
	Username      string `ini:"username"`
	Password      string `ini:"password"`
	PasswordFile  string `ini:"password_file"` // read at start, instead of password
	PasswordEnv   string `ini:"password_env"`  // name of an environment variable holding the password
}

// Validate checks the keys without reading any file.
func (c Config) Validate() error {
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
		if c.Username != "" {
			return fmt.Errorf("[kafka] username is set but sasl_mechanism is empty")
		}
		return nil
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("[kafka] sasl_mechanism = %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	if c.Username == "" {
		return fmt.Errorf("[kafka] sasl_mechanism = %s needs username", c.SASLMechanism)
	}
	n := 0
	for _, s := range []string{c.Password, c.PasswordFile, c.PasswordEnv} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("[kafka] sasl_mechanism = %s needs exactly one of password, password_file, password_env", c.SASLMechanism)
	}
	return nil
}

// String describes the settings without the password.
func (c Config) String() string {
	s := "plaintext"
	if c.TLS {
		s = "tls"
	}
	if c.SASLMechanism != "" {
		s += fmt.Sprintf(" sasl=%s user=%s", strings.ToUpper(c.SASLMechanism), c.Username)
	}
	return s
}

// password returns the password from wherever the configuration says.
func (c Config) password() (string, error) {
	switch {
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("[kafka] password_file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		if pw = strings.TrimRight(pw, "\r"); pw == "" {
			return "", fmt.Errorf("[kafka] password_file %s: empty", c.PasswordFile)
		}
		return pw, nil
	case c.PasswordEnv != "":
		pw := os.Getenv(c.PasswordEnv)
		if pw == "" {
			return "", fmt.Errorf("[kafka] password_env: $%s is empty", c.PasswordEnv)
		}
		return pw, nil
	}
	return c.Password, nil
}

// tlsConfig returns the TLS configuration, or nil without TLS.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	return tlsconfig.Client(tlsconfig.ClientOptions{
		CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify,
	})
}

// ApplySarama sets sc's TLS and SASL from c.
func (c Config) ApplySarama(sc *sarama.Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return err
	}
	if tc != nil {
		sc.Net.TLS.Enable, sc.Net.TLS.Config = true, tc
	}
	mech := strings.ToUpper(c.SASLMechanism)
	if mech == "" {
		return nil
	}
	pw, err := c.password()
	if err != nil {
		return err
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.Version = sarama.SASLHandshakeV1
	sc.Net.SASL.User, sc.Net.SASL.Password = c.Username, pw
	switch mech {
	case "PLAIN":
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case "SCRAM-SHA-256":
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: scram.SHA256} }
	case "SCRAM-SHA-512":
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: scram.SHA512} }
	}
	return nil
}

// KgoOpts returns franz-go options for c.
func (c Config) KgoOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	mech := strings.ToUpper(c.SASLMechanism)
	if mech == "" {
		return opts, nil
	}
	pw, err := c.password()
	if err != nil {
		return nil, err
	}
	switch mech {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: pw}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(kscram.Auth{User: c.Username, Pass: pw}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(kscram.Auth{User: c.Username, Pass: pw}.AsSha512Mechanism()))
	}
	return opts, nil
}

// scramClient is sarama's SCRAM client, over github.com/xdg-go/scram.
type scramClient struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	cl, err := s.gen.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	s.conv = cl.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }

func (s *scramClient) Done() bool { return s.conv.Done() }
