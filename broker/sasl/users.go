package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/logpipe/logpipe/internal/atomicfile"
)

// Mechanism is a SASL mechanism name, as clients send it in SaslHandshake.
type Mechanism string

// The mechanisms the broker implements.
const (
	Plain       Mechanism = "PLAIN"
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

// ParseMechanism returns the mechanism named s.
func ParseMechanism(s string) (Mechanism, error) {
	switch m := Mechanism(s); m {
	case Plain, ScramSHA256, ScramSHA512:
		return m, nil
	}
	return "", fmt.Errorf("unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s)
}

// Iteration bounds of SCRAM credentials, as Kafka has them.
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 8192
)

// maxUsers bounds the users the store holds; maxNameBytes a user name.
const (
	maxUsers     = 100_000
	maxNameBytes = 256
)

// Credential is what is stored of one user's password for one SCRAM mechanism
// (RFC 5802): never the password, only its salt, iteration count and the two
// keys derived from it.
type Credential struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// hashFor returns the hash of a SCRAM mechanism.
func hashFor(m Mechanism) (func() hash.Hash, error) {
	switch m {
	case ScramSHA256:
		return sha256.New, nil
	case ScramSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%s is not a SCRAM mechanism", m)
}

// deriveCredential computes the stored keys from a salted password.
func deriveCredential(m Mechanism, salt, salted []byte, iterations int) (Credential, error) {
	h, err := hashFor(m)
	if err != nil {
		return Credential{}, err
	}
	clientKey := hmacOf(h, salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return Credential{
		Salt:       salt,
		Iterations: iterations,
		StoredKey:  stored.Sum(nil),
		ServerKey:  hmacOf(h, salted, "Server Key"),
	}, nil
}

func hmacOf(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// saltPassword is SCRAM's Hi(password, salt, iterations): PBKDF2 with the
// mechanism's hash.
func saltPassword(m Mechanism, password string, salt []byte, iterations int) ([]byte, error) {
	h, err := hashFor(m)
	if err != nil {
		return nil, err
	}
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// Users is the durable store of SCRAM credentials: users.json in the broker's
// data directory, mode 0600, rewritten atomically on every change. A change
// made by another process (`broker users add` next to a running broker) is
// seen at the next authentication.
type Users struct {
	path string

	mu      sync.Mutex
	users   map[string]map[Mechanism]Credential
	modTime time.Time
	size    int64
}

type usersFile struct {
	Version int                                 `json:"version"`
	Users   map[string]map[Mechanism]Credential `json:"users"`
}

// OpenUsers opens (or starts) the credential store in dir.
func OpenUsers(dir string) (*Users, error) {
	u := &Users{path: filepath.Join(dir, "users.json"), users: map[string]map[Mechanism]Credential{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return nil, err
	}
	return u, nil
}

// reloadLocked reads the file again if it changed since it was last read.
func (u *Users) reloadLocked() error {
	fi, err := os.Stat(u.path)
	if errors.Is(err, os.ErrNotExist) {
		u.users, u.modTime, u.size = map[string]map[Mechanism]Credential{}, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if fi.ModTime().Equal(u.modTime) && fi.Size() == u.size {
		return nil
	}
	if fi.Size() > 256<<20 {
		return fmt.Errorf("users: %s is %d bytes, more than any credential store needs", u.path, fi.Size())
	}
	b, err := os.ReadFile(u.path)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	users, err := parseUsers(b)
	if err != nil {
		return fmt.Errorf("users: %s: %w", u.path, err)
	}
	u.users, u.modTime, u.size = users, fi.ModTime(), fi.Size()
	return nil
}

// parseUsers decodes and checks a users.json.
func parseUsers(b []byte) (map[string]map[Mechanism]Credential, error) {
	var f usersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("version %d, want 1", f.Version)
	}
	if len(f.Users) > maxUsers {
		return nil, fmt.Errorf("%d users, at most %d", len(f.Users), maxUsers)
	}
	for name, mechs := range f.Users {
		if err := checkName(name); err != nil {
			return nil, err
		}
		for m, c := range mechs {
			h, err := hashFor(m)
			if err != nil {
				return nil, fmt.Errorf("user %q: %w", name, err)
			}
			if c.Iterations < MinIterations || c.Iterations > MaxIterations || len(c.Salt) == 0 ||
				len(c.StoredKey) != h().Size() || len(c.ServerKey) != h().Size() {
				return nil, fmt.Errorf("user %q: malformed %s credential", name, m)
			}
		}
	}
	if f.Users == nil {
		f.Users = map[string]map[Mechanism]Credential{}
	}
	return f.Users, nil
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameBytes {
		return fmt.Errorf("user name of %d bytes: want 1 to %d", len(name), maxNameBytes)
	}
	return nil
}

// saveLocked writes the store.
func (u *Users) saveLocked() error {
	b, err := json.MarshalIndent(usersFile{Version: 1, Users: u.users}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(u.path, b); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if err := os.Chmod(u.path, 0o600); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if fi, err := os.Stat(u.path); err == nil {
		u.modTime, u.size = fi.ModTime(), fi.Size()
	}
	return nil
}

// SetPassword stores a credential for name derived from password with a fresh
// random salt (the broker's `users add` command).
func (u *Users) SetPassword(name string, m Mechanism, password string, iterations int) error {
	if password == "" {
		return errors.New("empty password")
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	salted, err := saltPassword(m, password, salt, iterations)
	if err != nil {
		return err
	}
	return u.SetSalted(name, m, salt, salted, iterations)
}

// SetSalted stores a credential from a salted password, as
// AlterUserScramCredentials carries it.
func (u *Users) SetSalted(name string, m Mechanism, salt, salted []byte, iterations int) error {
	if err := checkName(name); err != nil {
		return err
	}
	if iterations < MinIterations || iterations > MaxIterations {
		return fmt.Errorf("%d iterations: want %d to %d", iterations, MinIterations, MaxIterations)
	}
	if len(salt) == 0 || len(salt) > 1024 {
		return fmt.Errorf("salt of %d bytes: want 1 to 1024", len(salt))
	}
	c, err := deriveCredential(m, salt, salted, iterations)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return err
	}
	if u.users[name] == nil {
		if len(u.users) >= maxUsers {
			return fmt.Errorf("already %d users", maxUsers)
		}
		u.users[name] = map[Mechanism]Credential{}
	}
	u.users[name][m] = c
	return u.saveLocked()
}

// ErrNoCredential is returned by Delete for a user without that mechanism.
var ErrNoCredential = errors.New("no such credential")

// Delete removes name's credential for m.
func (u *Users) Delete(name string, m Mechanism) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return err
	}
	if _, ok := u.users[name][m]; !ok {
		return ErrNoCredential
	}
	delete(u.users[name], m)
	if len(u.users[name]) == 0 {
		delete(u.users, name)
	}
	return u.saveLocked()
}

// Lookup returns name's credential for m.
func (u *Users) Lookup(name string, m Mechanism) (Credential, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return Credential{}, false, err
	}
	c, ok := u.users[name][m]
	return c, ok, nil
}

// UserInfo is what may be told of a user: mechanisms and iterations.
type UserInfo struct {
	Name       string
	Mechanisms map[Mechanism]int // iterations
}

// List returns every user, sorted by name.
func (u *Users) List() ([]UserInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(u.users))
	for name, mechs := range u.users {
		info := UserInfo{Name: name, Mechanisms: map[Mechanism]int{}}
		for m, c := range mechs {
			info.Mechanisms[m] = c.Iterations
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CheckPassword reports whether password is name's, checked against one of its
// SCRAM credentials (PLAIN has no credential of its own: a user's SCRAM
// password is its PLAIN password). The comparison takes constant time.
func (u *Users) CheckPassword(name, password string) (bool, error) {
	for _, m := range []Mechanism{ScramSHA512, ScramSHA256} {
		c, ok, err := u.Lookup(name, m)
		if err != nil || !ok {
			if err != nil {
				return false, err
			}
			continue
		}
		salted, err := saltPassword(m, password, c.Salt, c.Iterations)
		if err != nil {
			return false, err
		}
		got, err := deriveCredential(m, c.Salt, salted, c.Iterations)
		if err != nil {
			return false, err
		}
		return subtle.ConstantTimeCompare(got.StoredKey, c.StoredKey) == 1, nil
	}
	return false, nil
}
