package tailer

import (
	"bytes"
	"io"
	"time"
)

// Line is one line read from a file.
type Line struct {
	Data   []byte    // without the line ending; valid until the next call to Next
	Offset int64     // byte offset of the line's first byte in the file
	Next   int64     // offset just past the line and its ending: where reading resumes
	Split  bool      // a piece of a line longer than the maximum, cut there
	Read   time.Time // when the line's last bytes were read
	// Of container logs (Options.Decode): the runtime's own timestamp of the line and
	// its stream (stdout, stderr). Zero otherwise.
	Time   time.Time
	Stream string
}

// LineReader cuts the bytes of a file into lines without allocating per line. It
// strips "\n" and "\r\n", passes invalid UTF-8 through untouched, splits lines longer
// than max, and holds a partial last line until its newline arrives (or Flush).
type LineReader struct {
	r     io.Reader
	buf   []byte
	head  int   // first unconsumed byte in buf
	tail  int   // end of valid bytes in buf
	off   int64 // file offset of buf[head]
	max   int
	limit int64     // file size known from stat: no read is tried at or past it; -1 = none
	busy  bool      // the last read filled the buffer
	read  time.Time // when the last read returned bytes
}

// Buffer sizes: small for the many files that grow slowly, larger for busy ones.
const (
	minBuffer = 4 << 10
	maxBuffer = 64 << 10
)

// NewLineReader reads from r, whose next byte is at file offset off. Its buffer starts
// small and grows while reads fill it, up to 64 KiB, or to max+1 for a long line.
func NewLineReader(r io.Reader, off int64, max int) *LineReader {
	return &LineReader{r: r, buf: make([]byte, minBuffer), off: off, max: max, limit: -1}
}

// Reset points the reader at a new source starting at offset off, dropping what is
// buffered.
func (lr *LineReader) Reset(r io.Reader, off int64) {
	lr.r, lr.head, lr.tail, lr.off, lr.limit = r, 0, 0, off, -1
}

// SetLimit tells the reader the source's size from a stat: Next does not try to read
// at or past it (that read would return nothing), which saves a system call per poll
// of an idle file. The limit holds until the next SetLimit or Reset.
func (lr *LineReader) SetLimit(size int64) { lr.limit = size }

// Shrink lets the buffer go, unless it holds a partial line: an idle file holds no
// buffer (the next read that finds bytes takes a small one again), so that thousands
// of idle files cost no memory for reading.
func (lr *LineReader) Shrink() {
	if lr.head == lr.tail {
		lr.buf, lr.head, lr.tail, lr.busy = nil, 0, 0, false
	}
}

// Offset is the file offset of the first byte not yet returned as a line.
func (lr *LineReader) Offset() int64 { return lr.off }

// Buffered is the number of bytes read but not yet returned (a partial line).
func (lr *LineReader) Buffered() int { return lr.tail - lr.head }

// Next returns the next complete line. At the end of the available bytes it returns
// io.EOF, keeping a partial line buffered for the next call.
func (lr *LineReader) Next() (Line, error) {
	for {
		if l, ok := lr.cut(); ok {
			return l, nil
		}
		if lr.limit >= 0 && lr.off+int64(lr.tail-lr.head) >= lr.limit {
			return Line{}, io.EOF
		}
		if lr.head > 0 && lr.head == lr.tail {
			lr.head, lr.tail = 0, 0
		} else if lr.head > 0 && lr.tail == len(lr.buf) {
			lr.tail = copy(lr.buf, lr.buf[lr.head:lr.tail])
			lr.head = 0
		}
		if lr.buf == nil {
			lr.buf = make([]byte, minBuffer) // after Shrink
		} else {
			lr.growIfNeeded()
		}
		n, err := lr.r.Read(lr.buf[lr.tail:])
		lr.busy = n == len(lr.buf)-lr.tail // the read filled the buffer: more is waiting
		lr.tail += n
		if n > 0 {
			lr.read = time.Now() // one clock read per read, not per line
		}
		if n == 0 {
			if err == nil {
				err = io.EOF
			}
			return Line{}, err
		}
	}
}

// growIfNeeded doubles the buffer when one partial line fills it (up to what the
// longest line needs) or when the last read filled it (a busy file, up to maxBuffer).
func (lr *LineReader) growIfNeeded() {
	limit := 0
	switch {
	case lr.tail == len(lr.buf):
		limit = max(maxBuffer, lr.max+1)
	case lr.busy:
		limit = maxBuffer
	}
	if len(lr.buf) >= limit {
		return
	}
	nb := make([]byte, min(2*len(lr.buf), limit))
	copy(nb, lr.buf[:lr.tail])
	lr.buf, lr.busy = nb, false
}

// cut takes one line from the buffer if a whole one (or a max-sized piece) is there.
func (lr *LineReader) cut() (Line, bool) {
	pending := lr.buf[lr.head:lr.tail]
	i := bytes.IndexByte(pending, '\n')
	if i < 0 || i > lr.max {
		if len(pending) <= lr.max {
			return Line{}, false
		}
		return lr.take(lr.max, lr.max, true), true
	}
	end := i
	if end > 0 && pending[end-1] == '\r' {
		end--
	}
	return lr.take(end, i+1, false), true
}

func (lr *LineReader) take(dataLen, consumed int, split bool) Line {
	l := Line{Data: lr.buf[lr.head : lr.head+dataLen], Offset: lr.off, Next: lr.off + int64(consumed), Split: split, Read: lr.read}
	lr.head += consumed
	lr.off += int64(consumed)
	return l
}

// Flush returns the buffered partial line, if any, as a line of its own: for a file
// that will not grow again (rotated away or deleted).
func (lr *LineReader) Flush() (Line, bool) {
	n := lr.tail - lr.head
	if n == 0 {
		return Line{}, false
	}
	data := lr.buf[lr.head:lr.tail]
	if data[n-1] == '\r' {
		data = data[:n-1]
	}
	return lr.take(len(data), n, false), true
}
