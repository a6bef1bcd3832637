package tailer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/logagent/registry"
)

// openFds lists the process's descriptors that point at path (as the kernel names
// it: a deleted file ends in " (deleted)").
func openFds(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.TrimSuffix(target, " (deleted)") == path {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runHarvester(t *testing.T, o Options) (*Harvester, chan struct{}) {
	h := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, done
}

func writeLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
}

// TestCloseInactive: an idle file's descriptor is closed after CloseInactive, and the
// file is reopened by identity, where reading left off, when it grows; a rotation
// while it is closed is followed.
func TestCloseInactive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "idle.log")
	writeLines(t, path, 0, 10)
	reg, _ := registry.Open(t.TempDir())
	var c collected
	var st Stats
	h, _ := runHarvester(t, Options{Path: path, PollInterval: 50 * time.Millisecond, MaxIdleInterval: 2 * time.Second,
		CloseInactive: 300 * time.Millisecond, Registry: reg, Log: logging.Discard(), NewSink: sinkOf(c.emit), Stats: &st})
	waitLines(t, &c, 10)
	waitUntil(t, 5*time.Second, "the idle file's descriptor to close", func() bool { return openFds(t, path) == 0 })
	if st.ClosedInactive.Load() != 1 {
		t.Fatalf("closed inactive %d times", st.ClosedInactive.Load())
	}
	writeLines(t, path, 10, 15)
	h.Wake() // as the agent does on the file's event
	waitLines(t, &c, 15)
	// rename rotation while closed
	waitUntil(t, 5*time.Second, "the descriptor to close again", func() bool { return openFds(t, path) == 0 })
	os.Rename(path, path+".1")
	writeLines(t, path, 15, 20)
	h.Wake()
	waitLines(t, &c, 20)
	for i, l := range c.get() {
		if string(l.Data) != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d is %q", i, l.Data)
		}
	}
	if reg.Len() != 2 {
		t.Fatalf("registry has %d entries, want 2 (the rotated file's is forgotten by the agent's clean)", reg.Len())
	}
}

// TestDeletedFileClosed: a deleted file is read to its end and its descriptor
// closed, so that its disk space is freed; the harvester ends and lets the registry
// forget it.
func TestDeletedFileClosed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gone.log")
	writeLines(t, path, 0, 1000)
	reg, _ := registry.Open(t.TempDir())
	var c collected
	_, done := runHarvester(t, Options{Path: path, PollInterval: 50 * time.Millisecond, MaxIdleInterval: 2 * time.Second,
		Registry: reg, Log: logging.Discard(), NewSink: sinkOf(c.emit)})
	waitLines(t, &c, 1000)
	writeLines(t, path, 1000, 1100)
	os.Remove(path)
	start := time.Now()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("harvester of a deleted file did not end")
	}
	if n := openFds(t, path); n != 0 {
		t.Fatalf("%d descriptors still open on the deleted file", n)
	}
	if len(c.get()) != 1100 {
		t.Fatalf("read %d lines of 1100", len(c.get()))
	}
	if n := reg.Clean(true, 0, false); n != 1 || reg.Len() != 0 {
		t.Fatalf("clean forgot %d; %d left", n, reg.Len())
	}
	t.Logf("deleted file read to its end and closed %v after the unlink (without a wake: polling)", time.Since(start).Round(time.Millisecond))
}

// TestWatchedIdleBackOff: where events report every change (Watched), an idle file
// is polled only every MaxIdleIntervalEvents, here an hour: appends are read on Wake
// at once, CloseInactive still closes the descriptor on time, and a file whose events
// stop being trusted falls back to polling every MaxIdleInterval.
func TestWatchedIdleBackOff(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "watched.log")
	writeLines(t, path, 0, 10)
	reg, _ := registry.Open(t.TempDir())
	var c collected
	var trusted atomic.Bool
	trusted.Store(true)
	h, _ := runHarvester(t, Options{Path: path, PollInterval: 50 * time.Millisecond, MaxIdleInterval: 100 * time.Millisecond,
		MaxIdleIntervalEvents: time.Hour, Watched: trusted.Load, CloseInactive: 500 * time.Millisecond,
		Registry: reg, Log: logging.Discard(), NewSink: sinkOf(c.emit)})
	waitLines(t, &c, 10)
	time.Sleep(200 * time.Millisecond) // idle: the next poll is an hour away
	writeLines(t, path, 10, 12)
	h.Wake() // the append's event
	waitLines(t, &c, 12)
	waitUntil(t, 3*time.Second, "the idle file's descriptor to close", func() bool { return openFds(t, path) == 0 })

	// Events no longer trusted (for instance the directory's watch failed): polls.
	trusted.Store(false)
	h.Wake()
	time.Sleep(100 * time.Millisecond)
	writeLines(t, path, 12, 15) // no Wake: found by a poll
	waitUntil(t, 3*time.Second, "lines found by polling", func() bool { return len(c.get()) == 15 })
}
