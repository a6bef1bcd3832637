package tailer

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/logagent/registry"
)

type collected struct {
	mu     sync.Mutex
	events []Line
}

func (c *collected) emit(ctx context.Context, fs *FileState, l Line) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, Line{Data: append([]byte(nil), l.Data...), Offset: l.Offset, Next: l.Next})
	fs.Checkpoint.Ack(fs.Checkpoint.Track(l.Next))
	return nil
}

// sinkOf makes an Options.NewSink of a send function.
func sinkOf(send func(ctx context.Context, fs *FileState, l Line) error) func(*FileState) Sink {
	return func(fs *FileState) Sink { return funcSink{fs, send} }
}

type funcSink struct {
	fs   *FileState
	send func(ctx context.Context, fs *FileState, l Line) error
}

func (s funcSink) Send(ctx context.Context, l Line) error { return s.send(ctx, s.fs, l) }
func (s funcSink) Idle()                                  {}

func (c *collected) get() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Line(nil), c.events...)
}

func TestMultiline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	text := "2026-11-22 ERROR boom\n" +
		"java.lang.RuntimeException: boom\n" +
		"\tat a.b(C.java:1)\n" +
		"\tat d.e(F.java:2)\n" +
		"2026-11-22 INFO fine\n" +
		"2026-11-22 WARN long trace\n" +
		"\tat 1\n\tat 2\n\tat 3\n\tat 4\n" +
		"2026-11-22 INFO last\n"
	os.WriteFile(path, []byte(text), 0o644)
	reg, _ := registry.Open(dir)
	var c collected
	h := New(Options{
		Path: path, PollInterval: 10 * time.Millisecond, Registry: reg, Log: logging.Discard(), NewSink: sinkOf(c.emit),
		Multiline: &Multiline{Start: regexp.MustCompile(`^\d{4}-`), MaxLines: 4, Timeout: 200 * time.Millisecond},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for len(c.get()) < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ev := c.get()
	want := []string{
		"2026-11-22 ERROR boom\njava.lang.RuntimeException: boom\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)",
		"2026-11-22 INFO fine",
		"2026-11-22 WARN long trace\n\tat 1\n\tat 2\n\tat 3", // max_lines 4
		"\tat 4",
		"2026-11-22 INFO last", // ended by the timeout: nothing follows
	}
	if len(ev) != len(want) {
		t.Fatalf("got %d events: %+v", len(ev), ev)
	}
	var off int64
	for i, e := range ev {
		if string(e.Data) != want[i] || e.Offset != off {
			t.Fatalf("event %d: %q at %d, want %q at %d", i, e.Data, e.Offset, want[i], off)
		}
		off = e.Next
	}
	if off != int64(len(text)) {
		t.Fatalf("events end at %d of %d bytes", off, len(text))
	}
	if e, _ := reg.Get(h.State().key); e.Offset != int64(len(text)) {
		t.Fatalf("registry offset %d", e.Offset)
	}
}
