package tailer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/logagent/registry"
)

// TestRandomLifecycleModel drives a path through random sequences of writes, renames
// (with a last line written to the renamed file), copytruncates, deletions and
// re-creations (which reuse inode numbers), with harvesters run as the agent runs
// them (a new one when the last ended on a deletion), and checks the lines read
// against the model: every line written is read exactly once, in the order written.
// Before a truncation or a deletion the writer waits for the reader to catch up: lines
// written after the reader's last read and before those are lost by any shipper.
func TestRandomLifecycleModel(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, 30) })
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	path := filepath.Join(dir, "m.log")
	reg, _ := registry.Open(t.TempDir())
	var c collected
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done chan struct{}
	startHarvester := func() {
		h := New(Options{Path: path, PollInterval: 50 * time.Millisecond, MaxIdleInterval: 2 * time.Second,
			Registry: reg, Log: logging.Discard(), NewSink: sinkOf(c.emit)})
		done = make(chan struct{})
		d := done
		go func() { h.Run(ctx); close(d) }()
	}
	var f *os.File
	written := 0
	write := func(k int) {
		if f == nil {
			var err error
			if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var b strings.Builder
		for i := 0; i < k; i++ {
			fmt.Fprintf(&b, "seed %d line %05d %s\n", seed, written, strings.Repeat("x", rng.IntN(200)))
			written++
		}
		f.WriteString(b.String())
	}
	// caughtUp waits until every line written is read, restarting the harvester
	// when the last one ended (the agent's scan does that).
	caughtUp := func(what string) {
		deadline := time.Now().Add(10 * time.Second)
		for len(c.get()) < written {
			select {
			case <-done:
				if _, err := os.Stat(path); err == nil {
					startHarvester()
				}
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s: read %d of %d lines", what, len(c.get()), written)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	write(5)
	startHarvester()
	var ops []string
	for i := 0; i < steps; i++ {
		op := []string{"write", "write", "rename", "truncate", "delete", "recreate"}[rng.IntN(6)]
		ops = append(ops, op)
		switch op {
		case "write":
			write(1 + rng.IntN(50))
		case "rename":
			os.Rename(path, fmt.Sprintf("%s.%d", path, i%3)) // over an older rotation: inodes freed for reuse
			write(1)                                         // a last line to the renamed file
			f.Close()
			f = nil
			write(1 + rng.IntN(10))
		case "truncate":
			caughtUp("writes before a truncation")
			f.Truncate(0)
			write(1 + rng.IntN(10))
		case "delete", "recreate":
			caughtUp("writes before a deletion")
			f.Close()
			f = nil
			os.Remove(path)
			if op == "recreate" {
				write(1 + rng.IntN(10)) // at once: likely the same inode number
			} else {
				<-done // the harvester ends on a deleted file
				write(1 + rng.IntN(10))
			}
		}
		caughtUp(op)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would show up meanwhile
	got := c.get()
	if len(got) != written {
		t.Fatalf("ops %v: read %d lines, wrote %d", ops, len(got), written)
	}
	for i, l := range got {
		if want := fmt.Sprintf("seed %d line %05d ", seed, i); !strings.HasPrefix(string(l.Data), want) {
			t.Fatalf("ops %v: line %d is %.30q, want %q", ops, i, l.Data, want)
		}
	}
	if f != nil {
		f.Close()
	}
}
