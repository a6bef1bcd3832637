package tailer

import (
	"errors"
	"sync/atomic"
)

// Stats count events of harvesters, for metrics.
type Stats struct {
	LinesSplit  atomic.Int64 // lines longer than the maximum, split
	Rotations   atomic.Int64 // rotated files finished
	Truncations atomic.Int64 // copytruncate rotations seen
	OpenErrors  atomic.Int64 // failures to open a file
	// FormatErrors counts container log lines not in the entry's format (passed on as
	// they are).
	FormatErrors atomic.Int64
	// ClosedInactive counts descriptors closed because their file stopped growing.
	ClosedInactive atomic.Int64
	// Files refused: a symlink the entry does not follow, or not a regular file.
	RefusedSymlinks, RefusedNotRegular atomic.Int64
}

func (s *Stats) refused(e *RefusedError) {
	if e.Reason == ErrSymlink {
		s.RefusedSymlinks.Add(1)
	} else {
		s.RefusedNotRegular.Add(1)
	}
}

// Refused counts a refused path.
func (s *Stats) Refused(err error) {
	if re := (*RefusedError)(nil); errors.As(err, &re) {
		s.refused(re)
	}
}
