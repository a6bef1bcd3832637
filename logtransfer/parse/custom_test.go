package parse

import (
	"strings"
	"testing"
)

func compile(t *testing.T, s Spec) Parser {
	t.Helper()
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRegex(t *testing.T) {
	p := compile(t, Spec{Parser: "regex",
		Pattern:   `^(?P<source.ip>\S+) (?<http.response.status_code>\d+) (?P<app.ms>[\d.]+) (?P<app.flag>\w+)? ?\[(?P<ts>[^\]]+)\] (?P<message>.*)$`,
		TimeField: "ts", TimeLayout: "2006-01-02 15:04:05", Types: map[string]string{"app.ms": "double"}})
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "match", line: `1.2.3.4 200 1.50 yes [2024-03-05 10:11:12] the rest`,
			fields: `source.ip="1.2.3.4"
http.response.status_code=200
app.ms=1.5
app.flag="yes"
ts="2024-03-05 10:11:12"`, time: "2024-03-05T10:11:12+01:00", msg: msg("the rest")},
		{name: "empty group", line: `1.2.3.4 200 1 [2024-03-05 10:11:12] x`,
			fields: `source.ip="1.2.3.4"
http.response.status_code=200
app.ms=1
ts="2024-03-05 10:11:12"`, time: "2024-03-05T10:11:12+01:00", msg: msg("x")},
		{name: "no match", line: `garbage`, err: "does not match the pattern"},
		{name: "bad ip", line: `nope 200 1 [2024-03-05 10:11:12] x`, err: `field source.ip: "nope" is not an IP address`},
		{name: "bad time", line: `1.2.3.4 200 1 [yesterday] x`, err: `time field ts: "yesterday" does not match layout`},
		{name: "bad double", line: `1.2.3.4 200 1.2.3 [2024-03-05 10:11:12] x`, err: `field app.ms: "1.2.3" is not a double`},
		{name: "long overflow", line: `1.2.3.4 99999999999999999999 1 [2024-03-05 10:11:12] x`, err: "is not a long"},
	})
}

func TestDissect(t *testing.T) {
	p := compile(t, Spec{Parser: "dissect", Pattern: `[%{ts}] %{log.level->} %{?skip} %{} pid=%{process.pid} <%{message}>`,
		TimeField: "ts", TimeLayout: "rfc3339"})
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "padded", line: `[2024-03-05T10:11:12.5Z] INFO    a b pid=42 <hello <world>>`,
			fields: `ts="2024-03-05T10:11:12.5Z"
log.level="INFO"
process.pid=42`, time: "2024-03-05T10:11:12.5Z", msg: msg("hello <world>")},
		{name: "local time", line: `[2024-03-05T10:11:12] WARN a b pid=1 <>`,
			fields: `ts="2024-03-05T10:11:12"
log.level="WARN"
process.pid=1`, time: "2024-03-05T10:11:12+01:00"},
		{name: "no prefix", line: `2024 INFO a b pid=1 <x>`, err: `expected "[" at byte 0`},
		{name: "missing delimiter", line: `[2024-03-05T10:11:12Z] INFO`, err: `expected " " at byte 23`},
		{name: "no suffix", line: `[2024-03-05T10:11:12Z] INFO a b pid=1 <x`, err: `expected the line to end with ">"`},
		{name: "bad pid", line: `[2024-03-05T10:11:12Z] INFO a b pid=x <x>`, err: `field process.pid: "x" is not a long`},
	})
	p = compile(t, Spec{Parser: "dissect", Pattern: `%{a},%{b}`})
	runTable(t, p, in, []tc{
		{name: "last takes the rest", line: `1,2,3`, fields: "a=\"1\"\nb=\"2,3\""},
	})
}

func TestLogfmt(t *testing.T) {
	p := compile(t, Spec{Parser: "logfmt", Target: "app", TimeField: "ts", TimeLayout: "unix_ms",
		Types: map[string]string{"app.n": "long", "app.ok": "boolean"}})
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "pairs", line: `ts=1709633472123 level=info msg="quoted \"value\"\n" n=3 ok=true flag path=/x =stray "junk" n=4`,
			fields: `app.ts="1709633472123"
app.level="info"
app.msg="quoted \"value\"\n"
app.n=4
app.ok=true
app.flag="true"
app.path="/x"`, time: "2024-03-05T10:11:12.123Z"},
		{name: "empty value", line: `a= b=1`, fields: `app.b="1"`},
		{name: "no pairs", line: `just words`, err: "expected key=value at byte 0"},
		{name: "unterminated", line: `a="x`, err: "to end the quoted value"},
		{name: "bad long", line: `n=x`, err: `field app.n: "x" is not a long`},
		{name: "bad time", line: `ts=abc`, err: `time field ts: "abc" not a number`},
	})
}

func TestJSON(t *testing.T) {
	p := compile(t, Spec{Parser: "json", TimeField: "time", Types: map[string]string{"http.response.status_code": "long", "n": "keyword"}})
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "flatten", line: `{"time":"2024-03-05T10:11:12.345+01:00","log":{"level":"info","origin":{"file":{"line":3}}},"tags":["a", "b"],"n":5,` +
			`"http":{"response":{"status_code":"404"}},"x":null,"e":"\u00e9\ud83d\ude00\n","k\u002ey":true}`,
			fields: `time="2024-03-05T10:11:12.345+01:00"
log.level="info"
log.origin.file.line=3
tags=["a","b"]
n="5"
http.response.status_code=404
e="é😀\n"
k.y=true`, time: "2024-03-05T10:11:12.345+01:00"},
		{name: "deep", line: `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i": 1}}}}}}}}}`,
			fields: `a.b.c.d.e.f.g.h={"i":1}`},
		{name: "duplicate keeps last", line: `{"a":1,"a":2}`, fields: `a=2`},
		{name: "not object", line: `[1,2]`, err: "expected a JSON object at byte 0"},
		{name: "invalid", line: `{"a":}`, err: "expected valid JSON"},
		{name: "bad type", line: `{"http":{"response":{"status_code":"abc"}}}`, err: `field http.response.status_code: "abc" is not a long`},
		{name: "bad time", line: `{"time":"noon"}`, err: "time field time"},
	})
	// Target, and a conflict between a value and an object.
	p = compile(t, Spec{Parser: "json", Target: "app"})
	var ev Event
	if err := p.Parse([]byte(`{"a":"x","a.b":"y","ok":1}`), in, &ev); err != nil {
		t.Fatal(err)
	}
	if got := render(&ev); got != "app.a=\"x\"\napp.ok=1\n" || strings.Join(ev.Tags, ",") != TagFieldDropped {
		t.Errorf("got %q tags %v", got, ev.Tags)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		err  string
	}{
		{Spec{}, "parser: missing"},
		{Spec{Parser: "grok"}, `parser: "grok" is not`},
		{Spec{Parser: "regex"}, "pattern: missing"},
		{Spec{Parser: "regex", Pattern: `\d+`}, "no named group"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)(?P<a>y)`}, "appears twice"},
		{Spec{Parser: "regex", Pattern: `(?P<a..b>x)`}, "not a dotted field name"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x`}, "pattern: error parsing regexp"},
		{Spec{Parser: "regex", Pattern: `(?P<a>` + strings.Repeat("x", 5000) + `)`}, "longer than 4096 bytes"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)`, Types: map[string]string{"b": "long"}}, "types: b is not a field"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)`, Types: map[string]string{"a": "int"}}, `"int" is not long`},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)`, TimeField: "b"}, "time field: b is not a field"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)`, TimeField: "a", TimeLayout: "yyyy-mm-dd"}, "has no element"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)`, TimeLayout: "unix"}, "without a time field"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)`, Timezone: "Mars/Olympus"}, "unknown time zone"},
		{Spec{Parser: "regex", Pattern: `(?P<a>x)`, Target: "t"}, "target: only for"},
		{Spec{Parser: "dissect", Pattern: `abc`}, "no %{field}"},
		{Spec{Parser: "dissect", Pattern: `%{a}%{b}`}, "no delimiter between"},
		{Spec{Parser: "dissect", Pattern: `%{a} %{a}`}, "appears twice"},
		{Spec{Parser: "dissect", Pattern: `%{a} %{b`}, "has no '}'"},
		{Spec{Parser: "dissect", Pattern: `%{+a} %{b}`}, "not supported"},
		{Spec{Parser: "dissect", Pattern: `%{a->}`}, "no delimiter after it"},
		{Spec{Parser: "dissect", Pattern: `%{} %{?x}`}, "every field is skipped"},
		{Spec{Parser: "json", Pattern: `x`}, "only for the regex and dissect"},
		{Spec{Parser: "json", Target: ".x"}, "target:"},
	} {
		_, err := Compile(c.spec)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.err)
		}
	}
	// Names in character classes and quoted text are not groups.
	p := compile(t, Spec{Parser: "regex", Pattern: `[(?P<x>]\Q(?P<y>\E(?P<a.b>z)`})
	var ev Event
	if err := p.Parse([]byte("((?P<y>z"), Input{}, &ev); err != nil || render(&ev) != "a.b=\"z\"\n" {
		t.Errorf("%v %q", err, render(&ev))
	}
}

func TestSet(t *testing.T) {
	s, err := NewSet(map[string]Spec{
		"myapp":        {Parser: "regex", Pattern: `(?P<app.user>\w+) (?P<source.port>\d+)`, Timezone: "+05:30"},
		"nginx.access": {Parser: "json"}, // replaces the built-in
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup("myapp"); !ok {
		t.Error("no myapp")
	}
	if p, _ := s.Lookup("nginx.access"); p == builtins["nginx.access"] {
		t.Error("nginx.access not replaced")
	}
	if _, ok := s.Lookup("nope"); ok {
		t.Error("nope found")
	}
	if z := s.Zone("myapp"); z == nil || z.String() != "+05:30" {
		t.Errorf("zone %v", z)
	}
	if s.Zone("system.syslog") != nil {
		t.Error("built-in zone")
	}
	m := s.Mappings()
	for f, want := range map[string]string{"app.user": "keyword", "source.port": "long", "source.ip": "ip",
		"log.syslog.structured_data": "flattened", "http.response.status_code": "long", "nginx.error.connection_id": "long"} {
		if m[f] != want {
			t.Errorf("mapping %s: %q, want %q", f, m[f], want)
		}
	}
	if _, ok := m["nginx.access.remote_ip_list"]; ok {
		t.Error("replaced built-in's fields mapped")
	}
	if got := strings.Join(Builtin(), " "); got != "apache.access apache.error nginx.access nginx.error system.auth system.syslog" {
		t.Error(got)
	}
	for _, c := range []struct {
		specs map[string]Spec
		err   string
	}{
		{map[string]Spec{"Bad-Name": {Parser: "json"}}, "a name is lowercase"},
		{map[string]Spec{"x": {Parser: "regex", Pattern: `(?P<source.ip>\S+)`, Types: map[string]string{"source.ip": "keyword"}}}, "field source.ip is keyword, but ip"},
		{map[string]Spec{"x": {Parser: "regex", Pattern: `(?P<source>\S+)`}}, "conflicts with field"},
		{map[string]Spec{"x": {Parser: "bad"}}, `dataset "x": parser`},
	} {
		if _, err := NewSet(c.specs); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: %v, want %q", c.specs, err, c.err)
		}
	}
}

func TestEventLimits(t *testing.T) {
	var ev Event
	long := strings.Repeat("é", MaxValueBytes) // twice the limit in bytes
	ev.AddString("a", []byte(long))
	if v := ev.Get("a"); len(v) != MaxValueBytes+2 || !strings.HasSuffix(string(v), "é\"") {
		t.Errorf("cut to %d bytes", len(v))
	}
	ev.AddString("bad", []byte("x\xff\x00\n\"\\y"))
	if got := string(ev.Get("bad")); got != `"x`+"\uFFFD"+`\u0000\n\"\\y"` {
		t.Errorf("%s", got)
	}
	ev.AddRaw("big", []byte(`"`+strings.Repeat("x", MaxValueBytes)+`"`))
	ev.AddRaw("multi", []byte("{\"a\":\n1}"))
	ev.AddString("", nil)
	for i := 0; i < 2*MaxFields; i++ {
		ev.AddInt("f"+itoa(i), int64(i))
	}
	checkEvent(t, &ev)
	if len(ev.Fields) != MaxFields || ev.Get("big") != nil || string(ev.Get("multi")) != `{"a":1}` {
		t.Errorf("%d fields, big %q multi %q", len(ev.Fields), ev.Get("big"), ev.Get("multi"))
	}
	if strings.Join(ev.Tags, ",") != TagFieldTruncated+","+TagFieldDropped {
		t.Errorf("tags %v", ev.Tags)
	}
	ev.Reset()
	if len(ev.Fields) != 0 || len(ev.Tags) != 0 || ev.Message != nil || !ev.Time.IsZero() {
		t.Error("not reset")
	}
}
