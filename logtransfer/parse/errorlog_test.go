package parse

import "testing"

func TestNginxError(t *testing.T) {
	p, _ := NewSetOrDie(t).Lookup("nginx.error")
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "with connection", line: `2024/03/05 10:11:12 [error] 1234#5678: *99 open() "/x" failed (2: No such file or directory), client: 1.2.3.4, server: x, request: "GET / HTTP/1.1", host: "x"`,
			fields: `log.level="error"
process.pid=1234
process.thread.id=5678
nginx.error.connection_id=99`, time: "2024-03-05T10:11:12+01:00",
			msg: msg(`open() "/x" failed (2: No such file or directory), client: 1.2.3.4, server: x, request: "GET / HTTP/1.1", host: "x"`)},
		{name: "without connection", line: `2024/03/05 10:11:12 [notice] 1#1: signal process started`,
			fields: `log.level="notice"
process.pid=1
process.thread.id=1`, time: "2024-03-05T10:11:12+01:00", msg: msg("signal process started")},
		{name: "summer time", line: `2024/07/01 00:00:00 [warn] 7#7: *1 an upstream response is buffered`,
			fields: `log.level="warn"
process.pid=7
process.thread.id=7
nginx.error.connection_id=1`, time: "2024-07-01T00:00:00+02:00", msg: msg("an upstream response is buffered")},
		{name: "emerg empty message", line: "2024/03/05 10:11:12 [emerg] 10#10: \n",
			fields: `log.level="emerg"
process.pid=10
process.thread.id=10`, time: "2024-03-05T10:11:12+01:00", msg: msg("")},
		{name: "star not a number", line: `2024/03/05 10:11:12 [crit] 10#10: *abc x`,
			fields: `log.level="crit"
process.pid=10
process.thread.id=10`, time: "2024-03-05T10:11:12+01:00", msg: msg("*abc x")},
		{name: "bad date", line: `2024-03-05 10:11:12 [error] 1#1: x`, err: "expected a date like 2024/03/05 at byte 0"},
		{name: "bad month", line: `2024/13/05 10:11:12 [error] 1#1: x`, err: "expected a date"},
		{name: "bad clock", line: `2024/03/05 25:11:12 [error] 1#1: x`, err: "expected a time like 10:11:12 at byte 11"},
		{name: "no level", line: `2024/03/05 10:11:12 error 1#1: x`, err: "expected ' [' before the level at byte 19"},
		{name: "bad level", line: `2024/03/05 10:11:12 [err or] 1#1: x`, err: "expected a level"},
		{name: "no pid", line: `2024/03/05 10:11:12 [error] x#1: x`, err: "expected pid#tid at byte 28"},
		{name: "no tid colon", line: `2024/03/05 10:11:12 [error] 1#1 x`, err: "expected pid#tid: at byte 30"},
		{name: "continuation", line: `PHP message: PHP Warning:  foo in /x.php on line 3`, err: "expected a date"},
		{name: "short", line: `2024/03/05`, err: "expected a date and time"},
	})
}

func TestApacheError(t *testing.T) {
	p, _ := NewSetOrDie(t).Lookup("apache.error")
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "2.4", line: `[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 140000] [client 1.2.3.4:5678] AH00126: Invalid URI`,
			fields: `apache.error.module="core"
log.level="error"
process.pid=1234
process.thread.id=140000
source.address="1.2.3.4"
source.ip="1.2.3.4"
source.port=5678`, time: "2000-10-11T14:32:52.123456+02:00", msg: msg("AH00126: Invalid URI")},
		{name: "2.2", line: `[Wed Oct 11 14:32:52 2000] [error] [client 1.2.3.4] File does not exist: /x`,
			fields: `log.level="error"
source.address="1.2.3.4"
source.ip="1.2.3.4"`, time: "2000-10-11T14:32:52+02:00", msg: msg("File does not exist: /x")},
		{name: "2.2 no client", line: `[Sun Mar 03 00:00:00 2024] [notice] Apache/2.2.22 configured -- resuming normal operations`,
			fields: `log.level="notice"`, time: "2024-03-03T00:00:00+01:00", msg: msg("Apache/2.2.22 configured -- resuming normal operations")},
		{name: "2.4 no tid no client", line: `[Tue Mar 05 10:11:12.000001 2024] [mpm_event:notice] [pid 1] AH00489: Apache/2.4.58 configured`,
			fields: `apache.error.module="mpm_event"
log.level="notice"
process.pid=1`, time: "2024-03-05T10:11:12.000001+01:00", msg: msg("AH00489: Apache/2.4.58 configured")},
		{name: "2.4 remote", line: `[Tue Mar 05 10:11:12.5 2024] [authz_core:debug] [pid 2:tid 3] [remote 10.0.0.1:80] AH01626: x`,
			fields: `apache.error.module="authz_core"
log.level="debug"
process.pid=2
process.thread.id=3
source.address="10.0.0.1"
source.ip="10.0.0.1"
source.port=80`, time: "2024-03-05T10:11:12.5+01:00", msg: msg("AH01626: x")},
		{name: "2.4 ipv6 client", line: `[Tue Mar 05 10:11:12.5 2024] [ssl:info] [pid 2:tid 3] [client ::1:5678] AH01964: Connection`,
			fields: `apache.error.module="ssl"
log.level="info"
process.pid=2
process.thread.id=3
source.address="::1"
source.ip="::1"
source.port=5678`, time: "2024-03-05T10:11:12.5+01:00", msg: msg("AH01964: Connection")},
		{name: "2.4 bracketed ipv6 client", line: `[Tue Mar 05 10:11:12.5 2024] [ssl:info] [pid 2:tid 3] [client [2001:db8::1]:5678] x`,
			fields: `apache.error.module="ssl"
log.level="info"
process.pid=2
process.thread.id=3
source.address="2001:db8::1"
source.ip="2001:db8::1"
source.port=5678`, time: "2024-03-05T10:11:12.5+01:00", msg: msg("x")},
		{name: "2.4 empty module trace level", line: `[Tue Mar 05 10:11:12.5 2024] [:trace8] [pid 2] [client host.example:1] y`,
			fields: `log.level="trace8"
process.pid=2
source.address="host.example"
source.port=1`, time: "2024-03-05T10:11:12.5+01:00", msg: msg("y")},
		{name: "space padded day", line: `[Tue Mar  5 10:11:12 2024] [warn] z`,
			fields: `log.level="warn"`, time: "2024-03-05T10:11:12+01:00", msg: msg("z")},
		{name: "no bracket", line: `Wed Oct 11 14:32:52 2000 [error] x`, err: "expected '[' before the time at byte 0"},
		{name: "bad month", line: `[Wed Foo 11 14:32:52 2000] [error] x`, err: "expected a month name like Oct at byte 5"},
		{name: "bad day", line: `[Wed Oct 32 14:32:52 2000] [error] x`, err: "expected the year"},
		{name: "bad clock", line: `[Wed Oct 11 14:62:52 2000] [error] x`, err: "expected a time like 14:32:52"},
		{name: "no year", line: `[Wed Oct 11 14:32:52] [error] x`, err: "expected the year and ']'"},
		{name: "no level", line: `[Wed Oct 11 14:32:52 2000] x`, err: "expected ' [' before the level at byte 26"},
		{name: "bad pid", line: `[Wed Oct 11 14:32:52 2000] [core:error] [pid x] y`, err: "expected the pid"},
		{name: "unclosed pid", line: `[Wed Oct 11 14:32:52 2000] [core:error] [pid 1:tid 2 y`, err: "expected ']' after the pid"},
		{name: "stack trace", line: `  at foo.bar(Baz.java:1)`, err: "expected '['"},
	})
}
