package sasl

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramServer is the server side of one SCRAM exchange (RFC 5802), as Kafka's
// ScramSaslServer runs it: no channel binding, and a client-final nonce that
// must end with the server-first nonce (librdkafka sends its client nonce
// again in front of it; the proof covers what it sent).
type scramServer struct {
	mech   Mechanism
	hash   func() hash.Hash
	lookup func(user string) (Credential, bool, error)
	nonce  func() string

	step        int
	user        string
	clientBare  string // client-first-message-bare
	serverFirst string
	fullNonce   string
	cred        Credential
	valid       bool // the user exists: a missing one fails at the proof, not earlier
}

// errSCRAM is a malformed or failed exchange.
var errSCRAM = errors.New("SCRAM exchange failed")

func (s *scramServer) Step(in string) (out string, done bool, err error) {
	switch s.step {
	case 0:
		s.step++
		return s.first(in)
	case 1:
		s.step++
		return s.final(in)
	}
	return "", true, fmt.Errorf("%w: unexpected message", errSCRAM)
}

// first reads client-first-message: gs2-header, then n=user,r=nonce[,ext].
func (s *scramServer) first(in string) (string, bool, error) {
	if len(in) > 4096 {
		return "", true, fmt.Errorf("%w: client-first-message of %d bytes", errSCRAM, len(in))
	}
	parts := strings.SplitN(in, ",", 3)
	if len(parts) != 3 || (parts[0] != "n" && parts[0] != "y") || parts[1] != "" {
		return "", true, fmt.Errorf("%w: unsupported gs2 header (channel binding and authzid are not supported)", errSCRAM)
	}
	s.clientBare = parts[2]
	attrs := strings.Split(s.clientBare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) < 3 {
		return "", true, fmt.Errorf("%w: malformed client-first-message", errSCRAM)
	}
	for _, a := range attrs[2:] {
		if strings.HasPrefix(a, "m=") {
			return "", true, fmt.Errorf("%w: mandatory extension not supported", errSCRAM)
		}
	}
	user, err := decodeSASLName(attrs[0][2:])
	if err != nil {
		return "", true, err
	}
	s.user = user
	cred, ok, err := s.lookup(user)
	if err != nil {
		return "", true, err
	}
	if ok {
		s.cred, s.valid = cred, true
	} else {
		// Answer as for a real user, so that the exchange does not tell which
		// users exist; the proof cannot match.
		s.cred = Credential{Salt: []byte(user + "-unknown"), Iterations: MinIterations}
	}
	s.fullNonce = attrs[1][2:] + s.nonce()
	s.serverFirst = "r=" + s.fullNonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(s.cred.Iterations)
	return s.serverFirst, false, nil
}

// final reads client-final-message: c=,r=[,ext],p=proof.
func (s *scramServer) final(in string) (string, bool, error) {
	if len(in) > 4096 {
		return "", true, fmt.Errorf("%w: client-final-message of %d bytes", errSCRAM, len(in))
	}
	i := strings.LastIndex(in, ",p=")
	if i < 0 {
		return "", true, fmt.Errorf("%w: no proof", errSCRAM)
	}
	withoutProof, proofB64 := in[:i], in[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return "", true, fmt.Errorf("%w: malformed client-final-message", errSCRAM)
	}
	if cb, err := base64.StdEncoding.DecodeString(attrs[0][2:]); err != nil || (string(cb) != "n,," && string(cb) != "y,,") {
		return "", true, fmt.Errorf("%w: channel binding not supported", errSCRAM)
	}
	if !strings.HasSuffix(attrs[1][2:], s.fullNonce) {
		return "", true, fmt.Errorf("%w: nonce mismatch", errSCRAM)
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != s.hash().Size() {
		return "", true, fmt.Errorf("%w: malformed proof", errSCRAM)
	}
	authMessage := s.clientBare + "," + s.serverFirst + "," + withoutProof
	clientSig := hmacOf(s.hash, s.cred.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ clientSig[i%len(clientSig)]
	}
	h := s.hash()
	h.Write(clientKey)
	if !s.valid || subtle.ConstantTimeCompare(h.Sum(nil), s.cred.StoredKey) != 1 {
		return "e=invalid-proof", true, fmt.Errorf("%w: invalid proof", errSCRAM)
	}
	sig := hmac.New(s.hash, s.cred.ServerKey)
	sig.Write([]byte(authMessage))
	return "v=" + base64.StdEncoding.EncodeToString(sig.Sum(nil)), true, nil
}

// decodeSASLName undoes saslname escaping (=2C is ',', =3D is '=').
func decodeSASLName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in user name", errSCRAM)
		}
		i += 2
	}
	if err := checkName(b.String()); err != nil {
		return "", fmt.Errorf("%w: %v", errSCRAM, err)
	}
	return b.String(), nil
}
