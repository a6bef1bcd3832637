package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kbin"
)

// recordSlice is a range of a segment file holding whole record batches: the part
// of storage.Slice the Fetch encoder needs.
type recordSlice interface {
	Len() int64
	File() *os.File
	Pos() int64
	ReadAt(dst []byte) error
	Release()
}

// fetchPartition is one partition of a Fetch response.
type fetchPartition struct {
	partition int32
	errorCode int16
	hw        int64
	lso       int64
	logStart  int64
	records   recordSlice // nil: no records
}

// fetchTopic is one topic of a Fetch response.
type fetchTopic struct {
	name       string
	partitions []fetchPartition
}

// fetchFrame is an encoded Fetch response frame whose record bytes stay in the
// segment files: buf holds everything else, and each cut says where in buf a
// slice's bytes belong.
type fetchFrame struct {
	buf  []byte
	cuts []fetchCut
}

type fetchCut struct {
	at int
	s  recordSlice
}

// encodeFetch encodes a Fetch response (versions 4..12) with its response header
// and size prefix, exactly as kmsg.FetchResponse.AppendTo would with the record
// bytes in place, but without copying the records.
func encodeFetch(version int16, corr, throttle int32, errCode int16, sessionID int32, topics []fetchTopic) *fetchFrame {
	flexible := version >= 12
	f := &fetchFrame{buf: make([]byte, 4, 256)}
	b := kbin.AppendInt32(f.buf, corr)
	if flexible {
		b = append(b, 0) // response header tags
	}
	b = kbin.AppendInt32(b, throttle)
	if version >= 7 {
		b = kbin.AppendInt16(b, errCode)
		b = kbin.AppendInt32(b, sessionID)
	}
	b = appendArrayLen(b, len(topics), flexible)
	var total int64
	for _, t := range topics {
		if flexible {
			b = kbin.AppendCompactString(b, t.name)
		} else {
			b = kbin.AppendString(b, t.name)
		}
		b = appendArrayLen(b, len(t.partitions), flexible)
		for _, p := range t.partitions {
			b = kbin.AppendInt32(b, p.partition)
			b = kbin.AppendInt16(b, p.errorCode)
			b = kbin.AppendInt64(b, p.hw)
			b = kbin.AppendInt64(b, p.lso)
			if version >= 5 {
				b = kbin.AppendInt64(b, p.logStart)
			}
			b = appendArrayLen(b, 0, flexible) // aborted transactions: none
			if version >= 11 {
				b = kbin.AppendInt32(b, -1) // preferred read replica
			}
			var n int64
			if p.records != nil {
				n = p.records.Len()
			}
			if flexible {
				b = kbin.AppendUvarint(b, uint32(n)+1)
			} else {
				b = kbin.AppendInt32(b, int32(n))
			}
			if n > 0 {
				f.cuts = append(f.cuts, fetchCut{at: len(b), s: p.records})
				total += n
			}
			if flexible {
				b = append(b, 0) // partition tags
			}
		}
		if flexible {
			b = append(b, 0) // topic tags
		}
	}
	if flexible {
		b = append(b, 0) // response tags
	}
	kbin.AppendInt32(b[:0], int32(int64(len(b)-4)+total))
	f.buf = b
	return f
}

func appendArrayLen(b []byte, n int, flexible bool) []byte {
	if flexible {
		return kbin.AppendCompactArrayLen(b, n)
	}
	return kbin.AppendArrayLen(b, n)
}

// release releases the slices of the frame.
func (f *fetchFrame) release() {
	for _, c := range f.cuts {
		c.s.Release()
	}
	f.cuts = nil
}

// bytes returns the whole frame in memory (tests and the fallback path).
func (f *fetchFrame) bytes() ([]byte, error) {
	var out []byte
	prev := 0
	for _, c := range f.cuts {
		out = append(out, f.buf[prev:c.at]...)
		prev = c.at
		chunk := make([]byte, c.s.Len())
		if err := c.s.ReadAt(chunk); err != nil {
			return nil, err
		}
		out = append(out, chunk...)
	}
	return append(out, f.buf[prev:]...), nil
}

// writeTo writes the frame: the bytes between record sets through bw, each record
// set with sendfile straight from its segment file to the socket when nc is a
// plain socket, else through a pread copy.
func (f *fetchFrame) writeTo(bw *bufio.Writer, nc net.Conn) error {
	prev := 0
	sc, zeroCopy := nc.(syscall.Conn)
	for _, c := range f.cuts {
		if _, err := bw.Write(f.buf[prev:c.at]); err != nil {
			return err
		}
		prev = c.at
		if zeroCopy {
			if err := bw.Flush(); err != nil {
				return err
			}
			if err := sendfile(sc, c.s.File(), c.s.Pos(), c.s.Len()); err != nil {
				return fmt.Errorf("sendfile: %w", err)
			}
			continue
		}
		chunk := make([]byte, c.s.Len())
		if err := c.s.ReadAt(chunk); err != nil {
			return fmt.Errorf("read records: %w", err)
		}
		if _, err := bw.Write(chunk); err != nil {
			return err
		}
	}
	_, err := bw.Write(f.buf[prev:])
	return err
}

// sendfile copies n bytes of f starting at pos to the socket with sendfile(2),
// using an explicit offset so that concurrent fetches of one segment file never
// race on the file's own offset.
func sendfile(dst syscall.Conn, f *os.File, pos, n int64) error {
	rc, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	cerr := fc.Control(func(infd uintptr) {
		err := rc.Write(func(outfd uintptr) bool {
			for n > 0 {
				w, e := syscall.Sendfile(int(outfd), int(infd), &pos, int(min(n, 1<<30)))
				if w > 0 {
					n -= int64(w)
				}
				switch {
				case e == syscall.EAGAIN:
					return false // wait until the socket is writable
				case e == syscall.EINTR:
					continue
				case e != nil:
					werr = e
					return true
				case w == 0:
					werr = io.ErrUnexpectedEOF // the file is shorter than the slice
					return true
				}
			}
			return true
		})
		if werr == nil {
			werr = err
		}
	})
	if cerr != nil {
		return cerr
	}
	return werr
}
