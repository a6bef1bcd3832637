package parse

import (
	"testing"
	"time"
)

func TestSyslog(t *testing.T) {
	p, _ := NewSetOrDie(t).Lookup("system.syslog")
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "3164", line: `Mar  5 10:11:12 web-1 systemd[1]: Started Session 42 of user alice.`,
			fields: `host.hostname="web-1"
process.name="systemd"
process.pid=1`, time: "2024-03-05T10:11:12+01:00", msg: msg("Started Session 42 of user alice.")},
		{name: "3164 two digit day no pid", line: `Feb 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
			fields: `host.hostname="mymachine"
process.name="su"`, time: "2024-02-11T22:14:15+01:00", msg: msg("'su root' failed for lonvick on /dev/pts/8")},
		{name: "3164 with pri", line: `<34>Oct 11 22:14:15 mymachine su: 'su root' failed`,
			fields: `log.syslog.priority=34
log.syslog.facility.code=4
log.syslog.severity.code=2
host.hostname="mymachine"
process.name="su"`, time: "2023-10-11T22:14:15+02:00", msg: msg("'su root' failed")},
		{name: "3164 with year", line: `Oct 11 2023 22:14:15 host kernel: [ 1.0] x`,
			fields: `host.hostname="host"
process.name="kernel"`, time: "2023-10-11T22:14:15+02:00", msg: msg("[ 1.0] x")},
		{name: "3164 year first", line: `2022 Oct 11 22:14:15 host app: y`,
			fields: `host.hostname="host"
process.name="app"`, time: "2022-10-11T22:14:15+02:00", msg: msg("y")},
		{name: "3164 fraction", line: `Mar  5 10:11:12.345 host app: y`,
			fields: `host.hostname="host"
process.name="app"`, time: "2024-03-05T10:11:12.345+01:00", msg: msg("y")},
		{name: "rfc3339 in place of bsd", line: `2026-12-04T21:13:00.123456+01:00 host prog[123]: msg`,
			fields: `host.hostname="host"
process.name="prog"
process.pid=123`, time: "2026-12-04T21:13:00.123456+01:00", msg: msg("msg")},
		{name: "rfc3339 with pri", line: `<13>2024-03-05T10:11:12Z host postfix/smtpd[77]: connect from x`,
			fields: `log.syslog.priority=13
log.syslog.facility.code=1
log.syslog.severity.code=5
host.hostname="host"
process.name="postfix/smtpd"
process.pid=77`, time: "2024-03-05T10:11:12Z", msg: msg("connect from x")},
		{name: "non numeric pid", line: `Mar  5 10:11:12 host app[main]: y`,
			fields: `host.hostname="host"
process.name="app"`, time: "2024-03-05T10:11:12+01:00", msg: msg("y")},
		{name: "no tag", line: `Mar  5 10:11:12 host last message repeated 3 times`,
			fields: `host.hostname="host"`, time: "2024-03-05T10:11:12+01:00", msg: msg("last message repeated 3 times")},
		{name: "no host", line: `Mar  5 10:11:12 app[3]: y`,
			fields: `process.name="app"
process.pid=3`, time: "2024-03-05T10:11:12+01:00", msg: msg("y")},
		{name: "5424", line: "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \xef\xbb\xbfAn application event log entry...",
			fields: `log.syslog.priority=165
log.syslog.facility.code=20
log.syslog.severity.code=5
log.syslog.version="1"
host.hostname="mymachine.example.com"
process.name="evntslog"
process.pid=1234
log.syslog.msgid="ID47"
log.syslog.structured_data={"exampleSDID@32473":{"iut":"3","eventSource":"Application","eventID":"1011"},"examplePriority@32473":{"class":"high"}}`,
			time: "2003-10-11T22:14:15.003Z", msg: msg("An application event log entry...")},
		{name: "5424 nil values", line: `<34>1 - - - - - -`,
			fields: `log.syslog.priority=34
log.syslog.facility.code=4
log.syslog.severity.code=2
log.syslog.version="1"`, msg: msg("")},
		{name: "5424 escapes and repeats", line: `<34>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc - - [a x="q\"uo\]te\\d\n" x="2"][a y="3"][b] hi`,
			fields: `log.syslog.priority=34
log.syslog.facility.code=4
log.syslog.severity.code=2
log.syslog.version="1"
host.hostname="192.0.2.1"
process.name="myproc"
log.syslog.structured_data={"a":{"x":"q\"uo]te\\d\\n"},"b":{}}`,
			time: "2003-08-24T05:14:15.000003-07:00", msg: msg("hi")},
		{name: "headerless repeated", line: `--- last message repeated 1 time ---`, msg: msg(`--- last message repeated 1 time ---`)},
		{name: "headerless mark", line: `-- MARK --`, msg: msg(`-- MARK --`)},
		{name: "headerless text", line: `Hello world`, msg: msg(`Hello world`)},
		{name: "bad pri", line: `<999>Oct 11 22:14:15 host x: y`, err: "expected a priority <0> to <191> at byte 0"},
		{name: "unclosed pri", line: `<13 Oct 11 22:14:15 host x: y`, err: "expected a priority"},
		{name: "bad month", line: `Foo 11 22:14:15 host x: y`, err: "expected a month name like Oct at byte 0"},
		{name: "truncated time", line: `Oct 11 22:14`, err: "expected a time like 22:14:15 at byte 7"},
		{name: "no host", line: `Oct 11 22:14:15`, err: "expected ' ' and a host name after the time at byte 15"},
		{name: "bad day", line: `Oct 32 22:14:15 host x`, err: "expected the day of the month at byte 4"},
		{name: "feb 30", line: `Feb 30 2023 22:14:15 host x`, err: "expected a day of the month"},
		{name: "bad rfc3339", line: `2024-13-05T10:11:12Z host x`, err: "expected an RFC 3339 time at byte 0"},
		{name: "pri without time", line: `<13>hello`, err: "expected a month name"},
		{name: "5424 bad time", line: `<13>1 yesterday host app - - - x`, err: "expected an RFC 3339 time or '-' at byte 6"},
		{name: "5424 truncated", line: `<13>1 - host app`, err: "expected ' ' before the procid at byte 16"},
		{name: "5424 bad sd", line: `<13>1 - host app - - [id x=1] m`, err: `expected PARAM-NAME="value" at byte 25`},
		{name: "5424 unclosed sd", line: `<13>1 - host app - - [id x="1"`, err: `expected ']' after the structured data element at byte 30`},
		{name: "5424 junk in sd", line: `<13>1 - host app - - [id x="1" m`, err: `expected PARAM-NAME="value" at byte 31`},
		{name: "5424 no sd", line: `<13>1 - host app - - msg`, err: "expected structured data or '-'"},
	})
}

func TestSyslogYear(t *testing.T) {
	p, _ := NewSetOrDie(t).Lookup("system.syslog")
	for _, c := range []struct {
		line string
		read time.Time
		want string
	}{
		{"Dec 31 23:59:58 h a: x", time.Date(2025, 1, 2, 8, 0, 0, 0, time.UTC), "2024-12-31T23:59:58Z"},     // last year's
		{"Jan  1 00:00:01 h a: x", time.Date(2024, 12, 31, 23, 30, 0, 0, time.UTC), "2025-01-01T00:00:01Z"}, // up to a day ahead (skew)
		{"Jan  2 00:00:01 h a: x", time.Date(2024, 12, 31, 23, 30, 0, 0, time.UTC), "2024-01-02T00:00:01Z"}, // more than a day ahead: last year's
		{"Mar  5 11:00:00 h a: x", time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC), "2024-03-05T11:00:00Z"},
		{"Feb 29 11:00:00 h a: x", time.Date(2027, 3, 5, 12, 0, 0, 0, time.UTC), "2024-02-29T11:00:00Z"}, // the last leap year
		{"Jun 15 11:00:00 h a: x", time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC), "2023-06-15T11:00:00Z"},
	} {
		var ev Event
		if err := p.Parse([]byte(c.line), Input{Location: time.UTC, Read: c.read}, &ev); err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if got := ev.Time.Format(time.RFC3339Nano); got != c.want {
			t.Errorf("%s read %v: %s, want %s", c.line, c.read, got, c.want)
		}
	}
	// The zone of the line decides the year too: read at 23:30 UTC on Dec 31 is
	// already Jan 1 in Paris.
	var ev Event
	if err := p.Parse([]byte("Jan  1 00:10:00 h a: x"), Input{Location: paris, Read: time.Date(2024, 12, 31, 23, 30, 0, 0, time.UTC)}, &ev); err != nil {
		t.Fatal(err)
	}
	if got := ev.Time.Format(time.RFC3339); got != "2025-01-01T00:10:00+01:00" {
		t.Errorf("paris: %s", got)
	}
}

func TestAuth(t *testing.T) {
	p, _ := NewSetOrDie(t).Lookup("system.auth")
	in := Input{Location: time.UTC, Read: read}
	const h = `Mar  5 10:11:12 host `
	hdr := func(name string, pid int) string {
		return "host.hostname=\"host\"\nprocess.name=\"" + name + "\"\nprocess.pid=" + itoa(pid) + "\n"
	}
	runTable(t, p, in, []tc{
		{name: "accepted password", line: h + `sshd[100]: Accepted password for alice from 1.2.3.4 port 5022 ssh2`,
			fields: hdr("sshd", 100) + `system.auth.ssh.event="Accepted"
system.auth.ssh.method="password"
user.name="alice"
source.address="1.2.3.4"
source.ip="1.2.3.4"
source.port=5022
event.outcome="success"`, time: "2024-03-05T10:11:12Z", msg: msg("Accepted password for alice from 1.2.3.4 port 5022 ssh2")},
		{name: "accepted publickey", line: h + `sshd-session[101]: Accepted publickey for bob from 2001:db8::7 port 40000 ssh2: RSA SHA256:vBW2Uh9a1p/7BpyZk5ExHjQyZLg1ZjYvuIjw0K0gKfA`,
			fields: hdr("sshd-session", 101) + `system.auth.ssh.event="Accepted"
system.auth.ssh.method="publickey"
user.name="bob"
source.address="2001:db8::7"
source.ip="2001:db8::7"
source.port=40000
system.auth.ssh.signature="RSA SHA256:vBW2Uh9a1p/7BpyZk5ExHjQyZLg1ZjYvuIjw0K0gKfA"
event.outcome="success"`, time: "2024-03-05T10:11:12Z", msg: msg("Accepted publickey for bob from 2001:db8::7 port 40000 ssh2: RSA SHA256:vBW2Uh9a1p/7BpyZk5ExHjQyZLg1ZjYvuIjw0K0gKfA")},
		{name: "failed password", line: h + `sshd[102]: Failed password for root from 5.6.7.8 port 22 ssh2`,
			fields: hdr("sshd", 102) + `system.auth.ssh.event="Failed"
system.auth.ssh.method="password"
user.name="root"
source.address="5.6.7.8"
source.ip="5.6.7.8"
source.port=22
event.outcome="failure"`, time: "2024-03-05T10:11:12Z", msg: msg("Failed password for root from 5.6.7.8 port 22 ssh2")},
		{name: "failed invalid user", line: h + `sshd[103]: Failed password for invalid user admin from 5.6.7.8 port 22 ssh2`,
			fields: hdr("sshd", 103) + `system.auth.ssh.event="Failed"
system.auth.ssh.method="password"
user.name="admin"
source.address="5.6.7.8"
source.ip="5.6.7.8"
source.port=22
event.outcome="failure"`, time: "2024-03-05T10:11:12Z", msg: msg("Failed password for invalid user admin from 5.6.7.8 port 22 ssh2")},
		{name: "invalid user", line: h + `sshd[104]: Invalid user admin from 1.2.3.4 port 4567`,
			fields: hdr("sshd", 104) + `system.auth.ssh.event="Invalid"
user.name="admin"
source.address="1.2.3.4"
source.ip="1.2.3.4"
source.port=4567
event.outcome="failure"`, time: "2024-03-05T10:11:12Z", msg: msg("Invalid user admin from 1.2.3.4 port 4567")},
		{name: "invalid user with from in name", line: h + `sshd[104]: Invalid user x from 9.9.9.9 port 1 from 1.2.3.4 port 4567`,
			fields: hdr("sshd", 104) + `system.auth.ssh.event="Invalid"
user.name="x from 9.9.9.9 port 1"
source.address="1.2.3.4"
source.ip="1.2.3.4"
source.port=4567
event.outcome="failure"`, time: "2024-03-05T10:11:12Z", msg: msg("Invalid user x from 9.9.9.9 port 1 from 1.2.3.4 port 4567")},
		{name: "empty invalid user", line: h + `sshd[105]: Invalid user  from 1.2.3.4 port 4567`,
			fields: hdr("sshd", 105) + `system.auth.ssh.event="Invalid"
source.address="1.2.3.4"
source.ip="1.2.3.4"
source.port=4567
event.outcome="failure"`, time: "2024-03-05T10:11:12Z", msg: msg("Invalid user  from 1.2.3.4 port 4567")},
		{name: "keyboard interactive", line: h + `sshd[106]: Accepted keyboard-interactive/pam for carol from 10.0.0.5 port 999 ssh2`,
			fields: hdr("sshd", 106) + `system.auth.ssh.event="Accepted"
system.auth.ssh.method="keyboard-interactive/pam"
user.name="carol"
source.address="10.0.0.5"
source.ip="10.0.0.5"
source.port=999
event.outcome="success"`, time: "2024-03-05T10:11:12Z", msg: msg("Accepted keyboard-interactive/pam for carol from 10.0.0.5 port 999 ssh2")},
		{name: "other sshd line", line: h + `sshd[107]: Connection closed by 1.2.3.4 port 22 [preauth]`,
			fields: hdr("sshd", 107), time: "2024-03-05T10:11:12Z", msg: msg("Connection closed by 1.2.3.4 port 22 [preauth]")},
		{name: "sudo", line: h + `sudo[200]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update ; echo`,
			fields: hdr("sudo", 200) + `user.name="alice"
system.auth.sudo.tty="pts/0"
system.auth.sudo.pwd="/home/alice"
system.auth.sudo.user="root"
system.auth.sudo.command="/usr/bin/apt update ; echo"`, time: "2024-03-05T10:11:12Z", msg: msg("   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update ; echo")},
		{name: "sudo error", line: h + `sudo[201]: alice : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/ls`,
			fields: hdr("sudo", 201) + `user.name="alice"
system.auth.sudo.error="3 incorrect password attempts"
system.auth.sudo.tty="pts/1"
system.auth.sudo.pwd="/"
system.auth.sudo.user="root"
system.auth.sudo.command="/bin/ls"`, time: "2024-03-05T10:11:12Z", msg: msg("alice : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/ls")},
		{name: "sudo session", line: h + `sudo[202]: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)`,
			fields: hdr("sudo", 202), time: "2024-03-05T10:11:12Z", msg: msg("pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)")},
		{name: "cron", line: h + `CRON[300]: pam_unix(cron:session): session closed for user root`,
			fields: hdr("CRON", 300), time: "2024-03-05T10:11:12Z", msg: msg("pam_unix(cron:session): session closed for user root")},
		{name: "5424 sshd", line: `<38>1 2024-03-05T10:11:12Z host sshd 9 - - Failed none for invalid user x from 1.2.3.4 port 2 ssh2`,
			fields: `log.syslog.priority=38
log.syslog.facility.code=4
log.syslog.severity.code=6
log.syslog.version="1"
host.hostname="host"
process.name="sshd"
process.pid=9
system.auth.ssh.event="Failed"
system.auth.ssh.method="none"
user.name="x"
source.address="1.2.3.4"
source.ip="1.2.3.4"
source.port=2
event.outcome="failure"`, time: "2024-03-05T10:11:12Z", msg: msg("Failed none for invalid user x from 1.2.3.4 port 2 ssh2")},
		{name: "broken header", line: `Mar 99 10:11:12 host sshd[1]: x`, err: "expected the day of the month"},
	})
}

func itoa(n int) string { return string(encInt(int64(n))) }

func encInt(n int64) []byte {
	var ev Event
	return ev.encInt(n)
}
