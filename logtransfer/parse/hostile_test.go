package parse

import (
	"strings"
	"testing"
	"time"
)

// TestHostileLinear: long crafted lines cost time linear in their length (a
// quadratic scan of a 1 MiB line would take seconds, not milliseconds).
func TestHostileLinear(t *testing.T) {
	const n = 1 << 20
	lines := []string{
		strings.Repeat("1.2.3.4, ", n/9) + "- - [",
		`1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "` + strings.Repeat(`\"`, n/2),
		`1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET ` + strings.Repeat("a ", n/2) + `HTTP/1.1" 200 1 "` + strings.Repeat("x", n) + `" "-" "` + strings.Repeat("1,", n/2) + `"`,
		`<13>1 - h a - - ` + strings.Repeat(`[a x="1" x="2" y="\]"]`, n/22),
		`<13>1 - h a - - [a` + strings.Repeat(` x="1"`, n/6) + `]`,
		`<13>1 - h a - - ` + strings.Repeat(`[abcdefghijklmnopqrstuvwxyz0123456789`+`]`, n/40),
		`Mar  5 10:11:12 h sshd[1]: Invalid user ` + strings.Repeat(" from ", n/6),
		`Mar  5 10:11:12 h sudo[1]: a : ` + strings.Repeat("TTY=x ; ", n/8),
		`[Wed Oct 11 14:32:52 2000] [` + strings.Repeat(":", n),
		`2024/03/05 10:11:12 [error] 1#1: *` + strings.Repeat("9", n),
	}
	specs := []Spec{
		{Parser: "json"}, {Parser: "logfmt"}, {Parser: "dissect", Pattern: `%{a->} %{b} %{c}`},
		{Parser: "regex", Pattern: `(?P<a>(x+x+)+y)`},
	}
	custom := []string{
		`{` + strings.Repeat(`"k":1,`, n/6) + `"z":2}`,
		`{` + strings.Repeat(`"`+strings.Repeat("k", 100)+`":{`, 8) + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + strings.Repeat("}", 8) + `}`,
		strings.Repeat("a=1 ", n/4),
		strings.Repeat(" ", n) + "x y",
		strings.Repeat("x", n),
	}
	var ev Event
	check := func(p Parser, line string) {
		start := time.Now()
		ev.Reset()
		if p.Parse([]byte(line), Input{}, &ev) == nil {
			checkEvent(t, &ev)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("%T on %.40q...: %v", p, line, d)
		}
	}
	for _, line := range lines {
		for _, name := range Builtin() {
			check(builtins[name], line)
		}
	}
	for _, s := range specs {
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range append(custom, lines...) {
			check(p, line)
		}
	}
}
