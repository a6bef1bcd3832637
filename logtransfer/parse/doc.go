// Package parse turns log lines into events: the fields a dataset's parser finds
// in a line (ECS names, as Filebeat's modules give them), the log's own time, and
// the message text after the header.
//
// # Datasets
//
// Built in (hand-written scanners, linear in the line, no allocation):
//
//	nginx.access   destination.domain|ip, destination.port (a leading virtual host, "host" or "host:port"),
//	               source.address, source.ip, nginx.access.remote_ip_list (only for a list of more than one),
//	               user.name, http.request.method, url.original, http.version, http.response.status_code,
//	               http.response.body.bytes, http.request.referrer, user_agent.original,
//	               nginx.access.x_forwarded_for (main format: the trailing "$http_x_forwarded_for", an array)
//	apache.access  the same but the two nginx.access.* fields (common and combined, optional vhost:port)
//	nginx.error    log.level, process.pid, process.thread.id, nginx.error.connection_id (the *N, when written)
//	apache.error   apache.error.module (2.4), log.level, process.pid, process.thread.id,
//	               source.address, source.ip, source.port ([client ...] or [remote ...])
//	system.syslog  host.hostname, process.name, process.pid (when numeric); with a <PRI>:
//	               log.syslog.priority, log.syslog.facility.code, log.syslog.severity.code;
//	               RFC 5424 adds log.syslog.version, log.syslog.msgid, log.syslog.structured_data
//	               ({"sd-id":{"param":"value"}}, type flattened)
//	system.auth    the syslog fields; for sshd and sshd-session logins (Accepted, Failed, Invalid user):
//	               system.auth.ssh.event, system.auth.ssh.method, user.name, source.address, source.ip,
//	               source.port, system.auth.ssh.signature, event.outcome (success|failure); for sudo:
//	               user.name, system.auth.sudo.error, .tty, .pwd, .user, .command
//
// Custom datasets (Spec, Compile) use regex (RE2 with dotted group names),
// dissect (%{field}, %{} and %{?name} skip, %{field->} skips repeated
// delimiters; a pattern ending in a literal needs the line to end with it), logfmt
// or json (nested objects flattened into dotted names to depth 8; deeper objects
// and arrays kept as compact JSON; null gives no field). A regex group or dissect
// field named "message" sets Event.Message.
//
// # Values
//
// A "-" written for "none" gives no field; so does an empty value. Method and URL
// are kept as written (nginx's \xHH escapes too; \" and \\ are undone). The
// status, byte counts, pids, thread and connection ids, ports and syslog
// priority numbers are JSON numbers. source.ip (and destination.ip) only when the
// address is an IP (net/netip, no zone); a host name, localhost or "unix:" is
// source.address alone. Of a client list ("10.0.0.2, 10.0.0.1, 85.181.35.98") the
// source is the first public address, else the first entry. An access log request
// that is "-" or not "METHOD target [HTTP/x.y]" (a TLS handshake sent to a
// plain-text port, a scanner's garbage) gives no request field, and the rest of
// the line is parsed. Access log lines keep the whole line as message
// (Event.Message nil); error and syslog lines have the text after the header.
//
// # Time
//
// Times keep the precision the log has. A time written without a zone (nginx and
// apache error logs, BSD syslog) is read in Input.Location. A syslog time
// without a year gets the latest year that puts it at most 24 hours after
// Input.Read (clock skew): a December line read on 2 January is last year's.
//
// # Lines that fail
//
// A parser's error means the line does not match; it says what was expected and
// at which byte. Access logs fail without "[time]" after client, ident and user
// (a vhost before them allowed), without a quoted request, a status of 1 to 3
// digits and the bytes (or "-"), and when a referrer is not followed by a user
// agent; text after the last field is allowed. Error logs fail unless they start
// with their time and level ([pid ...] and [client ...] of apache are optional).
// Syslog: a line that starts with '<', with three letters, a space and a digit
// (or a space and a digit), with "dddd-d", or with "dddd Mmm " begins like a
// header and fails when the header breaks: a priority that is not <0> to <191>,
// a bad month or day, a truncated time, no host name after the time; RFC 5424
// (<PRI>VERSION) fails on a bad time, a missing field or malformed structured
// data. Any other line ("-- MARK --", "--- last message repeated 1 time ---") is
// an event with Message the whole line and no fields. A custom dataset fails when
// its pattern does not match, a value does not convert to its type, or the time
// field does not parse.
//
// # Limits
//
// An event holds at most MaxFields fields, each string value at most
// MaxValueBytes (cut: TagFieldTruncated); patterns are at most 4 KiB and RE2
// only; every parser is linear in the line.
package parse
