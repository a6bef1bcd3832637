// Package wait is how logpipe's tests wait for a condition: polled, with a
// deadline, never a bare sleep.
package wait

import (
	"testing"
	"time"
)

// For polls cond every 10 ms until it holds, and fails the test if it does not
// within d; what says what was awaited.
func For(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
