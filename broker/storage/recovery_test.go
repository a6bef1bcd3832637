package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// crash abandons a store the way kill -9 does: no flush, no marker, no snapshot.
func crash(s *Store) {
	close(s.stop)
	<-s.done
	s.lock.Close()
}

// fillAndCrash writes n single-record batches to t-0 and crashes; it returns the
// partition directory and the active segment's path.
func fillAndCrash(t testing.TB, dir string, n int) (string, string) {
	s := openStore(t, dir, nil)
	top, err := s.CreateTopic("t", 1, TopicConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := top.Partition(0).Append(makeBatch(t, batchSpec{value: fmt.Sprintf("v%02d", i)})); err != nil {
			t.Fatal(err)
		}
	}
	crash(s)
	pdir := filepath.Join(dir, "t-0")
	return pdir, segmentPath(pdir, 0, ".log")
}

func TestRecoverTornTail(t *testing.T) {
	one := int64(len(makeBatch(t, batchSpec{value: "v00"})))
	cases := map[string]struct {
		damage func(path string)
		want   int64 // batches kept
	}{
		"garbage appended": {func(p string) { appendFile(p, bytes.Repeat([]byte{0xAB}, 100)) }, 20},
		"zeros appended":   {func(p string) { appendFile(p, make([]byte, 4096)) }, 20},
		"half a batch":     {func(p string) { os.Truncate(p, 19*one+one/2) }, 19},
		"header only":      {func(p string) { os.Truncate(p, 19*one+30) }, 19},
		"flipped byte in last batch": {func(p string) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			f.WriteAt([]byte{0xFF}, 19*one+one-3)
			f.Close()
		}, 19},
		"flipped byte in batch 10": {func(p string) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			f.WriteAt([]byte{0xFF}, 10*one+70)
			f.Close()
		}, 10},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, seg := fillAndCrash(t, dir, 20)
			c.damage(seg)
			s := openStore(t, dir, nil)
			defer s.Close()
			p := s.Topic("t").Partition(0)
			if p.HighWatermark() != c.want {
				t.Fatalf("HW %d, want %d", p.HighWatermark(), c.want)
			}
			_, vals := readAll(t, p, 0)
			for i, v := range vals {
				if v != fmt.Sprintf("v%02d-0", i) {
					t.Fatalf("record %d = %q", i, v)
				}
			}
			if fi, _ := os.Stat(seg); fi.Size() != c.want*one {
				t.Fatalf("log not truncated: %d bytes, want %d", fi.Size(), c.want*one)
			}
			r, err := p.Append(makeBatch(t, batchSpec{value: "next"}))
			if err != nil || r.BaseOffset != c.want {
				t.Fatalf("append after recovery: %+v %v", r, err)
			}
		})
	}
}

func TestRecoverRebuildsActiveIndex(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultTopicConfig()
	cfg.IndexIntervalBytes = 100
	s := openStore(t, dir, func(o *Options) { o.Defaults = cfg })
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	for i := 0; i < 300; i++ {
		top.Partition(0).Append(makeBatch(t, batchSpec{value: fmt.Sprint("v", i)}))
	}
	crash(s)
	s = openStore(t, dir, func(o *Options) { o.Defaults = cfg })
	defer s.Close()
	p := s.Topic("t").Partition(0)
	p.mu.RLock()
	entries := len(p.segs[0].index) / offsetEntrySize
	p.mu.RUnlock()
	if entries < 100 {
		t.Fatalf("index has %d entries after recovery", entries)
	}
	for _, off := range []int64{0, 150, 299} {
		sl, err := p.Read(off, 1)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, sl.Len())
		sl.ReadAt(buf)
		sl.Release()
		if o, _ := decodeValues(t, buf); o[0] != off {
			t.Fatalf("read %d got %d", off, o[0])
		}
	}
}

func appendFile(path string, data []byte) {
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(data)
	f.Close()
}

// FuzzRecover damages the tail of a crashed partition's log with arbitrary bytes:
// opening must never panic, must keep every batch before the damage, and must serve
// only valid batches.
func FuzzRecover(f *testing.F) {
	f.Add(uint16(0), []byte{})
	f.Add(uint16(5), []byte{0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 200})
	f.Add(uint16(70), bytes.Repeat([]byte{0xFF}, 64))
	f.Add(uint16(300), []byte("garbage after the last batch"))
	f.Fuzz(func(t *testing.T, cut uint16, tail []byte) {
		dir := t.TempDir()
		_, seg := fillAndCrash(t, dir, 5)
		fi, _ := os.Stat(seg)
		one := fi.Size() / 5
		keepBytes := fi.Size() - int64(cut)%fi.Size()
		os.Truncate(seg, keepBytes)
		appendFile(seg, tail)
		s, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("open after damage: %v", err)
		}
		defer s.Close()
		p := s.Topic("t").Partition(0)
		if min := keepBytes / one; p.HighWatermark() < min {
			t.Fatalf("HW %d, but %d whole batches were intact", p.HighWatermark(), min)
		}
		_, vals := readAll(t, p, 0)
		for i, v := range vals {
			if i < 5 && v != fmt.Sprintf("v%02d-0", i) {
				t.Fatalf("record %d = %q", i, v)
			}
		}
		var hdr [recordbatch.HeaderSize]byte
		p.mu.RLock()
		defer p.mu.RUnlock()
		sg := p.segs[0]
		file, err := sg.acquire()
		if err != nil {
			t.Fatal(err)
		}
		defer file.release()
		for pos := int64(0); pos < sg.size; {
			h, err := readHeader(file.f, pos, sg.size, &hdr)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, h.Length)
			file.f.ReadAt(buf, pos)
			if _, err := recordbatch.CheckFrame(buf); err != nil {
				t.Fatalf("recovered log serves an invalid batch at %d: %v", pos, err)
			}
			pos += h.Length
		}
	})
}

// FuzzValidateBatch feeds arbitrary bytes to the producer-batch check: it must never
// panic, and whatever it accepts has a good CRC and a consistent length.
func FuzzValidateBatch(f *testing.F) {
	good := makeBatch(f, batchSpec{n: 3, value: "seed"})
	f.Add(good)
	f.Add(good[:61])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := checkProducerBatch(b, 1<<20)
		if err != nil {
			return
		}
		if h.Length != int64(len(b)) || recordbatch.Checksum(b[21:]) != uint32(b[17])<<24|uint32(b[18])<<16|uint32(b[19])<<8|uint32(b[20]) {
			t.Fatalf("accepted an inconsistent batch")
		}
	})
}
