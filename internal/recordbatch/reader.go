package recordbatch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// reader holds the records of a batch as a walk reads them, front to back: all
// of them in memory, or, when they are decompressed as a stream, the part the
// stream has buffered. Either way the walk decodes straight from the bytes at
// hand; only the stream's refills and skips go through the bufio.Reader.
type reader struct {
	b    []byte        // the bytes at hand
	off  int           // the next of them
	base int64         // bytes consumed before b[0]
	src  *bufio.Reader // the stream behind b; nil: b is all there is
	err  error         // the stream's error (io.EOF at its end), once it has one
}

// errShort means a record claims more bytes than there are.
var errShort = errors.New("record data ends early")

// pos is the number of bytes consumed so far.
func (r *reader) pos() int64 { return r.base + int64(r.off) }

// peek returns the bytes at hand, at most limit of them, after asking the stream
// for more if fewer than want are at hand. It consumes nothing.
func (r *reader) peek(want int, limit int64) []byte {
	if len(r.b)-r.off < want && r.src != nil {
		r.fill(want)
	}
	p := r.b[r.off:]
	if int64(len(p)) > limit {
		p = p[:limit]
	}
	return p
}

// fill moves the stream past the bytes consumed and holds at least want bytes
// (fewer at the stream's end or error, which it keeps).
func (r *reader) fill(want int) {
	if r.err != nil {
		return
	}
	r.consume()
	if _, err := r.src.Peek(want); err != nil {
		r.err = err
	}
	r.b, _ = r.src.Peek(r.src.Buffered()) // all buffered: reads nothing more
}

// consume tells the stream that the bytes consumed from b are read.
func (r *reader) consume() {
	r.src.Discard(r.off) // buffered bytes: cannot fail
	r.base += int64(r.off)
	r.b, r.off = r.b[r.off:], 0
}

// short is the error of a read that needs more bytes than are at hand: the
// stream's own if it failed, else errShort.
func (r *reader) short() error {
	if r.err != nil {
		return streamErr(r.err)
	}
	return errShort
}

// take consumes n bytes, which the caller has checked belong to the record, and
// returns them. Of a stream it may return nil: only a check reads a stream, and
// what it skips needs not be at hand.
func (r *reader) take(n int64) ([]byte, error) {
	if off := r.off; n <= int64(len(r.b)-off) {
		end := off + int(n)
		r.off = end
		return r.b[off:end:end], nil
	}
	return r.skip(n)
}

// skip is take for bytes not all at hand.
func (r *reader) skip(n int64) ([]byte, error) {
	if r.src == nil {
		return nil, errShort
	}
	n -= int64(len(r.b) - r.off)
	r.off = len(r.b)
	r.consume()
	if r.err != nil {
		return nil, r.short()
	}
	d, err := r.src.Discard(int(n))
	r.base += int64(d)
	r.b = nil
	if err != nil {
		r.err = err
		return nil, streamErr(err)
	}
	return nil, nil
}

// end reports an error unless every byte of the records has been consumed.
func (r *reader) end() error {
	rest := len(r.b) - r.off
	if r.src == nil {
		if rest != 0 {
			return fmt.Errorf("%d bytes after the last record", rest)
		}
		return nil
	}
	if rest != 0 {
		return errors.New("bytes after the last record")
	}
	if r.err != nil {
		if r.err == io.EOF {
			return nil
		}
		return streamErr(r.err)
	}
	r.consume()
	if _, err := r.src.ReadByte(); err == nil {
		return errors.New("bytes after the last record")
	} else if err != io.EOF {
		return streamErr(err)
	}
	return nil
}
