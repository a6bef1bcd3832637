package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Put(Entry{Path: "/a.log", Dev: 1, Inode: 2, FileID: "1-2-0", Offset: 10})
	r.SetOffset(Key(1, 2), 0, 50)
	r.SetOffset(Key(1, 2), 0, 40) // never backwards
	r.SetOffset(Key(1, 2), 1, 90) // another incarnation's ack
	r.Put(Entry{Path: "/b.log", Dev: 1, Inode: 3, FileID: "1-3-0"})
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := r2.Get(Key(1, 2))
	if !ok || e.Offset != 50 || e.FileID != "1-2-0" || len(r2.Entries()) != 2 {
		t.Fatalf("reloaded %+v %v", e, r2.Entries())
	}
	r2.Remove(Key(1, 3))
	r2.Save()
	r3, _ := Open(dir)
	if len(r3.Entries()) != 1 {
		t.Fatal(r3.Entries())
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
}

func TestDamagedRegistryIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte("{not json"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("err = %v", err)
	}
}

func TestDamagedEntriesAreAnError(t *testing.T) {
	for _, text := range []string{`null`, `[{}]`, `[{"path": "/a", "file_id": "x", "offset": -1}]`, `[{"path": "a", "file_id": "x"}]`, `[{"path": "/a", "file_id": "x", "fp_len": 1e9}]`} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), []byte(text), 0o644)
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s: err = %v", text, err)
		}
	}
}

// registryBound is what loading a registry may cost: an entry takes about 400 bytes
// of memory (struct, map slot, strings) for at least 30 bytes of JSON.
var registryBound = fuzzbound.Bound{Fixed: 64 << 10, PerByte: 32, Time: 2 * time.Second}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`[{"path": "/var/log/a.log", "dev": 2049, "inode": 131, "gen": 1, "file_id": "801-83-1", "offset": 4096, "fp_len": 1024, "fp": "0123456789abcdef"}]`))
	f.Add([]byte(`[{"path": "/a", "file_id": "x"}, {"path": "/b", "file_id": "y", "inode": 2}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		registryBound.Check(t, len(data), func() {
			entries, err := decode(data)
			if err != nil {
				return
			}
			for k, e := range entries {
				if k != Key(e.Dev, e.Inode) || e.validate() != nil {
					t.Fatalf("accepted %q: %+v", k, e)
				}
			}
		})
	})
}
