package tailer

import "sync/atomic"

// Stats count events of harvesters, for metrics.
type Stats struct {
	LinesSplit  atomic.Int64 // lines longer than the maximum, split
	Rotations   atomic.Int64 // rotated files finished
	Truncations atomic.Int64 // copytruncate rotations seen
	OpenErrors  atomic.Int64 // failures to open a file
}
