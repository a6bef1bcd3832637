package logagent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

// FuzzLoadConfig loads any file as logagent.ini: an error or a config, never a crash,
// and at most a bounded cost per input byte (ini.v1 builds a few hundred bytes of
// structures per line).
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("[agent]\nhost = web-1\nmax_line_bytes = 1000\n[kafka]\ncompression = zstd\n[metrics]\npprof = false\nidle_timeout = 5s\n"))
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
