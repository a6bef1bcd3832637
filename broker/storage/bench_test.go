package storage

import (
	"fmt"
	"sync"
	"testing"
)

// benchBatch is a batch of n 100-byte records.
func benchBatch(b *testing.B, n int) []byte {
	return makeBatch(b, batchSpec{n: n, value: "r", valueLen: 100})
}

func benchAppend(b *testing.B, recordsPerBatch, writers int, sync bool) {
	s := openStore(b, b.TempDir(), nil)
	defer s.Close()
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	tmpl := benchBatch(b, recordsPerBatch)
	b.SetBytes(int64(len(tmpl)))
	b.ResetTimer()
	var wg syncGroup
	per := b.N / writers
	for w := 0; w < writers; w++ {
		wg.run(func() {
			batch := append([]byte(nil), tmpl...)
			for i := 0; i < per; i++ {
				r, err := p.Append(batch)
				if err == nil && sync {
					err = p.Sync(r.LastOffset + 1)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.wait()
	b.ReportMetric(float64(per*writers*recordsPerBatch)/b.Elapsed().Seconds(), "records/s")
}

type syncGroup struct{ sync.WaitGroup }

func (g *syncGroup) run(f func()) { g.Add(1); go func() { defer g.Done(); f() }() }
func (g *syncGroup) wait()        { g.Wait() }

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{140, 9000} { // ~16 KiB and ~1 MiB batches of 100-byte records
		b.Run(fmt.Sprintf("batch=%dKiB", n*115/1024), func(b *testing.B) { benchAppend(b, n, 1, false) })
	}
}

func BenchmarkAppendSync(b *testing.B) {
	for _, w := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) { benchAppend(b, 140, w, true) })
	}
}

func BenchmarkRead(b *testing.B) {
	s := openStore(b, b.TempDir(), nil)
	defer s.Close()
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	batch := benchBatch(b, 140)
	for i := 0; i < 2000; i++ {
		p.Append(append([]byte(nil), batch...))
	}
	hw := p.HighWatermark()
	buf := make([]byte, 2<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	var recs int64
	for i := 0; i < b.N; i++ {
		off := int64(i*7919) % hw
		sl, err := p.Read(off, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if err := sl.ReadAt(buf); err != nil {
			b.Fatal(err)
		}
		recs += sl.Len() / int64(len(batch)) * 140
		sl.Release()
	}
	b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
}
