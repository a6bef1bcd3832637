package record

import (
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestValidDataset(t *testing.T) {
	for _, ok := range []string{"nginx.access", "system.auth", "my_app.v2", "a", strings.Repeat("x", 100)} {
		if err := ValidDataset(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Nginx", "nginx access", "nginx-access", ".x", "x.", "ä", "a/b", strings.Repeat("x", 101)} {
		if ValidDataset(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseZone(t *testing.T) {
	ref := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	for name, off := range map[string]int{"UTC": 0, "Z": 0, "Europe/Berlin": 7200, "America/New_York": -4 * 3600,
		"+05:30": 19800, "-08:00": -28800, "+00:00": 0, "Etc/GMT+5": -5 * 3600} {
		loc, err := ParseZone(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, got := ref.In(loc).Zone(); got != off {
			t.Errorf("%s: offset %d, want %d", name, got, off)
		}
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus", "+5", "+05:3", "+0530", "+15:00", "+05:60", "++5:00", "/etc/localtime",
		"../../etc/passwd", "Europe/../../x", strings.Repeat("A", 65)} {
		if _, err := ParseZone(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTimeAndOffset(t *testing.T) {
	ts := time.Date(2026, 12, 4, 21, 13, 0, 123456789, time.FixedZone("x", 3600))
	b := AppendTime(nil, ts)
	if len(b) > TimeBytes || string(b) != "2026-12-04T20:13:00.123456789Z" {
		t.Fatalf("%s", b)
	}
	if got, err := ParseTime(b); err != nil || !got.Equal(ts) {
		t.Fatalf("%v %v", got, err)
	}
	if off, err := ParseOffset(AppendOffset(nil, 1<<40)); err != nil || off != 1<<40 {
		t.Fatalf("%d %v", off, err)
	}
	if _, err := ParseOffset([]byte(strings.Repeat("9", 21))); err == nil {
		t.Fatal("long offset accepted")
	}
}

func TestRead(t *testing.T) {
	h := func(k, v string) *sarama.RecordHeader { return &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	m := Read([]*sarama.RecordHeader{h(Host, "web-1"), h(Path, "/a"), h(Offset, "7"), h(FileID, "f"), h(Dataset, "nginx.access"),
		h(Timezone, "UTC"), h("fields.env", "prod"), h("fields.", "x"), h(PodName, "p"), h(Host, "web-2"), h("other", "y")})
	if string(m.Host) != "web-2" || string(m.Path) != "/a" || string(m.Offset) != "7" || string(m.Dataset) != "nginx.access" ||
		string(m.Timezone) != "UTC" || len(m.Labels) != 1 || string(m.Labels[0].Value) != "prod" || string(m.Pod) != "p" || m.Stream != nil {
		t.Fatalf("%+v", m)
	}
	for _, n := range []string{DLQError, DLQOriginalTopic, DLQOriginalPartition, DLQOriginalOffset, DLQTruncated} {
		if !IsDLQHeader(n) {
			t.Errorf("%s", n)
		}
	}
	if IsDLQHeader(Host) {
		t.Error("host is a dead-letter header")
	}
}

// FuzzParseZone: whatever the name, ParseZone returns a zone or an error, and never
// reads a file outside the zone database.
func FuzzParseZone(f *testing.F) {
	for _, s := range []string{"UTC", "Europe/Berlin", "+05:30", "-8:00", "../x", "Local", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		loc, err := ParseZone(name)
		if (loc == nil) == (err == nil) {
			t.Fatalf("%q: %v %v", name, loc, err)
		}
		if err == nil && (strings.Contains(name, "..") || strings.HasPrefix(name, "/")) {
			t.Fatalf("%q accepted", name)
		}
	})
}

// TestHostZone: the host's zone is the IANA name TZ (or the system) names, else the
// offset.
func TestHostZone(t *testing.T) {
	t.Setenv("TZ", "America/New_York")
	if z := HostZone(); z != "America/New_York" {
		t.Fatalf("TZ=America/New_York: %q", z)
	}
	t.Setenv("TZ", ":/usr/share/zoneinfo/Asia/Tokyo")
	if z := HostZone(); z != "Asia/Tokyo" {
		t.Fatalf("TZ path: %q", z)
	}
	t.Setenv("TZ", "")
	if z := HostZone(); z != "UTC" {
		t.Fatalf("TZ empty: %q", z)
	}
	for off, want := range map[int]string{0: "+00:00", 19800: "+05:30", -28800: "-08:00"} {
		if got := offsetName(off); got != want {
			t.Errorf("offsetName(%d) = %q, want %q", off, got, want)
		}
	}
}
