package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/internal/logging"
)

// TestUsersAndACLs manages SCRAM users and ACLs as an admin over SASL, against
// a broker with authorization on: the new user logs in; the ACLs listed are the
// ones added; removed ones are gone.
func TestUsersAndACLs(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Server.Listeners = "SASL_PLAINTEXT://127.0.0.1:0"
	cfg.Server.ShutdownTimeout = time.Second
	cfg.Log.Dir = t.TempDir()
	cfg.Metrics.Listen = ""
	cfg.ACL = broker.ACLConfig{Enabled: true, SuperUsers: "User:admin"}
	users, err := sasl.OpenUsers(cfg.Log.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword("admin", sasl.ScramSHA512, "admin-pw", sasl.MinIterations); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	addr := b.ListenerAddr(server.SASLPlaintext)

	dir := t.TempDir()
	ini := func(user, pw string) string {
		pwFile := filepath.Join(dir, user+".pw")
		os.WriteFile(pwFile, []byte(pw+"\n"), 0o600)
		path := filepath.Join(dir, user+".ini")
		os.WriteFile(path, []byte("[kafka]\nbrokers = "+addr+"\nsasl_mechanism = SCRAM-SHA-512\nusername = "+user+"\npassword_file = "+pwFile+"\n"), 0o600)
		return path
	}
	admin := ini("admin", "admin-pw")
	run := func(config string, args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := runWith(append([]string{"--config", config}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	must := func(config string, args ...string) string {
		t.Helper()
		code, out, errOut := run(config, args...)
		if code != 0 {
			t.Fatalf("logpipectl %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}

	pw := filepath.Join(dir, "agent.pw")
	os.WriteFile(pw, []byte("agent-pw\n"), 0o600)
	must(admin, "users", "add", "agent", "--password-file", pw)
	if out := must(admin, "users", "list"); !strings.Contains(out, "agent") || !strings.Contains(out, "SCRAM-SHA-512(8192)") || strings.Contains(out, "agent-pw") {
		t.Fatalf("users list:\n%s", out)
	}
	agent := ini("agent", "agent-pw")

	// Without an ACL the agent sees no topic; with one it does.
	must(admin, "topics", "create", "logs-web", "--partitions", "1")
	if out := must(agent, "topics", "list"); strings.Contains(out, "logs-web") {
		t.Fatalf("the agent sees logs-web without an ACL:\n%s", out)
	}
	must(admin, "acls", "add", "--principal", "User:agent", "--topic", "logs-", "--prefixed", "--operation", "Write,Describe")
	if out := must(admin, "acls", "list"); !strings.Contains(out, "User:agent") || !strings.Contains(out, "PREFIXED") || !strings.Contains(out, "WRITE") {
		t.Fatalf("acls list:\n%s", out)
	}
	if out := must(agent, "topics", "list"); !strings.Contains(out, "logs-web") {
		t.Fatalf("the agent does not see logs-web with an ACL:\n%s", out)
	}
	// The agent may not manage ACLs or users.
	if code, _, _ := run(agent, "acls", "add", "--principal", "User:agent", "--cluster", "--operation", "All"); code == 0 {
		t.Fatal("the agent added an ACL")
	}
	if code, _, _ := run(agent, "users", "add", "mallory", "--password-file", pw); code == 0 {
		t.Fatal("the agent added a user")
	}
	if out := must(admin, "acls", "remove", "--principal", "User:agent", "--topic", "logs-", "--prefixed", "--operation", "Write,Describe"); !strings.Contains(out, "removed 2") {
		t.Fatalf("acls remove: %s", out)
	}
	if out := must(agent, "topics", "list"); strings.Contains(out, "logs-web") {
		t.Fatalf("the agent still sees logs-web:\n%s", out)
	}
	must(admin, "users", "delete", "agent")
	if code, _, _ := run(agent, "topics", "list"); code == 0 {
		t.Fatal("a deleted user still logs in")
	}
}
