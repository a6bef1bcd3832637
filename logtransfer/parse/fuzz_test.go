package parse

import (
	"testing"
	"time"
)

var fuzzSeeds = []string{
	`10.0.0.2, 10.0.0.1, 85.181.35.98 - - [10/Oct/2000:13:55:36 -0700] "GET /a\"b HTTP/1.1" 200 1 "-" "ua" "1.1.1.1, 2.2.2.2"`,
	`example.com:443 ::1 - - [10/Oct/2000:13:55:36 -0700] "-" 400 -`,
	`2024/03/05 10:11:12 [error] 1234#5678: *99 open() failed`,
	`[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 140000] [client ::1:5678] AH00126: Invalid URI`,
	`<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 [a@1 iut="3\]" x="\"y"][b] msg`,
	`<34>Oct  1 22:14:15 host sudo[1]:  alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls`,
	`2026-12-04T21:13:00.123456+01:00 host sshd[123]: Failed password for invalid user a from 1.2.3.4 port 22 ssh2`,
	`Dec 31 2023 23:59:59 host sshd: Accepted publickey for b from ::1 port 1 ssh2: RSA SHA256:x`,
	`-- MARK --`,
}

// FuzzBuiltin runs every built-in parser on random lines.
func FuzzBuiltin(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range benchLines {
		f.Add([]byte(s))
	}
	in := Input{Location: paris, Read: time.Date(2024, 1, 1, 0, 30, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev Event
		for _, name := range Builtin() {
			ev.Reset()
			if err := builtins[name].Parse(line, in, &ev); err != nil {
				if err.Error() == "" {
					t.Fatalf("%s: empty error", name)
				}
				continue
			}
			checkEvent(t, &ev)
		}
	})
}

// FuzzCompile compiles random specs and runs them on random lines.
func FuzzCompile(f *testing.F) {
	f.Add(uint8(0), `^(?P<source.ip>\S+) (?P<http.response.status_code>\d+) (?P<message>.*)`, []byte(`1.2.3.4 200 hi`))
	f.Add(uint8(1), `[%{ts}] %{log.level->} %{?x} %{a.b}`, []byte(`[2024-03-05T10:11:12Z] INFO   x y`))
	f.Add(uint8(2), ``, []byte(`a=1 b="x \" y" c ts=1709633472`))
	f.Add(uint8(3), ``, []byte(`{"a":{"b":[1,{"c":2}]},"ts":"2024-03-05T10:11:12Z","d":"\ud800"}`))
	f.Add(uint8(4), `(?<a>[(?P<x>])\Q(?P<\E`, []byte(`((?P<`))
	f.Add(uint8(5), `%{a} %{b->}|%{c}`, []byte(`1 2|||3`))
	kinds := []string{"regex", "dissect", "logfmt", "json"}
	f.Fuzz(func(t *testing.T, k uint8, pattern string, line []byte) {
		s := Spec{Parser: kinds[k%4], Pattern: pattern}
		if s.Parser == "logfmt" || s.Parser == "json" {
			s.Pattern = ""
			if k&4 != 0 {
				s.Target = "t"
			}
			if k&8 != 0 {
				s.TimeField = "ts"
				s.TimeLayout = []string{"unix", "rfc3339", "unix_ms", "httpdate"}[k>>4%4]
			}
			if k&64 != 0 {
				s.Types = map[string]string{"a": "long", "t.a": "ip", "b": "double", "t.b": "boolean"}
			}
		}
		p, err := Compile(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		var ev Event
		if err := p.Parse(line, Input{Location: paris}, &ev); err == nil {
			checkEvent(t, &ev)
		}
		ev.Reset()
		if err := p.Parse(append(line, line...), Input{}, &ev); err == nil {
			checkEvent(t, &ev)
		}
	})
}
