package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

type fuzzConfig struct {
	A struct {
		S string        `ini:"s"`
		T string        `ini:"t"`
		U string        `ini:"u"`
		I int64         `ini:"i"`
		B bool          `ini:"b"`
		D time.Duration `ini:"d"`
	} `ini:"a"`
	B struct {
		L string  `ini:"list"`
		F float64 `ini:"f"`
	} `ini:"b"`
}

// iniBound is what loading one ini file may cost: ini.v1 builds a few hundred bytes
// of structures per line, and the file is at most MaxFileBytes.
var iniBound = fuzzbound.Bound{Fixed: 256 << 10, PerByte: 1024, Time: 2 * time.Second}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("[a]\ns = x ; comment\ni = -3\nb = true\nd = 1m30s\n[b]\nlist = a, b\nf = 1.5\n"))
	f.Add([]byte("[a]\ns = \"\"\"\nmulti\nline\"\"\"\nt = %(u)s\nu = v\n"))
	f.Add([]byte("[a]\nd = 0s\ns =\n"))
	f.Add([]byte("[a]\nt = %(u)s\nu = %(t)s\n"))
	path := filepath.Join(f.TempDir(), "fuzz.ini")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		iniBound.Check(t, len(data), func() {
			var c fuzzConfig
			Load(path, &c)
		})
	})
}

// ini.v1 expands %(key)s references, recursively and without a bound: two keys naming
// each other overflowed the stack (a fatal error), and a few keys doubling each other
// allocated 2^99 bytes. The loader refuses them.
func TestLoadRefusesInterpolation(t *testing.T) {
	for _, text := range []string{
		"[a]\nt = %(u)s\nu = %(t)s\n",
		"[a]\ns = %(t)s%(t)s\nt = %(u)s%(u)s\nu = %(t)s%(t)s\n",
		"[a]\ns = 100%(t)s\nt = x\n",
	} {
		iniBound.Check(t, len(text), func() {
			var c fuzzConfig
			err := Load(write(t, text), &c)
			if err == nil || !strings.Contains(err.Error(), "%(") {
				t.Errorf("%q: err = %v", text, err)
			}
		})
	}
	// A lone percent sign is fine.
	var c fuzzConfig
	if err := Load(write(t, "[a]\ns = 100%\n"), &c); err != nil || c.A.S != "100%" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestLoadRefusesHugeFile(t *testing.T) {
	var c fuzzConfig
	text := "[a]\n" + strings.Repeat("; comment\n", MaxFileBytes/10+1)
	if err := Load(write(t, text), &c); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}
