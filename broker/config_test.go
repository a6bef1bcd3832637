package broker_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/broker"
)

// TestShippedConfig checks that conf/broker.ini loads and documents exactly the
// defaults.
func TestShippedConfig(t *testing.T) {
	cfg, err := broker.LoadConfig(filepath.Join("..", "conf", "broker.ini"))
	if err != nil {
		t.Fatal(err)
	}
	def := broker.DefaultConfig()
	def.Server.Advertised = "127.0.0.1:9092" // the contract's example sets it
	if !reflect.DeepEqual(cfg, def) {
		t.Fatalf("conf/broker.ini differs from DefaultConfig:\n file %+v\n code %+v", cfg, def)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "b.ini")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := broker.LoadConfig(write("[server]\nlisten = 0.0.0.0:19092\nadvertised = kafka.example:19092\n[log]\nnum_partitions = 12\nretention_hours = -1\nsegment_bytes = 1048576\n[metrics]\nlisten =\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "0.0.0.0:19092" || cfg.Log.NumPartitions != 12 || cfg.Log.RetentionHours != -1 || cfg.Metrics.Listen != "" ||
		cfg.Server.ShutdownTimeout != 5*time.Second || cfg.Log.Dir != "./data/broker" {
		t.Fatalf("%+v", cfg)
	}
	for ini, want := range map[string]string{
		"[server]\nlisten = x\nbogus = 1\n":      `unknown key "bogus"`,
		"[kafka]\nbrokers = x\n":                 "unknown section [kafka]",
		"[log]\nnum_partitions = 0\n":            "num_partitions",
		"[log]\nretention_hours = 0\n":           "retention_hours",
		"[server]\nadvertised = nocolon\n":       "advertised",
		"[server]\nmax_request_bytes = 10\n":     "max_request_bytes",
		"[log]\nauto_create_topics = maybe\n":    "auto_create_topics",
		"[server]\nshutdown_timeout = forever\n": "shutdown_timeout",
		"[log]\nmax_message_bytes = 999999999\n": "max_message_bytes",
	} {
		if _, err := broker.LoadConfig(write(ini)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to mention %q", ini, err, want)
		}
	}
}
