package parse

import (
	"bytes"
	"github.com/logpipe/logpipe/internal/jsonstr"
	"net/netip"
	"unsafe"
)

// accessParser reads nginx's and apache's access logs (common, combined, nginx's
// main, each with an optional leading virtual host).
type accessParser struct {
	nginx bool // nginx.access: the client list and X-Forwarded-For fields
}

// The fields the parsers produce.
const (
	fDestDomain   = "destination.domain"
	fDestIP       = "destination.ip"
	fDestPort     = "destination.port"
	fSrcAddress   = "source.address"
	fSrcIP        = "source.ip"
	fSrcPort      = "source.port"
	fRemoteIPList = "nginx.access.remote_ip_list"
	fXFF          = "nginx.access.x_forwarded_for"
	fUserName     = "user.name"
	fMethod       = "http.request.method"
	fURL          = "url.original"
	fHTTPVersion  = "http.version"
	fStatus       = "http.response.status_code"
	fBodyBytes    = "http.response.body.bytes"
	fReferrer     = "http.request.referrer"
	fUserAgent    = "user_agent.original"
)

// trimEOL drops a trailing newline and carriage return.
func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (p accessParser) Parse(line []byte, in Input, ev *Event) error {
	line = trimEOL(line)
	// The header: [vhost] client ident user, up to the '[' of the time. A client
	// list ("a, b, c") is one token.
	var tok [4][2]int
	n, pos := 0, 0
	for {
		if pos >= len(line) {
			return errAt("expected '[' before the time", pos)
		}
		if line[pos] == '[' {
			break
		}
		if n == len(tok) {
			return errAt("expected '[' before the time", pos)
		}
		start := pos
		end := bytes.IndexByte(line[pos:], ' ')
		if end < 0 {
			return errAt("expected '[' before the time", len(line))
		}
		end += pos
		for end > start && line[end-1] == ',' { // the list goes on after ", "
			next := end + 1
			for next < len(line) && line[next] == ' ' {
				next++
			}
			e := bytes.IndexByte(line[next:], ' ')
			if e < 0 {
				return errAt("expected '[' before the time", len(line))
			}
			end = next + e
		}
		tok[n] = [2]int{start, end}
		n++
		pos = end + 1
	}
	if n < 3 {
		return errAt("expected client, ident and user before the time", pos)
	}
	t, end, ok := httpDate(line, pos+1)
	if !ok || end >= len(line) || line[end] != ']' {
		return errAt("expected a time like [10/Oct/2000:13:55:36 -0700]", pos)
	}
	ev.Time = t
	pos = end + 1
	if n == 4 {
		vhost(ev, line[tok[0][0]:tok[0][1]])
	}
	c := tok[n-3]
	p.client(ev, line[c[0]:c[1]])
	if u := tok[n-1]; !dash(line[u[0]:u[1]]) {
		ev.str(fUserName, line[u[0]:u[1]])
	}

	// "request" status bytes
	if pos+1 >= len(line) || line[pos] != ' ' || line[pos+1] != '"' {
		return errAt(`expected ' "' before the request`, pos)
	}
	rs := pos + 2
	re, esc, ok := quoted(line, rs)
	if !ok {
		return errAt(`expected '"' after the request`, len(line))
	}
	request(ev, line[rs:re], esc)
	pos = re + 1
	if pos >= len(line) || line[pos] != ' ' {
		return errAt("expected ' ' before the status", pos)
	}
	status, e, ok := number(line, pos+1)
	if !ok || e-pos-1 > 3 {
		return errAt("expected a status code", pos+1)
	}
	pos = e
	if pos >= len(line) || line[pos] != ' ' {
		return errAt("expected ' ' before the bytes sent", pos)
	}
	ev.num(fStatus, status)
	pos++
	if pos < len(line) && line[pos] == '-' {
		pos++
	} else {
		b, e, ok := number(line, pos)
		if !ok {
			return errAt("expected the bytes sent", pos)
		}
		ev.num(fBodyBytes, b)
		pos = e
	}
	// combined: "referrer" "user agent"; main adds "x_forwarded_for". Any other
	// text after these stays in the message only.
	if pos+1 >= len(line) || line[pos] != ' ' || line[pos+1] != '"' {
		return nil
	}
	rs = pos + 2
	re, esc, ok = quoted(line, rs)
	if !ok {
		return errAt(`expected '"' after the referrer`, len(line))
	}
	if v := line[rs:re]; !dash(v) && len(v) > 0 {
		ev.str(fReferrer, ev.unescapedIf(v, esc))
	}
	pos = re + 1
	if pos+1 >= len(line) || line[pos] != ' ' || line[pos+1] != '"' {
		return errAt(`expected ' "' before the user agent`, pos)
	}
	rs = pos + 2
	re, esc, ok = quoted(line, rs)
	if !ok {
		return errAt(`expected '"' after the user agent`, len(line))
	}
	if v := line[rs:re]; !dash(v) && len(v) > 0 {
		ev.str(fUserAgent, ev.unescapedIf(v, esc))
	}
	pos = re + 1
	if !p.nginx || pos+1 >= len(line) || line[pos] != ' ' || line[pos+1] != '"' {
		return nil
	}
	rs = pos + 2
	if re, _, ok = quoted(line, rs); ok {
		if v := line[rs:re]; !dash(v) && len(v) > 0 {
			ev.list(fXFF, v)
		}
	}
	return nil
}

func dash(b []byte) bool { return len(b) == 1 && b[0] == '-' }

func (e *Event) unescapedIf(v []byte, esc bool) []byte {
	if esc {
		return e.unescaped(v)
	}
	return v
}

// quoted finds the closing quote of a quoted field whose text starts at b[i:],
// skipping backslash escapes: its index, and whether there was an escape.
func quoted(b []byte, i int) (end int, esc, ok bool) {
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j, esc, true
		}
	}
	return len(b), esc, false
}

// request splits "METHOD target HTTP/x.y". A request that is "-", or not a
// method and a target (a TLS handshake sent to a plain-text port, a scanner's
// garbage), gives no field: the line keeps it in message.
func request(ev *Event, req []byte, esc bool) {
	sp := bytes.IndexByte(req, ' ')
	if sp <= 0 || sp > 32 || !isMethod(req[:sp]) {
		return
	}
	rest := req[sp+1:]
	var version []byte
	if i := bytes.LastIndexByte(rest, ' '); i >= 0 && bytes.HasPrefix(rest[i+1:], []byte("HTTP/")) {
		version = rest[i+6:]
		rest = rest[:i]
	}
	if len(rest) == 0 {
		return
	}
	ev.str(fMethod, req[:sp])
	ev.str(fURL, ev.unescapedIf(rest, esc))
	if len(version) > 0 {
		ev.str(fHTTPVersion, ev.unescapedIf(version, esc))
	}
}

// isMethod: letters, '-' and '_', starting with a letter.
func isMethod(b []byte) bool {
	if !isLetter(b[0]) {
		return false
	}
	for _, c := range b {
		if !isLetter(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// vhost reads the virtual host before the client: destination.domain (or .ip)
// and destination.port.
func vhost(ev *Event, v []byte) {
	if len(v) == 0 || dash(v) {
		return
	}
	if isIP(v) {
		ev.str(fDestIP, v)
		return
	}
	host := v
	var port int64 = -1
	if i := bytes.LastIndexByte(v, ':'); i >= 0 {
		if n, ok := atoi(v[i+1:]); ok && n < 65536 {
			host, port = v[:i], n
		}
	}
	if len(host) > 0 {
		if isIP(host) {
			ev.str(fDestIP, host)
		} else {
			ev.str(fDestDomain, host)
		}
	}
	if port >= 0 {
		ev.num(fDestPort, port)
	}
}

// client reads the client, or a list of them as written behind proxies
// ("10.0.0.2, 10.0.0.1, 85.181.35.98"): source.address and source.ip are the
// first public address of the list, else its first entry.
func (p accessParser) client(ev *Event, v []byte) {
	if len(v) == 0 || dash(v) {
		return
	}
	if bytes.IndexByte(v, ',') < 0 {
		ev.str(fSrcAddress, v)
		if isIP(v) {
			ev.str(fSrcIP, v)
		}
		return
	}
	var first, public []byte
	count := 0
	for rest := v; ; {
		item := rest
		i := bytes.IndexByte(rest, ',')
		if i >= 0 {
			item = rest[:i]
		}
		item = bytes.TrimSpace(item)
		if len(item) > 0 {
			count++
			if first == nil {
				first = item
			}
			if public == nil {
				if a, ok := parseAddr(item); ok && isPublic(a) {
					public = item
				}
			}
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	src := public
	if src == nil {
		src = first
	}
	if src == nil {
		return
	}
	ev.str(fSrcAddress, src)
	if public != nil || isIP(src) {
		ev.str(fSrcIP, src)
	}
	if p.nginx && count > 1 {
		ev.list(fRemoteIPList, v)
	}
}

// list adds a comma-separated list as a JSON array of its non-empty, trimmed
// entries (a field whose name the parser knows is new).
func (e *Event) list(name string, v []byte) {
	if len(e.Fields) >= MaxFields {
		e.tag(TagFieldDropped)
		return
	}
	start := len(e.arena)
	e.arena = append(e.arena, '[')
	n := 0
	for rest := v; ; {
		item := rest
		i := bytes.IndexByte(rest, ',')
		if i >= 0 {
			item = rest[:i]
		}
		if item = bytes.TrimSpace(item); len(item) > 0 {
			if n > 0 {
				e.arena = append(e.arena, ',')
			}
			n++
			var cut bool
			e.arena, cut = jsonstr.AppendLimit(e.arena, item, MaxValueBytes)
			if cut {
				e.tag(TagFieldTruncated)
			}
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	e.arena = append(e.arena, ']')
	if len(e.arena)-start > MaxValueBytes {
		e.arena = e.arena[:start]
		e.tag(TagFieldDropped)
		return
	}
	e.Fields = append(e.Fields, Field{Name: name, Value: e.arena[start:len(e.arena):len(e.arena)]})
}

// isIP: an IP address that Elasticsearch's ip type takes (no zone).
func isIP(v []byte) bool {
	_, ok := parseAddr(v)
	return ok
}

// parseAddr parses an IP address without a zone, without allocating.
func parseAddr(v []byte) (netip.Addr, bool) {
	if len(v) < 2 || len(v) > 45 {
		return netip.Addr{}, false
	}
	for _, c := range v {
		if !isDigit(c) && !(c|0x20 >= 'a' && c|0x20 <= 'f') && c != '.' && c != ':' {
			return netip.Addr{}, false // a host name, or a zone ('%')
		}
	}
	// The string is not kept past the call: the error (which holds it) is
	// dropped, and an Addr without a zone holds no string.
	a, err := netip.ParseAddr(unsafe.String(&v[0], len(v)))
	return a, err == nil
}

// isPublic: not private, loopback, link-local, multicast, unspecified or shared
// (100.64.0.0/10) address space.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	if a.Is4() {
		b := a.As4()
		if b[0] == 100 && b[1]&0xc0 == 64 || b[0] == 0 || b[0] >= 240 {
			return false
		}
	}
	return true
}
