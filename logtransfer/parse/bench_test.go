package parse

import (
	"testing"
	"time"
)

// benchLines is a typical line of each built-in dataset.
var benchLines = map[string]string{
	"nginx.access":  `93.184.216.34 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1&b=2 HTTP/1.1" 200 2326 "http://www.example.com/start.html" "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"`,
	"apache.access": `www.example.com:80 93.184.216.34 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 200 10 "-" "Mozilla/5.0"`,
	"nginx.error":   `2024/03/05 10:11:12 [error] 1234#5678: *99 open() "/usr/share/nginx/html/favicon.ico" failed (2: No such file or directory), client: 1.2.3.4, server: x, request: "GET /favicon.ico HTTP/1.1", host: "x"`,
	"apache.error":  `[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 140000] [client 1.2.3.4:5678] AH00126: Invalid URI in request GET /../../ HTTP/1.1`,
	"system.syslog": `Mar  5 10:11:12 web-1 systemd[1]: Started Session 42 of user alice.`,
	"system.auth":   `Mar  5 10:11:12 web-1 sshd[4242]: Accepted publickey for alice from 1.2.3.4 port 5022 ssh2: RSA SHA256:vBW2Uh9a1p/7BpyZk5ExHjQyZLg1ZjYvuIjw0K0gKfA`,
}

func BenchmarkBuiltin(b *testing.B) {
	in := Input{Location: paris, Read: time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)}
	for _, name := range Builtin() {
		p := builtins[name]
		line := []byte(benchLines[name])
		b.Run(name, func(b *testing.B) {
			var ev Event
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				ev.Reset()
				if err := p.Parse(line, in, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCustom(b *testing.B) {
	in := Input{Location: paris}
	for _, c := range []struct {
		name, line string
		spec       Spec
	}{
		{"json", `{"time":"2024-03-05T10:11:12.345Z","level":"info","msg":"request done","http":{"method":"GET","status":200},"took_ms":12.5}`,
			Spec{Parser: "json", TimeField: "time"}},
		{"logfmt", `time=2024-03-05T10:11:12.345Z level=info msg="request done" method=GET status=200 took_ms=12.5`,
			Spec{Parser: "logfmt", TimeField: "time", Target: "app"}},
		{"dissect", `2024-03-05T10:11:12.345Z INFO [main] request done`,
			Spec{Parser: "dissect", Pattern: `%{ts} %{log.level} [%{thread}] %{message}`, TimeField: "ts"}},
		{"regex", `2024-03-05T10:11:12.345Z INFO [main] request done`,
			Spec{Parser: "regex", Pattern: `^(?P<ts>\S+) (?P<log.level>\S+) \[(?P<thread>[^\]]*)\] (?P<message>.*)`, TimeField: "ts"}},
	} {
		p, err := Compile(c.spec)
		if err != nil {
			b.Fatal(err)
		}
		line := []byte(c.line)
		b.Run(c.name, func(b *testing.B) {
			var ev Event
			b.ReportAllocs()
			for b.Loop() {
				ev.Reset()
				if err := p.Parse(line, in, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
