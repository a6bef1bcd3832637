package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestLoadZeroDuration: a duration the file sets to 0 (or a negative value) is that
// value, not the default (ini.v1 alone keeps the default), and a bad one is an error.
func TestLoadZeroDuration(t *testing.T) {
	var c struct {
		G struct {
			Delay time.Duration `ini:"delay"`
			Wait  time.Duration `ini:"wait"`
			Keep  time.Duration `ini:"keep"`
		} `ini:"g"`
	}
	c.G.Delay, c.G.Wait, c.G.Keep = 3*time.Second, time.Second, 5*time.Second
	if err := Load(write(t, "[g]\ndelay = 0s\nwait = -2s\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.G.Delay != 0 || c.G.Wait != -2*time.Second || c.G.Keep != 5*time.Second {
		t.Fatalf("got %+v", c.G)
	}
	if err := Load(write(t, "[g]\ndelay = soon\n"), &c); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}

func TestEmbeddedKeys(t *testing.T) {
	type shared struct {
		TLS      bool   `ini:"tls"`
		CAFile   string `ini:"ca_file"`
		Attempts int    `ini:"attempts"`
	}
	var v struct {
		Kafka struct {
			Brokers string `ini:"brokers"`
			shared  `ini:"-"`
		} `ini:"kafka"`
	}
	path := filepath.Join(t.TempDir(), "x.ini")
	os.WriteFile(path, []byte("[kafka]\nbrokers = a:1\ntls = true\nca_file = /ca.pem\nattempts = 3\n"), 0o600)
	if err := Load(path, &v); err != nil {
		t.Fatal(err)
	}
	if v.Kafka.Brokers != "a:1" || !v.Kafka.TLS || v.Kafka.CAFile != "/ca.pem" || v.Kafka.Attempts != 3 {
		t.Fatalf("%+v", v.Kafka)
	}
	os.WriteFile(path, []byte("[kafka]\ntls = maybe\n"), 0o600)
	if err := Load(path, &v); err == nil {
		t.Fatal("tls = maybe accepted")
	}
}

// TestPrefixedSections: [dataset.NAME] sections fill a map by NAME, with their keys
// checked; a value in backquotes keeps " #" and " ;".
func TestPrefixedSections(t *testing.T) {
	type ds struct {
		Parser  string        `ini:"parser"`
		Pattern string        `ini:"pattern"`
		Timeout time.Duration `ini:"timeout"`
	}
	var c struct {
		Server struct {
			Listen string `ini:"listen"`
		} `ini:"server"`
		Datasets map[string]ds `ini:"dataset.*"`
	}
	p := write(t, "[server]\nlisten = x\n[dataset.myapp]\nparser = regex\npattern = `^(?P<a>\\S+) #(?P<b>\\d+) ;x`\ntimeout = 0s\n[dataset.other.v2]\nparser = logfmt\n")
	if err := Load(p, &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]ds{"myapp": {Parser: "regex", Pattern: `^(?P<a>\S+) #(?P<b>\d+) ;x`}, "other.v2": {Parser: "logfmt"}}
	if !reflect.DeepEqual(c.Datasets, want) || c.Server.Listen != "x" {
		t.Fatalf("%+v", c)
	}
	for text, msg := range map[string]string{
		"[dataset.x]\nparsr = regex\n": `unknown key "parsr" in section [dataset.x]`,
		"[dataset.]\nparser = regex\n": "has no name",
		"[datasets.x]\nparser = r\n":   "unknown section [datasets.x]",
	} {
		c.Datasets = nil
		if err := Load(write(t, text), &c); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", text, err, msg)
		}
	}
	var many strings.Builder
	for i := range MaxPrefixedSections + 1 {
		many.WriteString("[dataset.d" + strconv.Itoa(i) + "]\nparser = json\n")
	}
	if err := Load(write(t, many.String()), &c); err == nil || !strings.Contains(err.Error(), "more than 256") {
		t.Errorf("too many sections: %v", err)
	}
}
