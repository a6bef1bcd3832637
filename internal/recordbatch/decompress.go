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

// streamErr is a decompressing stream's error as a walk reports it: an early end
// is a record cut short, a zstd frame past its memory bound is too large.
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

// openRecords returns a reader of the records of a batch, decompressing as they
// are read, and a function that returns the decompressor to its pool.
func openRecords(codec Codec, src []byte, max int64) (reader, func(), error) {
	switch codec {
	case None:
		return reader{b: src}, func() {}, nil
	case Snappy:
		// Snappy's block format states its decoded length, checked against the
		// bound before decoding; its ratio is bounded, so decoding whole is fine.
		raw, err := decodeSnappy(src, max)
		if err != nil {
			return reader{}, nil, err
		}
		return reader{b: raw}, func() {}, nil
	}
	r, release, err := decompressor(codec, src, max)
	if err != nil {
		return reader{}, nil, err
	}
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(&limitedReader{r: r, left: max, max: max})
	return reader{src: br}, func() {
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
