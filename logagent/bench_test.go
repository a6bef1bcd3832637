package logagent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFileToBroker ships b.N lines of ~120 (or 1024) bytes, from one file or
// spread over 100 files, into the built-in broker (in the same process) with acks=1.
// It reports lines/s and the CPU seconds of the whole process, agent and broker
// together, per million lines.
func BenchmarkFileToBroker(b *testing.B) {
	for _, c := range []struct{ files, lineLen int }{{1, 120}, {1, 1024}, {100, 120}} {
		b.Run(fmt.Sprintf("files=%d/line=%dB", c.files, c.lineLen), func(b *testing.B) {
			benchShip(b, c.files, c.lineLen)
		})
	}
}

func benchShip(b *testing.B, files, lineLen int) {
	e := newEnv(b)
	line := strings.Repeat("x", lineLen-30)
	for f := 0; f < files; f++ {
		p := filepath.Join(e.dir, fmt.Sprintf("f%03d.log", f))
		var sb strings.Builder
		for i := f; i < b.N; i += files {
			fmt.Fprintf(&sb, "%09d 2026-11-22T10:00:00Z %s\n", i, line)
		}
		os.WriteFile(p, []byte(sb.String()), 0o644)
	}
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "bench"}]`, filepath.Join(e.dir, "*.log")))
	cfg := e.config(b.TempDir())
	cfg.Kafka.RequiredAcks = "1"
	cfg.Kafka.Compression = "none"
	cfg.Kafka.FlushFrequency = 10 * time.Millisecond
	cfg.Kafka.MaxInFlightBytes = 32 << 20
	cpu0 := cpuSeconds()
	b.ResetTimer()
	r := start(b, cfg)
	deadline := time.Now().Add(5 * time.Minute)
	for r.a.prod.Acked.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d lines acknowledged", r.a.prod.Acked.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e6, "cpu-s/Mlines")
	r.stop(b)
}

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
