package parse

import (
	"bytes"
	"github.com/logpipe/logpipe/internal/jsonstr"
	"time"
)

const (
	fHostname = "host.hostname"
	fProcName = "process.name"
	fPriority = "log.syslog.priority"
	fFacility = "log.syslog.facility.code"
	fSeverity = "log.syslog.severity.code"
	fVersion  = "log.syslog.version"
	fMsgID    = "log.syslog.msgid"
	fSD       = "log.syslog.structured_data"

	fSSHEvent     = "system.auth.ssh.event"
	fSSHMethod    = "system.auth.ssh.method"
	fSSHSignature = "system.auth.ssh.signature"
	fOutcome      = "event.outcome"
	fSudoError    = "system.auth.sudo.error"
	fSudoTTY      = "system.auth.sudo.tty"
	fSudoPWD      = "system.auth.sudo.pwd"
	fSudoUser     = "system.auth.sudo.user"
	fSudoCommand  = "system.auth.sudo.command"
)

// syslogParser reads syslog files: RFC 3164 (BSD) and RFC 5424 lines.
type syslogParser struct {
	auth bool // system.auth: sshd and sudo messages too
}

func (p syslogParser) Parse(line []byte, in Input, ev *Event) error {
	line = trimEOL(line)
	proc, err := syslogHeader(line, in, ev)
	if err != nil {
		return err
	}
	if p.auth && proc != nil {
		switch string(proc) {
		case "sshd", "sshd-session":
			sshd(ev, ev.Message)
		case "sudo":
			sudo(ev, ev.Message)
		}
	}
	return nil
}

// headerLike says whether a line without a priority begins like a syslog
// header: "Mmm d" (three letters, a space, then a digit or a space and a digit),
// "yyyy-d" (RFC 3339) or "yyyy Mmm " (year first).
func headerLike(b []byte) bool {
	if len(b) >= 5 && isLetter(b[0]) && isLetter(b[1]) && isLetter(b[2]) && b[3] == ' ' &&
		(isDigit(b[4]) || b[4] == ' ' && len(b) > 5 && isDigit(b[5])) {
		return true
	}
	if _, ok := digits(b, 0, 4); ok && len(b) >= 6 {
		if b[4] == '-' && isDigit(b[5]) {
			return true
		}
		return b[4] == ' ' && len(b) >= 9 && isLetter(b[5]) && isLetter(b[6]) && isLetter(b[7]) && b[8] == ' '
	}
	return false
}

// syslogHeader reads the header into ev and sets ev.Message; it returns the
// process name (the tag or APP-NAME), nil if none.
func syslogHeader(line []byte, in Input, ev *Event) ([]byte, error) {
	pos := 0
	if len(line) > 0 && line[0] == '<' {
		pri, e, ok := number(line, 1)
		if !ok || e-1 > 3 || e >= len(line) || line[e] != '>' || pri > 191 {
			return nil, errAt("expected a priority <0> to <191>", 0)
		}
		pos = e + 1
		ev.num(fPriority, pri)
		ev.num(fFacility, pri/8)
		ev.num(fSeverity, pri%8)
		if v, e, ok := number(line, pos); ok && e-pos <= 2 && v > 0 && e < len(line) && line[e] == ' ' {
			return rfc5424(line, pos, e, in, ev)
		}
	} else if !headerLike(line) {
		ev.Message = line
		return nil, nil
	}
	t, pos, err := bsdTime(line, pos, in)
	if err != nil {
		return nil, err
	}
	ev.Time = t
	if pos >= len(line) || line[pos] != ' ' || pos+1 >= len(line) || line[pos+1] == ' ' {
		return nil, errAt("expected ' ' and a host name after the time", pos)
	}
	pos++
	he := bytes.IndexByte(line[pos:], ' ')
	if he < 0 {
		he = len(line) - pos
	}
	host := line[pos : pos+he]
	if host[len(host)-1] != ':' { // else a tag without a host name before it
		ev.str(fHostname, host)
		pos += he
		if pos < len(line) {
			pos++
		}
	}
	name, pid, ms := tag(line, pos)
	if name != nil {
		ev.str(fProcName, name)
		if n, ok := atoi(pid); ok {
			ev.num(fPID, n)
		}
	}
	ev.Message = line[ms:len(line):len(line)]
	return name, nil
}

// bsdTime reads the time of an RFC 3164 line at line[pos:]: "Oct 11 22:14:15",
// "Oct  1 22:14:15", "Oct 11 2023 22:14:15", "2023 Oct 11 22:14:15" (each with an
// optional fraction of a second), or an RFC 3339 time.
func bsdTime(line []byte, pos int, in Input) (time.Time, int, error) {
	loc := in.zone()
	year := -1
	if y, ok := digits(line, pos, 4); ok && pos+4 < len(line) {
		if line[pos+4] == '-' {
			t, e, ok := rfc3339(line, pos, loc)
			if !ok {
				return t, pos, errAt("expected an RFC 3339 time", pos)
			}
			return t, e, nil
		}
		if line[pos+4] != ' ' {
			return time.Time{}, pos, errAt("expected a time", pos)
		}
		year = y
		pos += 5
	}
	mo, ok := month(line, pos)
	if !ok || pos+3 >= len(line) || line[pos+3] != ' ' {
		return time.Time{}, pos, errAt("expected a month name like Oct", pos)
	}
	pos += 4
	if pos < len(line) && line[pos] == ' ' {
		pos++
	}
	d, e, ok := number(line, pos)
	if !ok || e-pos > 2 || d < 1 || d > 31 || e >= len(line) || line[e] != ' ' {
		return time.Time{}, pos, errAt("expected the day of the month", pos)
	}
	pos = e + 1
	if y, ok := digits(line, pos, 4); ok && year < 0 && pos+4 < len(line) && line[pos+4] == ' ' {
		year = y
		pos += 5
	}
	h, m, s, ns, e, ok := clock(line, pos)
	if !ok {
		return time.Time{}, pos, errAt("expected a time like 22:14:15", pos)
	}
	if year >= 0 {
		if int(d) > daysIn(year, mo) {
			return time.Time{}, pos, errAt("expected a day of the month", pos)
		}
		return time.Date(year, mo, int(d), h, m, s, ns, loc), e, nil
	}
	t, ok := nearestYear(mo, int(d), h, m, s, ns, loc, in.Read)
	if !ok {
		return t, pos, errAt("expected a day of the month", pos)
	}
	return t, e, nil
}

// tag reads "name[pid]: " or "name: " at line[pos:]: name and pid (nil if none),
// and where the message starts (pos when there is no tag).
func tag(line []byte, pos int) (name, pid []byte, msg int) {
	k := pos
	for k < len(line) && k-pos < 128 && line[k] != ' ' && line[k] != '[' && line[k] != ':' {
		k++
	}
	if k == pos {
		return nil, nil, pos
	}
	j := k
	if j < len(line) && line[j] == '[' {
		c := bytes.IndexByte(line[j:min(len(line), j+66)], ']')
		if c < 0 {
			return nil, nil, pos
		}
		pid = line[j+1 : j+c]
		j += c + 1
	}
	if j >= len(line) || line[j] != ':' {
		return nil, nil, pos
	}
	j++
	if j < len(line) && line[j] == ' ' {
		j++
	}
	return line[pos:k], pid, j
}

// rfc5424 reads the rest of an RFC 5424 header; the version is line[vs:ve].
func rfc5424(line []byte, vs, ve int, in Input, ev *Event) ([]byte, error) {
	ev.str(fVersion, line[vs:ve])
	pos := ve + 1
	if pos < len(line) && line[pos] == '-' {
		pos++
	} else {
		t, e, ok := rfc3339(line, pos, in.zone())
		if !ok {
			return nil, errAt("expected an RFC 3339 time or '-'", pos)
		}
		ev.Time = t
		pos = e
	}
	var parts [4][]byte // HOSTNAME APP-NAME PROCID MSGID
	names := [4]string{"host name", "app name", "procid", "msgid"}
	for i := range parts {
		if pos >= len(line) || line[pos] != ' ' {
			return nil, errAt("expected ' ' before the "+names[i], pos)
		}
		pos++
		e := pos
		for e < len(line) && line[e] > ' ' && line[e] < 0x7f && e-pos < 256 {
			e++
		}
		if e == pos {
			return nil, errAt("expected the "+names[i], pos)
		}
		if v := line[pos:e]; !dash(v) {
			parts[i] = v
		}
		pos = e
	}
	if parts[0] != nil {
		ev.str(fHostname, parts[0])
	}
	if parts[1] != nil {
		ev.str(fProcName, parts[1])
	}
	if n, ok := atoi(parts[2]); ok {
		ev.num(fPID, n)
	}
	if parts[3] != nil {
		ev.str(fMsgID, parts[3])
	}
	if pos >= len(line) || line[pos] != ' ' {
		return nil, errAt("expected ' ' before the structured data", pos)
	}
	pos++
	switch {
	case pos < len(line) && line[pos] == '-':
		pos++
	case pos < len(line) && line[pos] == '[':
		var err error
		if pos, err = structured(line, pos, ev); err != nil {
			return nil, err
		}
	default:
		return nil, errAt("expected structured data or '-'", pos)
	}
	if pos < len(line) {
		if line[pos] != ' ' {
			return nil, errAt("expected ' ' before the message", pos)
		}
		pos++
	}
	msg := line[pos:len(line):len(line)]
	msg = bytes.TrimPrefix(msg, []byte("\xef\xbb\xbf"))
	ev.Message = msg
	return parts[1], nil
}

const (
	maxSDElements = 64
	maxSDParams   = 64
)

// sdName is the end of an SD-ID or PARAM-NAME at line[i:] (printable ASCII but
// '=', ' ', ']' and '"'; at most 64 bytes).
func sdName(line []byte, i int) int {
	j := i
	for j < len(line) && j-i < 64 {
		c := line[j]
		if c <= ' ' || c >= 0x7f || c == '=' || c == ']' || c == '"' {
			break
		}
		j++
	}
	return j
}

// seen says whether line[s:e] is one of the spans.
func seen(line []byte, spans [][2]int, s, e int) bool {
	for _, sp := range spans {
		if bytes.Equal(line[sp[0]:sp[1]], line[s:e]) {
			return true
		}
	}
	return false
}

// structured reads RFC 5424 structured data at line[pos:] into
// log.syslog.structured_data, an object of objects: {"id":{"param":"value"}}.
// A repeated SD-ID or PARAM-NAME keeps its first; past 64 elements or 64 params
// of an element the rest are read but left out (TagFieldDropped).
func structured(line []byte, pos int, ev *Event) (int, error) {
	start := len(ev.arena)
	fail := func(what string, at int) (int, error) {
		ev.arena = ev.arena[:start]
		return at, errAt(what, at)
	}
	ev.arena = append(ev.arena, '{')
	var ids [maxSDElements][2]int
	nids := 0
	for pos < len(line) && line[pos] == '[' {
		is := pos + 1
		ie := sdName(line, is)
		if ie == is {
			return fail("expected an SD-ID", is)
		}
		keep := false
		if !seen(line, ids[:nids], is, ie) {
			if nids < len(ids) {
				keep = true
				if nids > 0 {
					ev.arena = append(ev.arena, ',')
				}
				ids[nids] = [2]int{is, ie}
				nids++
				ev.arena, _ = jsonstr.AppendLimit(ev.arena, line[is:ie], MaxValueBytes)
				ev.arena = append(ev.arena, ':', '{')
			} else {
				ev.tag(TagFieldDropped)
			}
		}
		pos = ie
		var params [maxSDParams][2]int
		np := 0
		for pos < len(line) && line[pos] == ' ' {
			ns := pos + 1
			ne := sdName(line, ns)
			if ne == ns || ne+1 >= len(line) || line[ne] != '=' || line[ne+1] != '"' {
				return fail(`expected PARAM-NAME="value"`, ns)
			}
			vs := ne + 2
			ve, esc, ok := quoted(line, vs)
			if !ok {
				return fail(`expected '"' after the value`, len(line))
			}
			if keep && !seen(line, params[:np], ns, ne) {
				if np < len(params) {
					if np > 0 {
						ev.arena = append(ev.arena, ',')
					}
					params[np] = [2]int{ns, ne}
					np++
					ev.arena, _ = jsonstr.AppendLimit(ev.arena, line[ns:ne], MaxValueBytes)
					ev.arena = append(ev.arena, ':')
					v := line[vs:ve]
					if esc {
						v = ev.sdUnescaped(v)
					}
					var cut bool
					if ev.arena, cut = jsonstr.AppendLimit(ev.arena, v, MaxValueBytes); cut {
						ev.tag(TagFieldTruncated)
					}
				} else {
					ev.tag(TagFieldDropped)
				}
			}
			pos = ve + 1
		}
		if pos >= len(line) || line[pos] != ']' {
			return fail("expected ']' after the structured data element", pos)
		}
		pos++
		if keep {
			ev.arena = append(ev.arena, '}')
		}
	}
	ev.arena = append(ev.arena, '}')
	if len(ev.arena)-start > MaxValueBytes || len(ev.Fields) >= MaxFields {
		ev.arena = ev.arena[:start]
		ev.tag(TagFieldDropped)
		return pos, nil
	}
	ev.Fields = append(ev.Fields, Field{Name: fSD, Value: ev.arena[start:len(ev.arena):len(ev.arena)]})
	return pos, nil
}

// sdUnescaped undoes \" \\ and \] (other backslashes are kept, as RFC 5424 says).
func (e *Event) sdUnescaped(v []byte) []byte {
	s := e.scratch[:0]
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
			c = v[i]
		}
		s = append(s, c)
	}
	e.scratch = s
	return s
}

// sshd reads sshd's login messages:
//
//	Accepted password for alice from 1.2.3.4 port 5022 ssh2
//	Accepted publickey for alice from 1.2.3.4 port 5022 ssh2: RSA SHA256:...
//	Failed password for invalid user admin from 1.2.3.4 port 22 ssh2
//	Invalid user admin from 1.2.3.4 port 4567
func sshd(ev *Event, m []byte) {
	var event, outcome string
	var method, rest []byte
	switch {
	case bytes.HasPrefix(m, []byte("Accepted ")):
		event, outcome, rest = "Accepted", "success", m[len("Accepted "):]
	case bytes.HasPrefix(m, []byte("Failed ")):
		event, outcome, rest = "Failed", "failure", m[len("Failed "):]
	case bytes.HasPrefix(m, []byte("Invalid user ")):
		event, outcome, rest = "Invalid", "failure", m[len("Invalid user "):]
	default:
		return
	}
	if event != "Invalid" {
		sp := bytes.IndexByte(rest, ' ')
		if sp <= 0 || !bytes.HasPrefix(rest[sp:], []byte(" for ")) {
			return
		}
		method, rest = rest[:sp], rest[sp+len(" for "):]
		rest = bytes.TrimPrefix(rest, []byte("invalid user "))
	}
	// The user name is whatever the client sent: the last " from " ends it.
	from := bytes.LastIndex(rest, []byte(" from "))
	if from < 0 && bytes.HasPrefix(rest, []byte("from ")) {
		from = -1 // an empty user name: "Invalid user  from ..." leaves "from ..."
	} else if from < 0 {
		return
	}
	user := rest[:max(from, 0)]
	rest = rest[from+len(" from "):]
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 || !bytes.HasPrefix(rest[sp:], []byte(" port ")) {
		return
	}
	addr := rest[:sp]
	port, e, ok := number(rest, sp+len(" port "))
	if !ok || port > 65535 {
		return
	}
	rest = rest[e:]
	ev.str(fSSHEvent, []byte(event))
	if method != nil {
		ev.str(fSSHMethod, method)
	}
	if len(user) > 0 {
		ev.str(fUserName, user)
	}
	ev.str(fSrcAddress, addr)
	if isIP(addr) {
		ev.str(fSrcIP, addr)
	}
	ev.num(fSrcPort, port)
	if sig, ok := bytes.CutPrefix(rest, []byte(" ssh2: ")); ok && len(sig) > 0 {
		ev.str(fSSHSignature, sig)
	}
	ev.str(fOutcome, []byte(outcome))
}

// sudo reads sudo's command messages:
//
//	alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update
//	alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls
func sudo(ev *Event, m []byte) {
	m = bytes.TrimLeft(m, " ")
	i := bytes.Index(m, []byte(" : "))
	if i <= 0 || bytes.IndexByte(m[:i], ' ') >= 0 {
		return
	}
	user := m[:i]
	rest := m[i+3:]
	var errText, tty, pwd, runas, command []byte
	for first := true; len(rest) > 0; first = false {
		item := rest
		if bytes.HasPrefix(rest, []byte("COMMAND=")) {
			rest = nil // the command is the rest of the line, " ; " and all
		} else if j := bytes.Index(rest, []byte(" ; ")); j >= 0 {
			item, rest = rest[:j], rest[j+3:]
		} else {
			rest = nil
		}
		k, v, ok := bytes.Cut(item, []byte("="))
		switch {
		case ok && string(k) == "TTY":
			tty = v
		case ok && string(k) == "PWD":
			pwd = v
		case ok && string(k) == "USER":
			runas = v
		case ok && string(k) == "COMMAND":
			command = v
		case first && !ok:
			errText = item
		}
	}
	if tty == nil && pwd == nil && runas == nil && command == nil {
		return
	}
	ev.str(fUserName, user)
	if len(errText) > 0 {
		ev.str(fSudoError, errText)
	}
	if len(tty) > 0 {
		ev.str(fSudoTTY, tty)
	}
	if len(pwd) > 0 {
		ev.str(fSudoPWD, pwd)
	}
	if len(runas) > 0 {
		ev.str(fSudoUser, runas)
	}
	if len(command) > 0 {
		ev.str(fSudoCommand, command)
	}
}
