package tailer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/logpipe/logpipe/logagent/registry"
)

// TestRenameWhileReadingKeepsLastLine drives the interleaving that lost a line around
// a rename rotation: while the harvester is in the middle of reading the file (after
// its stat of the open file, before it checks the path), the writer renames the file,
// writes a last line through its old descriptor (logrotate's create mode) and creates
// the new file with a first line. The harvester must read the renamed file's last
// line, which arrived after its stat, before it moves on to the new file.
func TestRenameWhileReadingKeepsLastLine(t *testing.T) {
	got := rotateWhileReading(t, []string{"old 0", "old 1", "old 2"}, "old 3", Options{PollInterval: 50 * time.Millisecond})
	want := []string{"old 0", "old 1", "old 2", "old 3", "new 0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// rotateWhileReading writes the lines old to a file and runs a harvester of it with
// o (its Path, Registry, Log and NewSink set here). Once the harvester has sent the
// last of old, between its stat of the open file and its check of the path, the
// writer renames the file, writes last through its old descriptor (logrotate's
// create mode) and creates the new file with the line "new 0". It returns the lines
// read, in order, once "new 0" is among them: the new file is opened only after the
// old one is finished.
func rotateWhileReading(t *testing.T, old []string, last string, o Options) []string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "web.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, l := range old {
		fmt.Fprintf(w, "%s\n", l)
	}
	reg, err := registry.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var c collected
	rotated := false
	emit := func(ctx context.Context, fs *FileState, l Line) error {
		if err := c.emit(ctx, fs, l); err != nil {
			return err
		}
		if string(l.Data) != old[len(old)-1] || rotated {
			return nil
		}
		rotated = true
		if err := os.Rename(path, path+".1"); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", last) // to the renamed file, after the harvester's stat
		return os.WriteFile(path, []byte("new 0\n"), 0o644)
	}
	o.Path, o.Registry, o.Log, o.NewSink = path, reg, logging.Discard(), sinkOf(emit)
	runHarvester(t, o)
	wait.For(t, 10*time.Second, "the new file's first line", func() bool {
		for _, l := range c.get() {
			if string(l.Data) == "new 0" {
				return true
			}
		}
		return false
	})
	var got []string
	for _, l := range c.get() {
		got = append(got, string(l.Data))
	}
	return got
}

// TestLongLineAfterRotationIsSplitAndCounted writes, at the same point as above, a
// line longer than max_line_bytes to the renamed file: the harvester reads it while
// draining the old file, and splits and counts it as it does any other line.
func TestLongLineAfterRotationIsSplitAndCounted(t *testing.T) {
	var st Stats
	long := strings.Repeat("x", 40)
	got := rotateWhileReading(t, []string{"old 0"}, long, Options{PollInterval: 50 * time.Millisecond, MaxLineBytes: 16, Stats: &st})
	want := []string{"old 0", long[:16], long[16:32], long[32:], "new 0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	if n := st.LinesSplit.Load(); n != 2 {
		t.Fatalf("LinesSplit = %d, want 2 (the long line cut twice)", n)
	}
}
