package tailer

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// chunked returns the input in pieces of n bytes, to cross buffer boundaries.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

type got struct {
	data  string
	off   int64
	next  int64
	split bool
}

func readLines(lr *LineReader) []got {
	var out []got
	for {
		l, err := lr.Next()
		if err != nil {
			return out
		}
		out = append(out, got{string(l.Data), l.Offset, l.Next, l.Split})
	}
}

func TestLineReader(t *testing.T) {
	input := "a\r\nbb\n\ninvalid \xff\xfe utf8\nlonglonglong\npar"
	for _, chunk := range []int{1, 3, 7, 1000} {
		lr := NewLineReader(&chunked{[]byte(input), chunk}, 100, 5)
		lines := readLines(lr)
		var rebuilt strings.Builder
		for i, l := range lines {
			if i > 0 && l.off != lines[i-1].next {
				t.Fatalf("chunk %d: offsets not contiguous at %d: %+v", chunk, i, lines)
			}
			rebuilt.WriteString(l.data)
			if !l.split {
				rebuilt.WriteString("\n")
			}
			if len(l.data) > 5 {
				t.Fatalf("chunk %d: line longer than max: %q", chunk, l.data)
			}
		}
		if lines[0] != (got{"a", 100, 103, false}) || lines[1] != (got{"bb", 103, 106, false}) || lines[2] != (got{"", 106, 107, false}) {
			t.Fatalf("chunk %d: first lines %+v", chunk, lines[:3])
		}
		if want := strings.ReplaceAll(strings.TrimSuffix(input, "par"), "\r\n", "\n"); rebuilt.String() != want {
			t.Fatalf("chunk %d: rebuilt %q\nwant %q", chunk, rebuilt.String(), want)
		}
		if lr.Buffered() != len("par") || lr.Offset() != 100+int64(len(input)-len("par")) {
			t.Fatalf("chunk %d: partial line: buffered %d offset %d", chunk, lr.Buffered(), lr.Offset())
		}
		l, ok := lr.Flush()
		if !ok || string(l.Data) != "par" || l.Next != 100+int64(len(input)) {
			t.Fatalf("chunk %d: flush %q %v", chunk, l.Data, ok)
		}
	}
}

func TestLineReaderPartialThenRest(t *testing.T) {
	var src bytes.Buffer
	src.WriteString("hello wo")
	lr := NewLineReader(&src, 0, 1024)
	if _, err := lr.Next(); err != io.EOF {
		t.Fatalf("partial line returned: %v", err)
	}
	src.WriteString("rld\r\nnext\n")
	l, err := lr.Next()
	if err != nil || string(l.Data) != "hello world" || l.Offset != 0 || l.Next != 13 {
		t.Fatalf("%q %d %d %v", l.Data, l.Offset, l.Next, err)
	}
	l, _ = lr.Next()
	if string(l.Data) != "next" || l.Offset != 13 {
		t.Fatalf("%q %d", l.Data, l.Offset)
	}
}

// FuzzLineReader: for any input and chunking, the lines and the held partial line
// rebuild the input exactly, offsets are contiguous, and no line exceeds the maximum.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), uint8(3), uint8(4))
	f.Add([]byte("\r\r\n\n\xff"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, input []byte, chunk, max uint8) {
		lr := NewLineReader(&chunked{input, int(chunk%16) + 1}, 0, int(max%32)+1)
		var rebuilt []byte
		next := int64(0)
		for {
			l, err := lr.Next()
			if err != nil {
				break
			}
			if l.Offset != next || len(l.Data) > int(max%32)+1 {
				t.Fatalf("offset %d want %d, len %d", l.Offset, next, len(l.Data))
			}
			rebuilt = append(rebuilt, input[l.Offset:l.Next]...)
			next = l.Next
		}
		if l, ok := lr.Flush(); ok {
			rebuilt = append(rebuilt, input[l.Offset:l.Next]...)
		}
		if !bytes.Equal(rebuilt, input) {
			t.Fatalf("rebuilt %q from %q", rebuilt, input)
		}
	})
}

// TestShrinkIdle: an idle reader lets its buffer go, unless it holds a partial line,
// and reads on correctly when bytes come again.
func TestShrinkIdle(t *testing.T) {
	src := &chunked{data: []byte("one\ntw"), n: 3}
	lr := NewLineReader(src, 0, 100)
	if got := readLines(lr); len(got) != 1 || got[0].data != "one" {
		t.Fatalf("read %v", got)
	}
	lr.Shrink()
	if lr.buf == nil {
		t.Fatal("a partial line was dropped with the buffer")
	}
	src.data = []byte("o\n")
	if got := readLines(lr); len(got) != 1 || got[0].data != "two" || got[0].off != 4 {
		t.Fatalf("read %v", got)
	}
	lr.Shrink()
	if lr.buf != nil {
		t.Fatalf("an idle reader keeps %d bytes", cap(lr.buf))
	}
	src.data = []byte("three\n")
	if got := readLines(lr); len(got) != 1 || got[0].data != "three" || got[0].off != 8 || got[0].next != 14 {
		t.Fatalf("read %v", got)
	}
}
