package logtransfer

import (
	"slices"
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
	fuzzbound.Ini.FuzzFile(f, func(path string) { LoadConfig(path) })
}

// FuzzParseTopics parses any [kafka] topics value (names and /expressions/): an
// error or a list, never a crash, at a bounded cost per byte; what it returns
// resolves without matching internal or dead-letter topics.
func FuzzParseTopics(f *testing.F) {
	for _, s := range []string{`web_log,app_log`, `/.*_log$/`, `a, /x{1,3}/ ,b`, `/a/b/`, `//`, `/(/`, `/.*/,/[/`} {
		f.Add(s)
	}
	bound := fuzzbound.Bound{Fixed: 256 << 10, PerByte: 4096, Time: 2 * time.Second}
	f.Fuzz(func(t *testing.T, s string) {
		bound.Check(t, len(s), func() {
			tp, err := ParseTopics(s, "{topic}.dlq")
			if err != nil {
				return
			}
			for _, name := range tp.Resolve([]string{"__consumer_offsets", "x.dlq", "web_log"}) {
				if tp.Excluded(name) && !slices.Contains(tp.Names, name) {
					t.Fatalf("%q resolved to excluded %q", s, name)
				}
			}
		})
	})
}
