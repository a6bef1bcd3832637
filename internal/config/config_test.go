package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type testConfig struct {
	Server struct {
		Listen string `ini:"listen"`
		Port   int    `ini:"port"`
	} `ini:"server"`
	Log struct {
		Dir       string `ini:"dir"`
		Retention int64  `ini:"retention_bytes"`
		Create    bool   `ini:"auto_create"`
	} `ini:"log"`
}

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.ini")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKeepsDefaults(t *testing.T) {
	var c testConfig
	c.Server.Listen = "127.0.0.1:1"
	c.Log.Retention = -1
	c.Log.Create = true
	p := write(t, "[server]\nport = 9 ; inline comment\nlisten =\n[log]\ndir = /tmp/x\nauto_create = false\n")
	if err := Load(p, &c); err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "" || c.Server.Port != 9 || c.Log.Dir != "/tmp/x" || c.Log.Retention != -1 || c.Log.Create {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadRejectsUnknown(t *testing.T) {
	for _, text := range []string{
		"[server]\nlisten_addr = x\n",
		"[serve]\nlisten = x\n",
		"listen = x\n",
	} {
		var c testConfig
		err := Load(write(t, text), &c)
		if err == nil || !strings.Contains(err.Error(), "c.ini") {
			t.Errorf("%q: err = %v, want an error naming the file", text, err)
		}
	}
}

func TestLoadBadValue(t *testing.T) {
	var c testConfig
	if err := Load(write(t, "[server]\nport = nine\n"), &c); err == nil {
		t.Fatal("want error for non-numeric port")
	}
}

func TestLoadMissingFile(t *testing.T) {
	var c testConfig
	if err := Load(filepath.Join(t.TempDir(), "none.ini"), &c); err == nil {
		t.Fatal("want error for missing file")
	}
}

func TestSplitList(t *testing.T) {
	got := SplitList(" a, b,,c ,")
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("got %q", got)
	}
	if SplitList("") != nil {
		t.Fatal("empty list should be nil")
	}
}
