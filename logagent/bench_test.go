package logagent

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkIdleFiles tails files that do not change and reports the CPU the whole
// process (agent, in-process broker and etcd) uses meanwhile, in percent of one core.
// The difference between files=1000 and files=1 is what 1,000 idle files cost
// (target: under 1%).
func BenchmarkIdleFiles(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) { benchIdle(b, n) })
	}
}

func benchIdle(b *testing.B, files int) {
	e := newEnv(b)
	for f := 0; f < files; f++ {
		os.WriteFile(filepath.Join(e.dir, fmt.Sprintf("idle%04d.log", f)), []byte("one line\n"), 0o644)
	}
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "idle"}]`, filepath.Join(e.dir, "*.log")))
	cfg := e.config(b.TempDir())
	cfg.Agent.PollInterval = 250 * time.Millisecond
	cfg.Agent.ScanInterval = 10 * time.Second
	r := start(b, cfg)
	deadline := time.Now().Add(time.Minute)
	for r.a.prod.Acked.Load() < int64(files) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d files shipped", r.a.prod.Acked.Load(), files)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the start-up work settle
	b.ResetTimer()
	cpu0, t0 := cpuSeconds(), time.Now()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Second)
	}
	b.ReportMetric(100*(cpuSeconds()-cpu0)/time.Since(t0).Seconds(), "%core")
}
