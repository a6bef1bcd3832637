package registry

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestCleanRemovedFlat rotates 100,000 files through the registry as the tailer
// does (opened, acknowledged, let go, renamed over the previous rotation or deleted):
// the entries of files gone are forgotten, so the registry and its saved size stay
// flat.
func TestCleanRemovedFlat(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "app.log")
	var maxLen, maxSaved int
	for i := 0; i < 100000; i++ {
		// Every 100th rotation is a real file renamed away; the others stand for
		// files already deleted (a fresh inode number, no file at the path).
		dev, ino := uint64(1), uint64(1_000_000+i)
		if i%100 == 0 {
			if err := os.WriteFile(path, []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(path)
			st := fi.Sys().(*syscall.Stat_t)
			dev, ino = uint64(st.Dev), st.Ino
		}
		k := Key(dev, ino)
		r.Put(Entry{Path: path, Dev: dev, Inode: ino, FileID: "f"})
		r.Acquire(k)
		r.SetOffset(k, 0, 2)
		r.Release(k)
		if i%100 == 0 {
			os.Rename(path, path+".1") // over the previous rotation, which is deleted
		}
		if i%100 == 99 {
			r.Clean(true, 0, false)
			maxLen = max(maxLen, r.Len())
		}
		if i%10000 == 9999 {
			r.Save()
			data, _ := os.ReadFile(r.path)
			maxSaved = max(maxSaved, len(data))
		}
	}
	r.Clean(true, 0, true)
	if maxLen > 1 || r.Len() != 0 || maxSaved > 400 {
		t.Fatalf("after 100,000 rotations: at most %d entries after a clean, %d at the end, saved file up to %d bytes", maxLen, r.Len(), maxSaved)
	}
	t.Logf("100,000 rotations: at most %d entries after a clean, saved registry at most %d bytes", maxLen, maxSaved)
}

func TestCleanKeepsHeldAndPresent(t *testing.T) {
	dir := t.TempDir()
	r, _ := Open(t.TempDir())
	path := filepath.Join(dir, "a.log")
	os.WriteFile(path, []byte("x\n"), 0o644)
	fi, _ := os.Stat(path)
	st := fi.Sys().(*syscall.Stat_t)
	k := Key(uint64(st.Dev), st.Ino)
	r.Put(Entry{Path: path, Dev: uint64(st.Dev), Inode: st.Ino, FileID: "f"})
	r.Put(Entry{Path: filepath.Join(dir, "gone.log"), Dev: 1, Inode: 1, FileID: "g"})
	r.Acquire(Key(1, 1))
	if n := r.Clean(true, 0, true); n != 0 {
		t.Fatalf("forgot %d entries held or present", n)
	}
	r.Release(Key(1, 1))
	if n := r.Clean(true, 0, false); n != 1 {
		t.Fatalf("forgot %d, want the released file that is gone", n)
	}
	// clean_inactive forgets an entry no one holds, untouched for long, even present.
	r.now = func() time.Time { return time.Now().Add(time.Hour) }
	if n := r.Clean(false, time.Minute, true); n != 1 {
		t.Fatalf("clean_inactive forgot %d", n)
	}
	if _, ok := r.Get(k); ok {
		t.Fatal("inactive entry kept")
	}
}

// SetOffset reads no clock: the entry counts as changed now until the next Save
// stamps it, so clean_inactive never forgets an entry acknowledged since.
func TestSetOffsetStampedBySave(t *testing.T) {
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.Put(Entry{Path: "/gone/a.log", Dev: 1, Inode: 1, FileID: "a"})
	r.now = func() time.Time { return time.Now().Add(time.Hour) }
	r.SetOffset(Key(1, 1), 0, 10)
	if n := r.Clean(false, time.Minute, true); n != 0 {
		t.Fatalf("clean_inactive forgot %d entries acknowledged since the last save", n)
	}
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	e, _ := r.Get(Key(1, 1))
	if want := r.now().Unix(); e.Updated != want || e.Offset != 10 {
		t.Fatalf("after Save: updated %d offset %d, want %d and 10", e.Updated, e.Offset, want)
	}
	r2, err := Open(filepath.Dir(r.path))
	if err != nil {
		t.Fatal(err)
	}
	if e2, _ := r2.Get(Key(1, 1)); e2.Updated != e.Updated {
		t.Fatalf("saved updated %d, want %d", e2.Updated, e.Updated)
	}
}
