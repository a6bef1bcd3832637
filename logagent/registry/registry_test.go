package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
