package logagent

import (
	"testing"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

// FuzzLoadConfig loads any file as logagent.ini: an error or a config, never a crash,
// and at most a bounded cost per input byte (ini.v1 builds a few hundred bytes of
// structures per line).
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("[agent]\nhost = web-1\nmax_line_bytes = 1000\n[kafka]\ncompression = zstd\n[metrics]\npprof = false\nidle_timeout = 5s\n"))
	f.Add([]byte("[metrics]\nlisten = %(pprof)s\npprof = %(listen)s\n"))
	fuzzbound.Ini.FuzzFile(f, func(path string) { LoadConfig(path) })
}
