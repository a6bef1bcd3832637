package parse

import (
	"bytes"
	"time"
)

const (
	fLevel        = "log.level"
	fPID          = "process.pid"
	fThreadID     = "process.thread.id"
	fConnectionID = "nginx.error.connection_id"
	fModule       = "apache.error.module"
)

// nginxError reads nginx's error log:
//
//	2024/03/05 10:11:12 [error] 1234#5678: *99 open() "/x" failed ...
type nginxError struct{}

func (nginxError) Parse(line []byte, in Input, ev *Event) error {
	line = trimEOL(line)
	if len(line) < 19 {
		return errAt("expected a date and time like 2024/03/05 10:11:12", 0)
	}
	y, ok1 := digits(line, 0, 4)
	mo, ok2 := digits(line, 5, 2)
	d, ok3 := digits(line, 8, 2)
	if !ok1 || !ok2 || !ok3 || line[4] != '/' || line[7] != '/' || line[10] != ' ' ||
		mo < 1 || mo > 12 || d < 1 || d > daysIn(y, time.Month(mo)) {
		return errAt("expected a date like 2024/03/05", 0)
	}
	h, m, s, ns, pos, ok := clock(line, 11)
	if !ok {
		return errAt("expected a time like 10:11:12", 11)
	}
	ev.Time = time.Date(y, time.Month(mo), d, h, m, s, ns, in.zone())
	if pos+2 >= len(line) || line[pos] != ' ' || line[pos+1] != '[' {
		return errAt("expected ' [' before the level", pos)
	}
	ls := pos + 2
	le := ls
	for le < len(line) && le-ls < 16 && isLetter(line[le]) {
		le++
	}
	if le == ls || le >= len(line) || line[le] != ']' {
		return errAt("expected a level like [error]", ls)
	}
	pos = le + 1
	if pos >= len(line) || line[pos] != ' ' {
		return errAt("expected ' ' after the level", pos)
	}
	pid, e, ok := number(line, pos+1)
	if !ok || e >= len(line) || line[e] != '#' {
		return errAt("expected pid#tid", pos+1)
	}
	tid, e2, ok := number(line, e+1)
	if !ok || e2 >= len(line) || line[e2] != ':' {
		return errAt("expected pid#tid:", e+1)
	}
	ev.str(fLevel, line[ls:le])
	ev.num(fPID, pid)
	ev.num(fThreadID, tid)
	pos = e2 + 1
	if pos < len(line) && line[pos] == ' ' {
		pos++
	}
	if pos < len(line) && line[pos] == '*' {
		if c, e, ok := number(line, pos+1); ok && (e == len(line) || line[e] == ' ') {
			ev.num(fConnectionID, c)
			pos = e
			if pos < len(line) {
				pos++
			}
		}
	}
	ev.Message = line[pos:len(line):len(line)]
	return nil
}

// apacheError reads apache's error log, 2.4 and 2.2:
//
//	[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 140000] [client 1.2.3.4:5678] AH00126: Invalid URI
//	[Wed Oct 11 14:32:52 2000] [error] [client 1.2.3.4] File does not exist: /x
type apacheError struct{}

func (apacheError) Parse(line []byte, in Input, ev *Event) error {
	line = trimEOL(line)
	if len(line) == 0 || line[0] != '[' {
		return errAt("expected '[' before the time", 0)
	}
	// Www Mmm dd hh:mm:ss[.uuuuuu] yyyy
	if len(line) < 5 || !isLetter(line[1]) || !isLetter(line[2]) || !isLetter(line[3]) || line[4] != ' ' {
		return errAt("expected a day name like Wed", 1)
	}
	mo, ok := month(line, 5)
	if !ok || len(line) < 10 || line[8] != ' ' {
		return errAt("expected a month name like Oct", 5)
	}
	pos := 9
	if line[pos] == ' ' {
		pos++
	}
	d, e, ok := number(line, pos)
	if !ok || e-pos > 2 || d < 1 || e >= len(line) || line[e] != ' ' {
		return errAt("expected the day of the month", pos)
	}
	h, m, s, ns, ce, ok := clock(line, e+1)
	if !ok {
		return errAt("expected a time like 14:32:52", e+1)
	}
	e = ce
	y, ok := digits(line, e+1, 4)
	if ok && line[e] != ' ' {
		ok = false
	}
	if !ok || e+5 >= len(line) || line[e+5] != ']' || int(d) > daysIn(y, mo) {
		return errAt("expected the year and ']'", e+1)
	}
	ev.Time = time.Date(y, mo, int(d), h, m, s, ns, in.zone())
	pos = e + 6
	// [module:level] (2.4) or [level] (2.2)
	if pos+1 >= len(line) || line[pos] != ' ' || line[pos+1] != '[' {
		return errAt("expected ' [' before the level", pos)
	}
	ls := pos + 2
	le := bytes.IndexByte(line[ls:], ']')
	if le < 0 || le > 64 {
		return errAt("expected a level like [core:error]", ls)
	}
	le += ls
	level := line[ls:le]
	v24 := false
	if i := bytes.IndexByte(level, ':'); i >= 0 {
		v24 = true
		if i > 0 {
			ev.str(fModule, level[:i])
		}
		level = level[i+1:]
	}
	if len(level) == 0 || !isLetter(level[0]) {
		return errAt("expected a level like [core:error]", ls)
	}
	ev.str(fLevel, level)
	pos = le + 1
	// [pid N] or [pid N:tid M]
	if bytes.HasPrefix(line[pos:], []byte(" [pid ")) {
		pid, e, ok := number(line, pos+6)
		if !ok {
			return errAt("expected the pid", pos+6)
		}
		var tid int64 = -1
		if bytes.HasPrefix(line[e:], []byte(":tid ")) {
			if tid, e, ok = number(line, e+5); !ok {
				return errAt("expected the thread id", e)
			}
		}
		if e >= len(line) || line[e] != ']' {
			return errAt("expected ']' after the pid", e)
		}
		ev.num(fPID, pid)
		if tid >= 0 {
			ev.num(fThreadID, tid)
		}
		pos = e + 1
	}
	// [client addr[:port]] or [remote addr[:port]]
	if bytes.HasPrefix(line[pos:], []byte(" [client ")) || bytes.HasPrefix(line[pos:], []byte(" [remote ")) {
		as := pos + 9
		ae := bytes.IndexByte(line[as:], ']')
		if ae < 0 {
			return errAt("expected ']' after the client", len(line))
		}
		ae += as
		if ae+1 < len(line) && line[ae+1] == ':' && line[as] == '[' { // [client [::1]:5678]
			if e := bytes.IndexByte(line[ae+1:], ']'); e >= 0 {
				ae += 1 + e
			}
		}
		apacheClient(ev, line[as:ae], v24)
		pos = ae + 1
	}
	if pos < len(line) && line[pos] == ' ' {
		pos++
	}
	ev.Message = line[pos:len(line):len(line)]
	return nil
}

// apacheClient: 2.4 writes "ip:port" (an IPv6 one as "::1:5678": split at the last
// colon), 2.2 the address alone.
func apacheClient(ev *Event, v []byte, v24 bool) {
	addr := v
	var port int64 = -1
	if len(v) > 0 && v[0] == '[' {
		if i := bytes.IndexByte(v, ']'); i > 0 {
			addr = v[1:i]
			if i+1 < len(v) && v[i+1] == ':' {
				if n, ok := atoi(v[i+2:]); ok && n < 65536 {
					port = n
				}
			}
		}
	} else if i := bytes.LastIndexByte(v, ':'); v24 && i > 0 {
		if n, ok := atoi(v[i+1:]); ok && n < 65536 {
			addr, port = v[:i], n
		}
	}
	if len(addr) == 0 {
		return
	}
	ev.str(fSrcAddress, addr)
	if isIP(addr) {
		ev.str(fSrcIP, addr)
	}
	if port >= 0 {
		ev.num(fSrcPort, port)
	}
}
