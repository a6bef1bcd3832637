package broker

import (
	"testing"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

// FuzzLoadConfig loads any file as broker.ini: an error or a config, never a crash,
// and at most a bounded cost per input byte (ini.v1 builds a few hundred bytes of
// structures per line).
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("[server]\nlisten = 127.0.0.1:9092\n[log]\ndir = /tmp/x\nsegment_bytes = 1048576\n[metrics]\nlisten =\npprof = true\nread_timeout = 1s\n"))
	f.Add([]byte("[metrics]\nlisten = %(pprof)s\npprof = %(listen)s\n"))
	fuzzbound.Ini.FuzzFile(f, func(path string) { LoadConfig(path) })
}
