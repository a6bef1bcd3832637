package sasl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

// scramLogin runs a whole SCRAM exchange with xdg-go's client.
func scramLogin(t *testing.T, a *Authenticator, m Mechanism, user, password string) error {
	t.Helper()
	gen := scram.SHA512
	if m == ScramSHA256 {
		gen = scram.SHA256
	}
	cl, err := gen.NewClient(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	x, err := a.Start(string(m))
	if err != nil {
		return err
	}
	msg, err := conv.Step("")
	for err == nil {
		out, done, serr := x.Step([]byte(msg))
		if serr != nil {
			return serr
		}
		msg, err = conv.Step(string(out))
		if done {
			if err != nil {
				return err
			}
			if !conv.Valid() {
				return errors.New("client: server not valid")
			}
			if x.User() != user {
				t.Fatalf("exchange user %q, want %q", x.User(), user)
			}
			return nil
		}
	}
	return err
}

func TestScramAndPlain(t *testing.T) {
	dir := t.TempDir()
	users, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword("alice", ScramSHA512, "s3cret", DefaultIterations); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword("bob", ScramSHA256, "hunter2", MinIterations); err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(users, []Mechanism{ScramSHA512, ScramSHA256, Plain})
	if err != nil {
		t.Fatal(err)
	}
	if err := scramLogin(t, a, ScramSHA512, "alice", "s3cret"); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := scramLogin(t, a, ScramSHA256, "bob", "hunter2"); err != nil {
		t.Fatalf("bob: %v", err)
	}
	for name, err := range map[string]error{
		"wrong password":     scramLogin(t, a, ScramSHA512, "alice", "guess"),
		"unknown user":       scramLogin(t, a, ScramSHA512, "mallory", "x"),
		"other mechanism":    scramLogin(t, a, ScramSHA256, "alice", "s3cret"),
		"plain wrong":        plainLogin(a, "alice", "guess"),
		"plain unknown user": plainLogin(a, "nobody", "x"),
	} {
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: %v, want ErrAuthentication", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "guess") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	if err := plainLogin(a, "alice", "s3cret"); err != nil {
		t.Fatalf("PLAIN alice: %v", err)
	}
	if _, err := a.Start("GSSAPI"); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Fatalf("GSSAPI: %v", err)
	}

	// The file holds no password, and is private.
	b, _ := os.ReadFile(filepath.Join(dir, "users.json"))
	if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "hunter2") {
		t.Fatal("users.json holds a password")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "users.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("users.json mode %v", fi.Mode().Perm())
	}

	// A second store on the same directory (the `users add` command beside a
	// running broker) changes what the first one authenticates.
	other, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetPassword("carol", ScramSHA512, "pw-carol", DefaultIterations); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete("bob", ScramSHA256); err != nil {
		t.Fatal(err)
	}
	if err := scramLogin(t, a, ScramSHA512, "carol", "pw-carol"); err != nil {
		t.Fatalf("carol, added by another process: %v", err)
	}
	if err := scramLogin(t, a, ScramSHA256, "bob", "hunter2"); err == nil {
		t.Fatal("bob, deleted by another process, still logs in")
	}
	list, _ := users.List()
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "carol" || list[0].Mechanisms[ScramSHA512] != DefaultIterations {
		t.Fatalf("List = %+v", list)
	}
}

func plainLogin(a *Authenticator, user, password string) error {
	x, err := a.Start("PLAIN")
	if err != nil {
		return err
	}
	_, _, err = x.Step([]byte("\x00" + user + "\x00" + password))
	return err
}

// FuzzParseUsers: whatever users.json holds, loading it ends in a clear error or
// a store whose every credential is well-formed, and costs about its size.
func FuzzParseUsers(f *testing.F) {
	f.Add([]byte(`{"version":1,"users":{"a":{"SCRAM-SHA-256":{"salt":"c2FsdA==","iterations":4096,"stored_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","server_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		users, err := parseUsers(b)
		if err != nil {
			return
		}
		for name, mechs := range users {
			for m, c := range mechs {
				h, err := hashFor(m)
				if err != nil || c.Iterations < MinIterations || len(c.StoredKey) != h().Size() {
					t.Fatalf("accepted a malformed credential for %q: %+v", name, c)
				}
			}
		}
	})
}

// FuzzSCRAMServer: any client messages end the exchange with an answer or an
// error, never a panic, and never authenticate without the password.
func FuzzSCRAMServer(f *testing.F) {
	f.Add("n,,n=alice,r=abc", "c=biws,r=abc,p=AAAA")
	f.Add("n,,n=al=3Dice,r=x,m=ext", "c=eSws,r=x,p=")
	dir := f.TempDir()
	users, err := OpenUsers(dir)
	if err != nil {
		f.Fatal(err)
	}
	if err := users.SetPassword("alice", ScramSHA256, "pw", MinIterations); err != nil {
		f.Fatal(err)
	}
	a, _ := NewAuthenticator(users, []Mechanism{ScramSHA256})
	f.Fuzz(func(t *testing.T, first, final string) {
		x, _ := a.Start(string(ScramSHA256))
		if _, done, err := x.Step([]byte(first)); done || err != nil {
			return
		}
		if _, _, err := x.Step([]byte(final)); err == nil {
			t.Fatalf("authenticated without the password: %q %q", first, final)
		}
	})
}
