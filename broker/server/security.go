package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/sasl"
)

// SecurityProtocol is how a listener's connections are secured, named as Kafka
// names them.
type SecurityProtocol string

// The four security protocols.
const (
	Plaintext     SecurityProtocol = "PLAINTEXT"
	SSL           SecurityProtocol = "SSL"
	SASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	SASLSSL       SecurityProtocol = "SASL_SSL"
)

// ParseSecurityProtocol returns the protocol named s.
func ParseSecurityProtocol(s string) (SecurityProtocol, error) {
	switch p := SecurityProtocol(strings.ToUpper(s)); p {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
		return p, nil
	}
	return "", fmt.Errorf("unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", s)
}

// usesTLS and usesSASL say what a protocol needs.
func (p SecurityProtocol) usesTLS() bool  { return p == SSL || p == SASLSSL }
func (p SecurityProtocol) usesSASL() bool { return p == SASLPlaintext || p == SASLSSL }

// Listener is how connections accepted on one net.Listener are secured, and the
// address clients that connect there are given in Metadata and FindCoordinator.
type Listener struct {
	Protocol   SecurityProtocol // "" = PLAINTEXT
	Advertised string           // host:port; empty = Config.Advertised, else the listener's address
	TLS        *tls.Config      // required for SSL and SASL_SSL
}

// Anonymous is the principal of a connection that did not authenticate.
const Anonymous = "User:ANONYMOUS"

// listenerInfo is what a connection knows of its listener.
type listenerInfo struct {
	protocol SecurityProtocol
	host     string
	port     int32
	tls      *tls.Config
}

func splitHostPort(hostport string) (string, int32, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", hostport, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("address %q: bad port", hostport)
	}
	return host, int32(p), nil
}

// handshakeTLS runs the TLS handshake of a new connection within
// RequestTimeout and takes the principal from a client certificate, if any
// (its subject's distinguished name, as Kafka does).
func (c *conn) handshakeTLS(tc *tls.Conn) error {
	tc.SetDeadline(time.Now().Add(c.s.cfg.RequestTimeout))
	defer tc.SetDeadline(time.Time{})
	if err := tc.Handshake(); err != nil {
		c.s.metrics.authFailed("tls")
		return fmt.Errorf("TLS handshake: %w", err)
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.principal = "User:" + certs[0].Subject.String()
	}
	return nil
}

// errAuthRequired closes a connection that sends a request other than
// ApiVersions, SaslHandshake or SaslAuthenticate before authenticating.
var errAuthRequired = errors.New("request before SASL authentication")

// checkAuthenticated reports whether a request with key may be handled now.
func (c *conn) checkAuthenticated(key int16) error {
	if !c.lst.protocol.usesSASL() || c.authenticated {
		return nil
	}
	switch key {
	case 17, 18, 36: // SaslHandshake, ApiVersions, SaslAuthenticate
		return nil
	}
	c.s.metrics.authFailed("unauthenticated_request")
	return fmt.Errorf("%w: %s", errAuthRequired, kmsg.NameForKey(key))
}

// handleSaslHandshake starts an exchange with the mechanism the client names.
func (c *conn) handleSaslHandshake(r *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	auth := c.s.cfg.SASL
	if !c.lst.protocol.usesSASL() || auth == nil || r.Version < 1 {
		// v0 would send the tokens unframed after the response: not served.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp
	}
	resp.SupportedMechanisms = auth.Mechanisms()
	x, err := auth.Start(r.Mechanism)
	if err != nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp
	}
	c.exchange = x
	return resp
}

// handleSaslAuthenticate takes one token of the exchange. A failure is
// answered, logged with the client's address and user name (never a
// password), counted, and then closes the connection.
func (c *conn) handleSaslAuthenticate(r *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	x := c.exchange
	if x == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	out, done, err := x.Step(r.SASLAuthBytes)
	if err != nil {
		c.exchange = nil
		c.s.metrics.authFailed(string(x.Mechanism()))
		c.log.Warn("SASL authentication failed", "mechanism", x.Mechanism(), "principal", "User:"+x.User(), "err", err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "authentication failed: invalid credentials with SASL mechanism " + string(x.Mechanism())
		resp.ErrorMessage = &msg
		return resp, errCloseAfterResponse
	}
	resp.SASLAuthBytes = out
	if done {
		c.exchange = nil
		principal := "User:" + x.User()
		if c.authenticated && principal != c.principal {
			// Re-authentication (KIP-368) may not change who the connection is.
			c.s.metrics.authFailed("reauthentication")
			c.log.Warn("SASL re-authentication as another principal refused", "principal", principal, "was", c.principal)
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := "re-authentication may not change the principal"
			resp.ErrorMessage = &msg
			return resp, errCloseAfterResponse
		}
		c.authenticated, c.principal = true, principal
		c.log.Debug("SASL authenticated", "mechanism", x.Mechanism(), "principal", principal)
	}
	return resp, nil
}

// errCloseAfterResponse closes the connection once the response is written.
var errCloseAfterResponse = errors.New("close after response")

// Users is the SCRAM credential store, as AlterUserScramCredentials and
// DescribeUserScramCredentials manage it.
type Users interface {
	SetSalted(name string, m sasl.Mechanism, salt, salted []byte, iterations int) error
	Delete(name string, m sasl.Mechanism) error
	List() ([]sasl.UserInfo, error)
}

var scramMechanisms = map[int8]sasl.Mechanism{1: sasl.ScramSHA256, 2: sasl.ScramSHA512}

func scramType(m sasl.Mechanism) int8 {
	for k, v := range scramMechanisms {
		if v == m {
			return k
		}
	}
	return 0
}

// handleDescribeUserSCRAMs lists users and their SCRAM mechanisms and iterations.
func (s *Server) handleDescribeUserSCRAMs(r *kmsg.DescribeUserSCRAMCredentialsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if s.cfg.Users == nil {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp
	}
	users, err := s.cfg.Users.List()
	if err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp
	}
	byName := map[string]sasl.UserInfo{}
	for _, u := range users {
		byName[u.Name] = u
	}
	add := func(name string) {
		out := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		out.User = name
		u, ok := byName[name]
		if !ok {
			out.ErrorCode = kerr.ResourceNotFound.Code
			msg := "no SCRAM credentials for this user"
			out.ErrorMessage = &msg
		}
		for m, iters := range u.Mechanisms {
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism, ci.Iterations = scramType(m), int32(iters)
			out.CredentialInfos = append(out.CredentialInfos, ci)
		}
		resp.Results = append(resp.Results, out)
	}
	if r.Users == nil {
		for _, u := range users {
			add(u.Name)
		}
		return resp
	}
	seen := map[string]bool{}
	for _, u := range r.Users {
		if seen[u.Name] {
			continue
		}
		seen[u.Name] = true
		add(u.Name)
	}
	return resp
}

// handleAlterUserSCRAMs adds, replaces and deletes SCRAM credentials.
func (s *Server) handleAlterUserSCRAMs(r *kmsg.AlterUserSCRAMCredentialsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	result := func(user string, err error, code int16) {
		out := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		out.User, out.ErrorCode = user, code
		if err != nil {
			msg := err.Error()
			out.ErrorMessage = &msg
		}
		resp.Results = append(resp.Results, out)
	}
	if s.cfg.Users == nil {
		for _, d := range r.Deletions {
			result(d.Name, errors.New("SCRAM is not enabled on this broker"), kerr.UnsupportedSaslMechanism.Code)
		}
		for _, u := range r.Upsertions {
			result(u.Name, errors.New("SCRAM is not enabled on this broker"), kerr.UnsupportedSaslMechanism.Code)
		}
		return resp
	}
	for _, d := range r.Deletions {
		m, ok := scramMechanisms[d.Mechanism]
		switch {
		case !ok:
			result(d.Name, fmt.Errorf("unknown SCRAM mechanism %d", d.Mechanism), kerr.UnsupportedSaslMechanism.Code)
		default:
			err := s.cfg.Users.Delete(d.Name, m)
			switch {
			case errors.Is(err, sasl.ErrNoCredential):
				result(d.Name, err, kerr.ResourceNotFound.Code)
			case err != nil:
				result(d.Name, err, kerr.UnknownServerError.Code)
			default:
				s.log.Info("SCRAM credential deleted", "user", d.Name, "mechanism", m)
				result(d.Name, nil, 0)
			}
		}
	}
	for _, u := range r.Upsertions {
		m, ok := scramMechanisms[u.Mechanism]
		if !ok {
			result(u.Name, fmt.Errorf("unknown SCRAM mechanism %d", u.Mechanism), kerr.UnsupportedSaslMechanism.Code)
			continue
		}
		if u.Iterations < sasl.MinIterations || u.Iterations > sasl.MaxIterations {
			result(u.Name, fmt.Errorf("%d iterations: want %d to %d", u.Iterations, sasl.MinIterations, sasl.MaxIterations), kerr.UnacceptableCredential.Code)
			continue
		}
		if err := s.cfg.Users.SetSalted(u.Name, m, u.Salt, u.SaltedPassword, int(u.Iterations)); err != nil {
			result(u.Name, err, kerr.UnacceptableCredential.Code)
			continue
		}
		s.log.Info("SCRAM credential set", "user", u.Name, "mechanism", m, "iterations", u.Iterations)
		result(u.Name, nil, 0)
	}
	return resp
}
