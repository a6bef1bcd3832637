package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/broker"
)

func TestUsersCommand(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Log.Dir = t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	var out bytes.Buffer
	if err := command(cfg, []string{"users", "add", "admin", "--password-file", pw}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := command(cfg, []string{"users", "list"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "admin") || !strings.Contains(out.String(), "SCRAM-SHA-512(8192)") {
		t.Fatalf("list: %q", out.String())
	}
	if err := command(cfg, []string{"users", "add", "x"}, &out); err == nil {
		t.Fatal("add without a password file")
	}
	if err := command(cfg, []string{"users", "delete", "admin"}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	command(cfg, []string{"users", "list"}, &out)
	if out.Len() != 0 {
		t.Fatalf("after delete: %q", out.String())
	}
	b, _ := os.ReadFile(filepath.Join(cfg.Log.Dir, "users.json"))
	if bytes.Contains(b, []byte("s3cret")) {
		t.Fatal("users.json holds the password")
	}
}
