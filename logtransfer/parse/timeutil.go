package parse

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"
	_ "time/tzdata" // zones work on hosts without tzdata
)

// syntaxError is a line that does not match: what was expected, and where.
type syntaxError struct {
	what string
	at   int
}

func (e *syntaxError) Error() string { return e.what + " at byte " + strconv.Itoa(e.at) }

func errAt(what string, at int) error { return &syntaxError{what, at} }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// digits reads exactly n digits at b[i:].
func digits(b []byte, i, n int) (int, bool) {
	if i < 0 || i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// number reads a run of 1 to 18 digits at b[i:]: its value and end.
func number(b []byte, i int) (int64, int, bool) {
	j := i
	var v int64
	for j < len(b) && isDigit(b[j]) {
		if j-i == 18 {
			return 0, j, false
		}
		v = v*10 + int64(b[j]-'0')
		j++
	}
	return v, j, j > i
}

// atoi is number for a whole slice.
func atoi(b []byte) (int64, bool) {
	v, end, ok := number(b, 0)
	return v, ok && end == len(b)
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// month reads a three-letter English month name at b[i:].
func month(b []byte, i int) (time.Month, bool) {
	if i+3 > len(b) {
		return 0, false
	}
	m := b[i : i+3]
	for k, name := range months {
		if m[0] == name[0] && m[1] == name[1] && m[2] == name[2] {
			return time.Month(k + 1), true
		}
	}
	return 0, false
}

// daysIn is the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// clock reads "hh:mm:ss" at b[i:], with an optional fraction (".123456", up to 9
// digits kept; more are read and dropped): the time of day and the end.
func clock(b []byte, i int) (h, m, s, ns, end int, ok bool) {
	h, ok1 := digits(b, i, 2)
	m, ok2 := digits(b, i+3, 2)
	s, ok3 := digits(b, i+6, 2)
	if !ok1 || !ok2 || !ok3 || b[i+2] != ':' || b[i+5] != ':' || h > 23 || m > 59 || s > 60 {
		return 0, 0, 0, 0, i, false
	}
	end = i + 8
	if end < len(b) && (b[end] == '.' || b[end] == ',') && end+1 < len(b) && isDigit(b[end+1]) {
		end++
		scale := 100000000
		for end < len(b) && isDigit(b[end]) {
			ns += int(b[end]-'0') * scale
			scale /= 10
			end++
		}
	}
	return h, m, s, ns, end, true
}

// fixedZones caches the zones of numeric offsets (minutes -18h..+18h).
var fixedZones [2*18*60 + 1]atomic.Pointer[time.Location]

// fixedZone is the zone of an offset in minutes east of UTC.
func fixedZone(min int) *time.Location {
	if min == 0 {
		return time.UTC
	}
	if min < -18*60 || min > 18*60 {
		return time.FixedZone("", min*60)
	}
	p := &fixedZones[min+18*60]
	if l := p.Load(); l != nil {
		return l
	}
	l := time.FixedZone(offsetName(min), min*60)
	p.Store(l)
	return l
}

func offsetName(min int) string {
	sign := byte('+')
	if min < 0 {
		sign, min = '-', -min
	}
	return string([]byte{sign, byte('0' + min/600), byte('0' + min/60%10), ':', byte('0' + min%60/10), byte('0' + min%10)})
}

// offset reads a numeric zone at b[i:]: "Z", "±hh:mm" (colon optional when
// compact is true: "±hhmm"): minutes east and the end.
func offset(b []byte, i int, compact bool) (int, int, bool) {
	if i >= len(b) {
		return 0, i, false
	}
	if b[i] == 'Z' || b[i] == 'z' {
		return 0, i + 1, true
	}
	if b[i] != '+' && b[i] != '-' {
		return 0, i, false
	}
	h, ok := digits(b, i+1, 2)
	if !ok || h > 18 {
		return 0, i, false
	}
	j := i + 3
	if j < len(b) && b[j] == ':' {
		j++
	} else if !compact {
		return 0, i, false
	}
	m, ok := digits(b, j, 2)
	if !ok || m > 59 {
		return 0, i, false
	}
	min := h*60 + m
	if b[i] == '-' {
		min = -min
	}
	return min, j + 2, true
}

// rfc3339 reads "yyyy-mm-ddThh:mm:ss[.frac](Z|±hh:mm)" at b[i:]; without a zone
// the time is in loc. It returns the time and the end.
func rfc3339(b []byte, i int, loc *time.Location) (time.Time, int, bool) {
	if i+19 > len(b) {
		return time.Time{}, i, false
	}
	y, ok1 := digits(b, i, 4)
	mo, ok2 := digits(b, i+5, 2)
	d, ok3 := digits(b, i+8, 2)
	if !ok1 || !ok2 || !ok3 || b[i+4] != '-' || b[i+7] != '-' || (b[i+10] != 'T' && b[i+10] != 't') ||
		mo < 1 || mo > 12 || d < 1 || d > daysIn(y, time.Month(mo)) {
		return time.Time{}, i, false
	}
	h, m, s, ns, end, ok := clock(b, i+11)
	if !ok {
		return time.Time{}, i, false
	}
	if min, e, ok := offset(b, end, false); ok {
		loc, end = fixedZone(min), e
	}
	return time.Date(y, time.Month(mo), d, h, m, s, ns, loc), end, true
}

// httpDate reads "dd/Mon/yyyy:hh:mm:ss ±hhmm" (nginx's $time_local, apache's %t)
// at b[i:]: the time and the end.
func httpDate(b []byte, i int) (time.Time, int, bool) {
	if i+20 > len(b) {
		return time.Time{}, i, false
	}
	d, ok1 := digits(b, i, 2)
	mo, ok2 := month(b, i+3)
	y, ok3 := digits(b, i+7, 4)
	if !ok1 || !ok2 || !ok3 || b[i+2] != '/' || b[i+6] != '/' || b[i+11] != ':' || d < 1 || d > daysIn(y, mo) {
		return time.Time{}, i, false
	}
	h, m, s, ns, end, ok := clock(b, i+12)
	if !ok || end >= len(b) || b[end] != ' ' {
		return time.Time{}, i, false
	}
	min, end, ok := offset(b, end+1, true)
	if !ok {
		return time.Time{}, i, false
	}
	return time.Date(y, mo, d, h, m, s, ns, fixedZone(min)), end, true
}

// nearestYear gives a time without a year the year that puts it nearest before
// read, allowing it to be up to a day after read (clock skew between the writer
// and the reader). A zero read means now.
func nearestYear(mo time.Month, d, h, m, s, ns int, loc *time.Location, read time.Time) (time.Time, bool) {
	if read.IsZero() {
		read = time.Now()
	}
	limit := read.Add(24 * time.Hour)
	y0 := read.In(loc).Year() + 1
	for y := y0; y > y0-9; y-- { // 9 years: a Feb 29 finds a leap year
		if d > daysIn(y, mo) {
			continue
		}
		if t := time.Date(y, mo, d, h, m, s, ns, loc); !t.After(limit) {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseLayout reads a time value in layout: rfc3339 (also ""), unix (seconds,
// a fraction allowed), unix_ms, httpdate, or a Go layout (in loc when it has no
// zone).
func parseLayout(layout string, v []byte, loc *time.Location) (time.Time, error) {
	if len(v) > 64 {
		return time.Time{}, errors.New("longer than 64 bytes")
	}
	switch layout {
	case "", "rfc3339":
		t, end, ok := rfc3339(v, 0, loc)
		if !ok || end != len(v) {
			return time.Time{}, errors.New("not an RFC 3339 time")
		}
		return t, nil
	case "httpdate":
		t, end, ok := httpDate(v, 0)
		if !ok || end != len(v) {
			return time.Time{}, errors.New("not a time like 10/Oct/2000:13:55:36 -0700")
		}
		return t, nil
	case "unix", "unix_ms":
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || f != f {
			return time.Time{}, errors.New("not a number")
		}
		if layout == "unix_ms" {
			f /= 1000
		}
		if f < 0 || f > 1e11 {
			return time.Time{}, errors.New("out of range")
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).Round(time.Microsecond).UTC(), nil
	}
	t, err := time.ParseInLocation(layout, string(v), loc)
	if err != nil {
		return time.Time{}, errors.New("does not match layout " + strconv.Quote(layout))
	}
	return t, nil
}
