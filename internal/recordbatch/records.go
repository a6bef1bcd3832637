package recordbatch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Record is one record of a batch. A nil Key or Value is null.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte
	Value          []byte
	Headers        []RecordHeader
}

// RecordHeader is one header of a record.
type RecordHeader struct {
	Key   string
	Value []byte // nil = null
}

// Records calls fn for each record of the batch b, in order, after checking its
// frame (CheckFrame). Compressed records are decompressed into at most
// maxUncompressed bytes. The slices fn sees alias b or a decompression buffer and
// are valid only during the call. Control batches have no records for fn.
func Records(b []byte, maxUncompressed int64, fn func(Record) error) (Header, error) {
	h, err := CheckFrame(b)
	if err != nil {
		return h, err
	}
	if h.IsControl() {
		return h, nil
	}
	raw, err := Decompress(h.Codec(), b[HeaderSize:], maxUncompressed)
	if err != nil {
		return h, fmt.Errorf("%w: %s records: %v", ErrInvalidRecord, h.Codec(), err)
	}
	src := &sliceSource{b: raw}
	for i := int32(0); i < h.NumRecords; i++ {
		rec, err := readRecord(src, i, true)
		if err != nil {
			return h, fmt.Errorf("%w: record %d of %d: %v", ErrInvalidRecord, i, h.NumRecords, err)
		}
		if err := fn(rec); err != nil {
			return h, err
		}
	}
	if err := src.end(); err != nil {
		return h, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	return h, nil
}

// source is the records of a batch, read front to back.
type source interface {
	io.ByteReader
	// take consumes n bytes and returns them if keep (the source may return nil
	// when !keep).
	take(n int64, keep bool) ([]byte, error)
	// pos is the number of bytes consumed so far.
	pos() int64
	// end reports an error unless every byte has been consumed.
	end() error
}

// errShort means a record claims more bytes than there are.
var errShort = errors.New("record data ends early")

// readRecord reads record number i. Each length is checked against the bytes the
// record says it has before anything is skipped or kept.
func readRecord(src source, i int32, keep bool) (Record, error) {
	var r Record
	length, err := readVarint(src, 5)
	if err != nil {
		return r, fmt.Errorf("length: %w", err)
	}
	if length < 6 { // attributes plus five one-byte varints
		return r, fmt.Errorf("length %d is below the minimum of 6", length)
	}
	start := src.pos()
	left := func() int64 { return length - (src.pos() - start) }

	a, err := src.ReadByte()
	if err != nil {
		return r, err
	}
	r.Attributes = int8(a)
	if r.TimestampDelta, err = readVarint(src, 10); err != nil {
		return r, fmt.Errorf("timestampDelta: %w", err)
	}
	od, err := readVarint(src, 5)
	if err != nil {
		return r, fmt.Errorf("offsetDelta: %w", err)
	}
	if od != int64(i) {
		return r, fmt.Errorf("offsetDelta %d, want %d (deltas must be consecutive)", od, i)
	}
	r.OffsetDelta = int32(od)
	if r.Key, err = readBytes(src, left, keep, true); err != nil {
		return r, fmt.Errorf("key: %w", err)
	}
	if r.Value, err = readBytes(src, left, keep, true); err != nil {
		return r, fmt.Errorf("value: %w", err)
	}
	n, err := readVarint(src, 5)
	if err != nil {
		return r, fmt.Errorf("header count: %w", err)
	}
	if n < 0 || n > left()/2 { // a header is at least two bytes
		return r, fmt.Errorf("header count %d with %d bytes left", n, left())
	}
	if keep && n > 0 {
		r.Headers = make([]RecordHeader, 0, n)
	}
	for j := int64(0); j < n; j++ {
		k, err := readBytes(src, left, keep, false)
		if err != nil {
			return r, fmt.Errorf("header %d key: %w", j, err)
		}
		v, err := readBytes(src, left, keep, true)
		if err != nil {
			return r, fmt.Errorf("header %d value: %w", j, err)
		}
		if keep {
			r.Headers = append(r.Headers, RecordHeader{Key: string(k), Value: v})
		}
	}
	if l := left(); l != 0 {
		return r, fmt.Errorf("length %d does not match its fields (%d bytes off)", length, l)
	}
	return r, nil
}

// readBytes reads a varint length and that many bytes, which must fit in what the
// record has left. A length of -1 is null where nullable.
func readBytes(src source, left func() int64, keep, nullable bool) ([]byte, error) {
	n, err := readVarint(src, 5)
	if err != nil {
		return nil, err
	}
	if n == -1 && nullable {
		return nil, nil
	}
	if n < 0 || n > left() {
		return nil, fmt.Errorf("length %d with %d bytes left in the record", n, left())
	}
	b, err := src.take(n, keep)
	if err != nil {
		return nil, err
	}
	if keep && b == nil {
		b = []byte{}
	}
	return b, nil
}

// readVarint reads a zig-zag varint of at most maxBytes bytes (5 for Kafka's
// varint, 10 for its varlong), refusing overlong encodings as Kafka does.
func readVarint(src io.ByteReader, maxBytes int) (int64, error) {
	var u uint64
	for i := 0; i < maxBytes; i++ {
		c, err := src.ReadByte()
		if err != nil {
			return 0, err
		}
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			v := int64(u>>1) ^ -int64(u&1)
			if maxBytes == 5 && (v < -1<<31 || v > 1<<31-1) {
				return 0, errors.New("varint overflows int32")
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("varint longer than %d bytes", maxBytes)
}

// sliceSource reads records held in memory.
type sliceSource struct {
	b   []byte
	off int64
}

func (s *sliceSource) ReadByte() (byte, error) {
	if s.off >= int64(len(s.b)) {
		return 0, errShort
	}
	c := s.b[s.off]
	s.off++
	return c, nil
}

func (s *sliceSource) take(n int64, keep bool) ([]byte, error) {
	if n > int64(len(s.b))-s.off {
		return nil, errShort
	}
	b := s.b[s.off : s.off+n : s.off+n]
	s.off += n
	return b, nil
}

func (s *sliceSource) pos() int64 { return s.off }

func (s *sliceSource) end() error {
	if rest := int64(len(s.b)) - s.off; rest != 0 {
		return fmt.Errorf("%d bytes after the last record", rest)
	}
	return nil
}

// streamSource reads records as a decompressor produces them, without holding
// them all.
type streamSource struct {
	r   *bufio.Reader
	off int64
}

func (s *streamSource) ReadByte() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, streamErr(err)
	}
	s.off++
	return c, nil
}

func (s *streamSource) take(n int64, keep bool) ([]byte, error) {
	if keep {
		panic("recordbatch: streamSource keeps nothing")
	}
	d, err := s.r.Discard(int(n))
	s.off += int64(d)
	if err != nil {
		return nil, streamErr(err)
	}
	return nil, nil
}

func (s *streamSource) pos() int64 { return s.off }

func (s *streamSource) end() error {
	if _, err := s.r.ReadByte(); err == nil {
		return errors.New("bytes after the last record")
	} else if err != io.EOF {
		return streamErr(err)
	}
	return nil
}

func streamErr(err error) error {
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return errShort
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return fmt.Errorf("%w (%v)", errTooLarge(zstdMaxMemory), err)
	}
	return err
}

// ErrTooLarge is what errors.Is finds in an error of records that decompress to more
// than the bound.
var ErrTooLarge = errors.New("records decompress past the bound")

// errTooLarge is reported when records decompress to more than the bound.
type errTooLarge int64

func (e errTooLarge) Error() string {
	return fmt.Sprintf("decompresses to more than %d bytes", int64(e))
}

func (e errTooLarge) Is(target error) bool { return target == ErrTooLarge }

// limitedReader fails (rather than ending quietly) past its limit.
type limitedReader struct {
	r    io.Reader
	left int64
	max  int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Anything more is over the limit; a clean end is fine.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge(l.max)
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// openRecords returns a source over the records of a batch, decompressing as it
// is read, and a function that returns the decompressor to its pool.
func openRecords(codec Codec, src []byte, max int64) (source, func(), error) {
	if codec == None {
		return &sliceSource{b: src}, func() {}, nil
	}
	if codec == Snappy {
		// Snappy's block format states its decoded length, checked against the
		// bound before decoding; its ratio is bounded, so decoding whole is fine.
		raw, err := decodeSnappy(src, max)
		if err != nil {
			return nil, nil, err
		}
		return &sliceSource{b: raw}, func() {}, nil
	}
	r, release, err := decompressor(codec, src, max)
	if err != nil {
		return nil, nil, err
	}
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(&limitedReader{r: r, left: max, max: max})
	return &streamSource{r: br}, func() {
		br.Reset(nil)
		bufioPool.Put(br)
		release()
	}, nil
}

// Decompress returns the records of a batch compressed with codec, refusing to
// produce more than max bytes. For None it returns src itself.
func Decompress(codec Codec, src []byte, max int64) ([]byte, error) {
	switch codec {
	case None:
		return src, nil
	case Snappy:
		return decodeSnappy(src, max)
	}
	r, release, err := decompressor(codec, src, max)
	if err != nil {
		return nil, err
	}
	defer release()
	var out bytes.Buffer
	out.Grow(int(min(max, 4*int64(len(src))+512)))
	if _, err := out.ReadFrom(&limitedReader{r: r, left: max, max: max}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func decodeSnappy(src []byte, max int64) ([]byte, error) {
	// The buffer is as large as the snappy blocks declare (each block starts with
	// its decoded length), which is checked against max first: a claim no larger
	// than the bound, rather than a guess from the compressed size.
	n, err := snappyDecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, errTooLarge(max)
	}
	out, err := xerial.DecodeCapped(make([]byte, 0, n), src)
	if errors.Is(err, xerial.ErrDstTooSmall) {
		return nil, errTooLarge(max)
	}
	return out, err
}

// xerialMagic starts snappy data in the xerial framing (Kafka's Java client): the
// magic, a version and a compatible version (4 bytes each), then blocks, each after
// its length (4 bytes, big-endian). Without the magic, the data is one snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// snappyDecodedLen is the sum of the decoded lengths the snappy blocks of src
// declare, in either framing. It reads only the blocks' headers.
func snappyDecodedLen(src []byte) (int64, error) {
	if len(src) < len(xerialMagic) || !bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return 0, fmt.Errorf("snappy: %w", err)
		}
		return int64(n), nil
	}
	const blocksStart = 16
	if len(src) < blocksStart {
		return 0, errors.New("snappy: short xerial header")
	}
	var total int64
	for pos := blocksStart; pos < len(src); {
		if len(src)-pos < 4 {
			return 0, errors.New("snappy: truncated xerial block length")
		}
		size := int(binary.BigEndian.Uint32(src[pos:]))
		pos += 4
		if size > len(src)-pos {
			return 0, errors.New("snappy: xerial block longer than the data")
		}
		n, err := s2.DecodedLen(src[pos : pos+size])
		if err != nil {
			return 0, fmt.Errorf("snappy: %w", err)
		}
		total += int64(n)
		pos += size
	}
	return total, nil
}

var bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

var (
	gzipPool sync.Pool // *gzip.Reader
	lz4Pool  sync.Pool // *lz4.Reader
	zstdPool sync.Pool // *zstd.Decoder
)

// zstdMaxMemory bounds the memory and window of one zstd decoder.
const zstdMaxMemory = 64 << 20

// decompressor returns a reader of src decompressed with codec and a function
// that returns it to its pool.
func decompressor(codec Codec, src []byte, max int64) (io.Reader, func(), error) {
	switch codec {
	case Gzip:
		zr, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err != nil {
			return nil, nil, err
		}
		zr.Multistream(false)
		return zr, func() { gzipPool.Put(zr) }, nil
	case LZ4:
		zr, _ := lz4Pool.Get().(*lz4.Reader)
		if zr == nil {
			zr = lz4.NewReader(bytes.NewReader(src))
		} else {
			zr.Reset(bytes.NewReader(src))
		}
		return zr, func() { zr.Reset(nil); lz4Pool.Put(zr) }, nil
	case Zstd:
		// A frame's declared content and window sizes are claims: a first frame
		// that declares more than max is refused before any work; the decoder
		// refuses windows above zstdMaxMemory and never allocates more; the
		// caller's bound on the output is applied by the reader around it.
		var h zstd.Header
		if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize > uint64(max) {
			return nil, nil, errTooLarge(max)
		}
		zr, _ := zstdPool.Get().(*zstd.Decoder)
		if zr == nil {
			var err error
			zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(zstdMaxMemory), zstd.WithDecoderMaxWindow(zstdMaxMemory))
			if err != nil {
				return nil, nil, err
			}
		}
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Reset(nil); zstdPool.Put(zr) }, nil
	}
	return nil, nil, fmt.Errorf("unknown compression codec %d", codec)
}
