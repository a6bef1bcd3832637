// Package sasl authenticates Kafka clients for the broker: PLAIN and
// SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677, as Kafka implements them),
// against credentials stored salted and hashed in the broker's data directory
// (users.json, see Users). The protocol server carries the tokens in
// SaslAuthenticate requests; this package knows nothing of the network.
//
// The SCRAM conversations are github.com/xdg-go/scram's, the same library the
// agent and the transfer use as sarama's SCRAM client.
package sasl

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"
)

// ErrUnsupportedMechanism is returned by Start for a mechanism not enabled.
var ErrUnsupportedMechanism = errors.New("unsupported SASL mechanism")

// ErrAuthentication is wrapped by every failed authentication; its text is
// safe to send to the client and to log (it never holds a password).
var ErrAuthentication = errors.New("authentication failed")

// Authenticator starts SASL exchanges for the enabled mechanisms.
type Authenticator struct {
	users   *Users
	enabled []Mechanism
	servers map[Mechanism]*scram.Server
}

// NewAuthenticator returns an Authenticator over users for the mechanisms given.
func NewAuthenticator(users *Users, mechanisms []Mechanism) (*Authenticator, error) {
	a := &Authenticator{users: users, enabled: mechanisms, servers: map[Mechanism]*scram.Server{}}
	for _, m := range mechanisms {
		var gen scram.HashGeneratorFcn
		switch m {
		case Plain:
			continue
		case ScramSHA256:
			gen = scram.SHA256
		case ScramSHA512:
			gen = scram.SHA512
		default:
			return nil, fmt.Errorf("unknown SASL mechanism %q", m)
		}
		s, err := gen.NewServer(a.lookup(m))
		if err != nil {
			return nil, err
		}
		a.servers[m] = s
	}
	return a, nil
}

// Mechanisms returns the enabled mechanisms, as SaslHandshake lists them.
func (a *Authenticator) Mechanisms() []string {
	out := make([]string, len(a.enabled))
	for i, m := range a.enabled {
		out[i] = string(m)
	}
	return out
}

func (a *Authenticator) lookup(m Mechanism) scram.CredentialLookup {
	return func(name string) (scram.StoredCredentials, error) {
		c, ok, err := a.users.Lookup(name, m)
		if err != nil {
			return scram.StoredCredentials{}, err
		}
		if !ok {
			return scram.StoredCredentials{}, fmt.Errorf("unknown user %q", name)
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
			StoredKey:  c.StoredKey,
			ServerKey:  c.ServerKey,
		}, nil
	}
}

// Start begins an exchange with the mechanism a client named.
func (a *Authenticator) Start(mechanism string) (*Exchange, error) {
	m := Mechanism(mechanism)
	for _, e := range a.enabled {
		if e != m {
			continue
		}
		x := &Exchange{a: a, mech: m}
		if s := a.servers[m]; s != nil {
			x.conv = s.NewConversation()
		}
		return x, nil
	}
	return nil, fmt.Errorf("%w %q (enabled: %v)", ErrUnsupportedMechanism, mechanism, a.enabled)
}

// Exchange is one authentication of one connection.
type Exchange struct {
	a    *Authenticator
	mech Mechanism
	conv *scram.ServerConversation // nil for PLAIN
	user string
	done bool
}

// Mechanism is the exchange's mechanism.
func (x *Exchange) Mechanism() Mechanism { return x.mech }

// User is the user name the client gave, once known (it may be set even when
// the exchange fails: failures are logged with it).
func (x *Exchange) User() string { return x.user }

// Step takes the client's next token and returns the server's answer and
// whether the exchange is complete. An error wraps ErrAuthentication and ends
// the exchange.
func (x *Exchange) Step(in []byte) (out []byte, done bool, err error) {
	if x.done {
		return nil, true, fmt.Errorf("%w: exchange already complete", ErrAuthentication)
	}
	if x.conv == nil {
		x.done = true
		return nil, true, x.plain(in)
	}
	resp, err := x.conv.Step(string(in))
	if u := x.conv.Username(); u != "" {
		x.user = u
	}
	if err != nil {
		x.done = true
		return nil, true, fmt.Errorf("%w: %s for user %q", ErrAuthentication, x.mech, x.user)
	}
	if x.conv.Done() {
		x.done = true
		if !x.conv.Valid() {
			return nil, true, fmt.Errorf("%w: %s for user %q", ErrAuthentication, x.mech, x.user)
		}
		if az := x.conv.AuthzID(); az != "" && az != x.user {
			return nil, true, fmt.Errorf("%w: user %q may not act as %q", ErrAuthentication, x.user, az)
		}
	}
	return []byte(resp), x.done, nil
}

// plain checks a PLAIN message: authzid NUL authcid NUL password.
func (x *Exchange) plain(in []byte) error {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return fmt.Errorf("%w: malformed PLAIN message", ErrAuthentication)
	}
	authz, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	x.user = user
	if authz != "" && authz != user {
		return fmt.Errorf("%w: user %q may not act as %q", ErrAuthentication, user, authz)
	}
	if checkName(user) != nil {
		return fmt.Errorf("%w: bad user name", ErrAuthentication)
	}
	ok, err := x.a.users.CheckPassword(user, password)
	if err != nil || !ok {
		return fmt.Errorf("%w: PLAIN for user %q", ErrAuthentication, user)
	}
	return nil
}
