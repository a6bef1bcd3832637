package parse

import (
	"encoding/json"
	"github.com/logpipe/logpipe/internal/record"
	"strings"
	"testing"
	"time"
)

// render writes an event's fields as "name=value" lines, in order.
func render(ev *Event) string {
	var b strings.Builder
	// Values as written, but for the HTML escapes of <, > and & (the tables are
	// easier to read without them).
	unescape := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&")
	for _, f := range ev.Fields {
		b.WriteString(f.Name)
		b.WriteByte('=')
		b.WriteString(unescape.Replace(string(f.Value)))
		b.WriteByte('\n')
	}
	return b.String()
}

// tc is one line of a table test.
type tc struct {
	name   string
	line   string
	fields string // "name=value" lines; "" none
	time   string // RFC 3339 with fraction; "" zero
	msg    *string
	err    string // substring of the error; "" none
}

func msg(s string) *string { return &s }

var (
	paris = mustZone("Europe/Paris")
	read  = time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)
)

func mustZone(name string) *time.Location {
	l, err := record.ParseZone(name)
	if err != nil {
		panic(err)
	}
	return l
}

func runTable(t *testing.T, p Parser, in Input, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ev Event
			ev.Fields = append(ev.Fields, Field{Name: "stale", Value: []byte("1")})
			ev.Reset()
			err := p.Parse([]byte(c.line), in, &ev)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one with %q\nfields:\n%s", err, c.err, render(&ev))
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			checkEvent(t, &ev)
			want := strings.TrimSpace(c.fields)
			if want != "" {
				want += "\n"
			}
			if got := render(&ev); got != want {
				t.Errorf("fields:\n%s\nwant:\n%s", got, want)
			}
			if c.time == "" {
				if !ev.Time.IsZero() {
					t.Errorf("time %v, want none", ev.Time)
				}
			} else if got := ev.Time.Format(time.RFC3339Nano); got != c.time {
				t.Errorf("time %s, want %s", got, c.time)
			}
			switch {
			case c.msg == nil && ev.Message != nil:
				t.Errorf("message %q, want nil (the whole line)", ev.Message)
			case c.msg != nil && (ev.Message == nil || string(ev.Message) != *c.msg):
				t.Errorf("message %q (nil %v), want %q", ev.Message, ev.Message == nil, *c.msg)
			}
		})
	}
}

// checkEvent asserts the invariants of every event.
func checkEvent(t testing.TB, ev *Event) {
	t.Helper()
	if len(ev.Fields) > MaxFields {
		t.Fatalf("%d fields", len(ev.Fields))
	}
	seen := map[string]bool{}
	for _, f := range ev.Fields {
		if seen[f.Name] {
			t.Fatalf("field %s twice", f.Name)
		}
		seen[f.Name] = true
		if !validName(f.Name) {
			t.Fatalf("field name %q invalid", f.Name)
		}
		if !json.Valid(f.Value) {
			t.Fatalf("field %s: invalid JSON %q", f.Name, f.Value)
		}
		if strings.ContainsAny(string(f.Value), "\n\r") {
			t.Fatalf("field %s: raw newline in %q", f.Name, f.Value)
		}
		if len(f.Value) > 6*MaxValueBytes+2 {
			t.Fatalf("field %s: %d bytes", f.Name, len(f.Value))
		}
	}
}
