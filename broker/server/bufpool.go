package server

import (
	"math/bits"
	"sync"
)

// Request frames of Produce requests are recycled: their record batches are
// appended (copied to the log) before the reader decodes the next request, and
// nothing keeps a reference to them afterwards. This saves allocating and
// zeroing megabytes per request at high produce rates.

const (
	minFrameShift  = 16 // 64 KiB
	maxFrameShift  = 24 // 16 MiB
	minPooledFrame = 1 << minFrameShift
	maxPooledFrame = 1 << maxFrameShift
)

// framePools holds buffers by power-of-two capacity class, 64 KiB .. 16 MiB.
var framePools [maxFrameShift - minFrameShift + 1]sync.Pool

// frameClass is the class whose capacity is the smallest power of two >= size.
func frameClass(size int) int {
	return bits.Len(uint(size-1)) - minFrameShift
}

// getFrame returns a buffer of length size, recycled when it is large.
func getFrame(size int) []byte {
	if size < minPooledFrame || size > maxPooledFrame {
		return make([]byte, size)
	}
	c := frameClass(size)
	if b, ok := framePools[c].Get().(*[]byte); ok {
		return (*b)[:size]
	}
	return make([]byte, size, minPooledFrame<<c)
}

// putFrame recycles a buffer from getFrame that nothing references any more.
func putFrame(b []byte) {
	size := cap(b)
	if size < minPooledFrame || size > maxPooledFrame || size&(size-1) != 0 {
		return
	}
	b = b[:size]
	framePools[frameClass(size)].Put(&b)
}
