// Package fuzzbound lets fuzz targets fail when one input costs far more memory or
// time than its size warrants: a parser that allocates gigabytes for a few bytes, or
// loops for seconds, is a bug even when it returns the right answer.
package fuzzbound

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Bound is what one input of n bytes may cost: Fixed bytes plus PerByte bytes per
// input byte, and Time.
type Bound struct {
	Fixed   uint64        // bytes any input may allocate
	PerByte uint64        // bytes per input byte
	Time    time.Duration // per input; generous, as fuzzing shares the machine
}

// Check runs f on an input of n bytes and fails t if f allocated or took more than b
// allows. Allocations are measured with runtime.ReadMemStats, so f should not start
// goroutines that outlive it.
func (b Bound) Check(t testing.TB, n int, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if limit := b.Fixed + b.PerByte*uint64(n); alloc > limit {
		t.Fatalf("an input of %d bytes allocated %d bytes (bound %d)", n, alloc, limit)
	}
	if b.Time > 0 && took > b.Time {
		t.Fatalf("an input of %d bytes took %v (bound %v)", n, took, b.Time)
	}
}

// Ini is the bound of an ini file loader: ini.v1 builds a few hundred bytes of
// structures per line.
var Ini = Bound{Fixed: 256 << 10, PerByte: 1024, Time: 2 * time.Second}

// FuzzFile fuzzes a loader of files: each input is written to a file whose path
// load is given, and load must stay within b (errors are its own business).
func (b Bound) FuzzFile(f *testing.F, load func(path string)) {
	path := filepath.Join(f.TempDir(), "fuzz.input")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		b.Check(t, len(data), func() { load(path) })
	})
}
