// Package sasl authenticates Kafka clients for the broker: PLAIN and
// SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677, as Kafka implements them),
// against credentials stored salted and hashed in the broker's data directory
// (users.json, see Users). The protocol server carries the tokens in
// SaslAuthenticate requests; this package knows nothing of the network.
//
// The SCRAM server is written here rather than taken from a library because it
// must accept what Kafka's accepts: librdkafka repeats its client nonce in
// front of the server's in its final message, and Kafka (and so this broker)
// only checks that the nonce ends with the server's.
package sasl

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
}

// NewAuthenticator returns an Authenticator over users for the mechanisms given.
func NewAuthenticator(users *Users, mechanisms []Mechanism) (*Authenticator, error) {
	for _, m := range mechanisms {
		if _, err := ParseMechanism(string(m)); err != nil {
			return nil, err
		}
	}
	return &Authenticator{users: users, enabled: mechanisms}, nil
}

// Mechanisms returns the enabled mechanisms, as SaslHandshake lists them.
func (a *Authenticator) Mechanisms() []string {
	out := make([]string, len(a.enabled))
	for i, m := range a.enabled {
		out[i] = string(m)
	}
	return out
}

// Start begins an exchange with the mechanism a client named.
func (a *Authenticator) Start(mechanism string) (*Exchange, error) {
	m := Mechanism(mechanism)
	for _, e := range a.enabled {
		if e != m {
			continue
		}
		x := &Exchange{a: a, mech: m}
		if m != Plain {
			h, _ := hashFor(m)
			x.scram = &scramServer{
				mech:   m,
				hash:   h,
				lookup: func(user string) (Credential, bool, error) { return a.users.Lookup(user, m) },
				nonce:  alphanumericNonce,
			}
		}
		return x, nil
	}
	return nil, fmt.Errorf("%w %q (enabled: %v)", ErrUnsupportedMechanism, mechanism, a.enabled)
}

// Exchange is one authentication of one connection.
type Exchange struct {
	a     *Authenticator
	mech  Mechanism
	scram *scramServer // nil for PLAIN
	user  string
	done  bool
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
	if x.scram == nil {
		x.done = true
		return nil, true, x.plain(in)
	}
	resp, done, err := x.scram.Step(string(in))
	x.user, x.done = x.scram.user, done
	if err != nil {
		return []byte(resp), true, fmt.Errorf("%w: %s for user %q: %v", ErrAuthentication, x.mech, x.user, err)
	}
	return []byte(resp), done, nil
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

// alphanumericNonce is a server nonce of 32 random hex digits (Kafka's are
// alphanumeric too).
func alphanumericNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
