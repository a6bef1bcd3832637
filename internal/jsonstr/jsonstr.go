// Package jsonstr writes JSON strings fast, as encoding/json writes them: the one
// encoder of the transfer's document builder and parsers. Invalid UTF-8 becomes
// U+FFFD (a run of invalid bytes one U+FFFD, as strings.ToValidUTF8 does), because
// Elasticsearch takes only valid UTF-8; control characters, the quote, the backslash,
// <, >, &, U+2028 and U+2029 are escaped, so that a string is never more than one
// line.
package jsonstr

import "unicode/utf8"

// Append appends s as a JSON string.
func Append(dst, s []byte) []byte {
	if !needsEscape(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst, _ = AppendLimit(dst, s, 3*len(s)+1) // an invalid byte is 3 bytes of text
	return dst
}

// AppendLimit appends s as a JSON string of at most limit bytes of text (before
// escaping), cut at a character boundary; cut reports that it was.
func AppendLimit(dst, s []byte, limit int) (out []byte, cut bool) {
	dst = append(dst, '"')
	start := 0 // s[start:i] is still to copy
	n := 0     // bytes of text so far
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if n++; n > limit {
				cut = true
				break
			}
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default: // other control bytes and <, >, &
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			if n += 3; n > limit {
				cut = true
				break
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			for i < len(s) {
				if r, size := utf8.DecodeRune(s[i:]); r != utf8.RuneError || size != 1 {
					break
				}
				i++
			}
			start = i
			continue
		}
		if n += size; n > limit {
			cut = true
			break
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:i]...)
	return append(dst, '"'), cut
}

// AppendKey appends k as a JSON object key and its colon.
func AppendKey(dst []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		if !plain[k[i]] {
			return append(Append(dst, []byte(k)), ':')
		}
	}
	dst = append(dst, '"')
	dst = append(dst, k...)
	return append(dst, '"', ':')
}

const hex = "0123456789abcdef"

func needsEscape(s []byte) bool {
	for _, c := range s {
		if !plain[c] {
			return true
		}
	}
	return false
}

// plain are the bytes a JSON string holds as they are: printable ASCII but for the
// quote, the backslash and <, >, &.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
