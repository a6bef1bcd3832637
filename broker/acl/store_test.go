package acl

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func mkdir(dir string) error     { return os.MkdirAll(dir, 0o755) }
func removeAll(dir string) error { return os.RemoveAll(dir) }

func TestPersistAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, Config{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	all := seed(t, a, 3)
	del := kmsg.NewPtrDeleteACLsRequest()
	d := kmsg.NewDeleteACLsRequestFilter()
	d.ResourceType, d.ResourceName, d.Operation, d.PermissionType = group, sp("transfer"), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, d)
	a.DeleteACLs(del)
	want := a.Bindings()
	if len(want) != len(all)-1 {
		t.Fatalf("%d bindings", len(want))
	}

	b, err := Open(dir, Config{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Bindings(); !slices.Equal(got, want) {
		t.Fatalf("after reopen:\n%v\nwant\n%v", got, want)
	}
	for _, c := range []check{
		{"User:agent", "10.0.0.1", opWrite, topic, "logs", true},
		{"User:agent", "10.0.0.9", opWrite, topic, "logs", false},
		{"User:transfer", "10.0.0.1", opRead, topic, "loki", true},
		{"User:transfer", "10.0.0.1", opRead, group, "transfer", false},
		{"User:agent", "10.0.0.1", opIdemWrite, cluster, ClusterName, true},
	} {
		if got := b.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("after reopen %+v: %v", c, got)
		}
	}
	// The file is readable text, one binding a line.
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"resource_type":"TOPIC"`)) || bytes.Count(data, []byte("\n")) != len(want)+2 {
		t.Fatalf("file:\n%s", data)
	}
}

func TestCorruptFile(t *testing.T) {
	for name, content := range map[string]string{
		"not json":           "garbage",
		"truncated":          `{"version": 1, "bindings": [{"resource_type":"TOPIC"`,
		"no version":         `{"bindings": []}`,
		"future version":     `{"version": 2, "bindings": []}`,
		"unknown field":      `{"version": 1, "acls": []}`,
		"unknown enum":       `{"version": 1, "bindings": [{"resource_type":"TOPICS","resource_name":"t","pattern_type":"LITERAL","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]}`,
		"invalid binding":    `{"version": 1, "bindings": [{"resource_type":"TOPIC","resource_name":"t","pattern_type":"MATCH","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]}`,
		"bad principal":      `{"version": 1, "bindings": [{"resource_type":"TOPIC","resource_name":"t","pattern_type":"LITERAL","principal":"a","host":"*","operation":"READ","permission":"ALLOW"}]}`,
		"trailing data":      `{"version": 1, "bindings": []} {}`,
		"binding not object": `{"version": 1, "bindings": [1]}`,
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, Config{Enabled: true})
		if err == nil {
			t.Errorf("%s: loaded", name)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
	// An empty directory is a fresh broker: no bindings.
	a, err := Open(t.TempDir(), Config{Enabled: true})
	if err != nil || len(a.Bindings()) != 0 {
		t.Fatalf("%v %v", a.Bindings(), err)
	}
}

// A file far larger than its limit of bindings can take is refused after
// reading only what they may take.
func TestLoadBound(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	big := []byte(`{"version": 1, "bindings": [{"resource_type":"TOPIC","resource_name":"` + strings.Repeat("x", 64<<20) + `"}]}`)
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	big = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Open(dir, Config{MaxBindings: 10})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("loaded or wrong error: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("refusing a 64 MiB file allocated %d bytes", grew)
	}
	t.Logf("refusing a 64 MiB file with max 10 bindings allocated %d KiB", (after.TotalAlloc-before.TotalAlloc)>>10)
}
