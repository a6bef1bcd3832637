package container

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

func lines(t *testing.T, name string) [][]byte {
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func TestParseCRI(t *testing.T) {
	want := []struct {
		stream  string
		partial bool
		text    string
		time    string
	}{
		{"stdout", false, `10.1.2.3 - - [27/Nov/2026:21:04:05 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.31"`, "2026-11-27T21:04:05.123456789Z"},
		{"stderr", false, "W1127 21:04:05.199999       1 reflector.go:561] watch of *v1.Pod ended with: an error on the server", "2026-11-27T21:04:05.2Z"},
		{"stdout", true, `{"level":"info","msg":"a long line cut by the runtime at 16 KiB, first piece `, "2026-11-27T21:04:06.000000001Z"},
		{"stdout", true, "second piece, ", "2026-11-27T21:04:06.000000002Z"},
		{"stdout", false, `last piece"}`, "2026-11-27T21:04:06.000000003Z"},
		{"stdout", false, "", "2026-11-27T21:04:07.5Z"},
		{"stderr", false, "panic: runtime error: index out of range [3] with length 3", "2026-11-27T21:04:08Z"},
	}
	ls := lines(t, "cri.log")
	if len(ls) != len(want) {
		t.Fatalf("%d lines", len(ls))
	}
	for i, l := range ls {
		p, err := ParseCRI(l)
		w := want[i]
		wt, _ := time.Parse(time.RFC3339Nano, w.time)
		if err != nil || p.Stream != w.stream || p.Partial != w.partial || string(p.Text) != w.text || !p.Time.Equal(wt) {
			t.Errorf("line %d: %+v %q %v", i, p, p.Text, err)
		}
	}
	for _, bad := range []string{"", "hello", "2026-11-27T21:04:05Z stdin F x", "2026-11-27T21:04:05Z stdout X x", "yesterday stdout F x", "2026-11-27T21:04:05Z stdout "} {
		if _, err := ParseCRI([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseDocker(t *testing.T) {
	ls := lines(t, "docker.log")
	var got []Piece
	for _, l := range ls {
		p, err := ParseDocker(l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		got = append(got, p)
	}
	if got[0].Stream != "stdout" || got[0].Partial || string(got[0].Text) != `10.1.2.3 - - [27/Nov/2026:21:04:05 +0000] "GET / HTTP/1.1" 200 612` {
		t.Errorf("%+v %q", got[0], got[0].Text)
	}
	if got[1].Stream != "stderr" || got[0].Time.Nanosecond() != 123456789 {
		t.Errorf("%+v", got[1])
	}
	if !got[2].Partial || got[3].Partial || string(got[2].Text)+string(got[3].Text) != `{"level":"info","msg":"a long line split by dockerd at 16 KiB, first piece last piece"}` {
		t.Errorf("partial: %+v %+v", got[2], got[3])
	}
	if string(got[4].Text) != "café ☃ tab\there" {
		t.Errorf("%q", got[4].Text)
	}
	for _, bad := range []string{"", "text", `{"stream":"stdout"}`, `{"log":"x","time":"never"}`, `[1]`} {
		if _, err := ParseDocker([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestFromPath(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	k, ok := FromPath("/var/log/containers/checkout-7d9f8b6c5d-x2x9z_shop-prod_checkout-api-" + id + ".log")
	if !ok || k.Pod != "checkout-7d9f8b6c5d-x2x9z" || k.Namespace != "shop-prod" || k.Container != "checkout-api" || k.ContainerID != id {
		t.Fatalf("%+v %v", k, ok)
	}
	for _, p := range []string{"/var/log/pods/x_y_z-" + id + ".log", "/var/log/containers/plain.log", "/var/log/containers/a_b_c-short.log"} {
		if _, ok := FromPath(p); ok {
			t.Errorf("%s: parsed", p)
		}
	}
}

var bound = fuzzbound.Bound{Fixed: 64 << 10, PerByte: 16, Time: time.Second}

func FuzzParseCRI(f *testing.F) {
	for _, l := range bytes.Split([]byte("2026-11-27T21:04:05.123456789Z stdout F x\n2026-11-27T21:04:05Z stderr P:x y\n"), []byte("\n")) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		bound.Check(t, len(line), func() {
			p, err := ParseCRI(line)
			if err == nil && (len(p.Text) > len(line) || p.Stream != "stdout" && p.Stream != "stderr") {
				t.Fatalf("%q: %+v", line, p)
			}
		})
	})
}

func FuzzParseDocker(f *testing.F) {
	f.Add([]byte(`{"log":"x\n","stream":"stdout","time":"2026-11-27T21:04:05.123456789Z"}`))
	f.Add([]byte(`{"log":"partial","stream":"stderr"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		bound.Check(t, len(line), func() {
			p, err := ParseDocker(line)
			if err == nil && len(p.Text) > len(line) {
				t.Fatalf("%q: text longer than the line", line)
			}
		})
	})
}
