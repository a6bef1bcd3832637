package logtransfer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

// FuzzLoadConfig loads any file as logtransfer.ini: an error or a config, never a crash,
// and at most a bounded cost per input byte (ini.v1 builds a few hundred bytes of
// structures per line).
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("[kafka]\nbrokers = a:1, b:2\n[metrics]\nlisten = 127.0.0.1:0\nmax_header_bytes = 1024\n"))
	f.Add([]byte("[metrics]\nlisten = %(pprof)s\npprof = %(listen)s\n"))
	path := filepath.Join(f.TempDir(), "fuzz.ini")
	bound := fuzzbound.Bound{Fixed: 256 << 10, PerByte: 1024, Time: 2 * time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		bound.Check(t, len(data), func() { LoadConfig(path) })
	})
}
