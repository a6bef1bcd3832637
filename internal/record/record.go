// Package record is the format of the Kafka records that logpipe's agent writes and
// its transfer reads: the names of the record headers and how their values are
// written, and the headers of the transfer's dead-letter copies. It is the one place
// both sides take these names from.
//
// A line's record: the value is the line without its line ending; the key is the
// partition key (see the README); the timestamp is when the agent read the line, or
// the line's own time where the agent knows it (container runtimes); and the headers
// are the ones below, in this order: host, path, offset, file_id, then the entry's
// fields and container names, then split, event.created and stream where they apply.
package record

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zones on hosts and images without a zoneinfo database
)

// Headers of the records the agent writes.
const (
	Host   = "host"    // the agent's host name
	Path   = "path"    // the file's path
	Offset = "offset"  // the line's byte offset in the file, decimal (AppendOffset)
	FileID = "file_id" // the file incarnation (device, inode and a fingerprint)
	// Split is "1" on the parts of a line longer than the agent's max_line_bytes.
	Split = "split"
	// Stream is a container log line's stream: stdout or stderr.
	Stream = "stream"
	// Created is when the agent read the line (AppendTime), where the record's
	// timestamp is the line's own time.
	Created = "event.created"
	// Dataset is the entry's dataset, in ECS's event.dataset form (ValidDataset): it
	// chooses the transfer's parser.
	Dataset = "event.dataset"
	// Timezone is the zone a time written without one means: the entry's
	// "timezone" or the agent host's own zone (an IANA name or ±hh:mm).
	Timezone = "event.timezone"
	// FieldPrefix starts the headers of an entry's static fields, "fields.<name>",
	// indexed under labels.<name>.
	FieldPrefix = "fields."
	// A container log's names, from its path under /var/log/containers.
	PodName       = "kubernetes.pod.name"
	Namespace     = "kubernetes.namespace"
	ContainerName = "container.name"
	ContainerID   = "container.id"
)

// Headers the transfer adds to a record's dead-letter copy.
const (
	DLQError             = "error"              // why the output refused the document
	DLQOriginalTopic     = "original_topic"     // where the record came from
	DLQOriginalPartition = "original_partition" // decimal
	DLQOriginalOffset    = "original_offset"    // decimal
	// DLQTruncated holds the original value's length when the copy had to be cut.
	DLQTruncated = "truncated"
)

// IsDLQHeader reports whether name is one of the headers of a dead-letter copy.
func IsDLQHeader(name string) bool {
	switch name {
	case DLQError, DLQOriginalTopic, DLQOriginalPartition, DLQOriginalOffset, DLQTruncated:
		return true
	}
	return false
}

// Values of the stream and split headers.
const (
	Stdout  = "stdout"
	Stderr  = "stderr"
	SplitOn = "1"
)

// TimeLayout is how time headers (event.created) are written: RFC 3339 in UTC with
// nanoseconds.
const TimeLayout = time.RFC3339Nano

// TimeBytes is the longest value AppendTime writes.
const TimeBytes = len("2006-01-02T15:04:05.000000000Z")

// AppendTime appends t in TimeLayout, in UTC.
func AppendTime(dst []byte, t time.Time) []byte { return t.UTC().AppendFormat(dst, TimeLayout) }

// ParseTime reads a time header's value.
func ParseTime(b []byte) (time.Time, error) {
	if len(b) > 64 {
		return time.Time{}, errors.New("time header too long")
	}
	t, err := time.Parse(TimeLayout, string(b))
	return t.UTC(), err
}

// AppendOffset appends a byte offset in decimal.
func AppendOffset(dst []byte, off int64) []byte { return strconv.AppendInt(dst, off, 10) }

// ParseOffset reads an offset header's value.
func ParseOffset(b []byte) (int64, error) {
	if len(b) > 20 {
		return 0, errors.New("offset header too long")
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// MaxDatasetBytes bounds a dataset's name, as ECS does.
const MaxDatasetBytes = 100

// ValidDataset checks a dataset name: lowercase letters, digits, '_' and '.', at most
// MaxDatasetBytes, not starting or ending with '.'. Such a name is safe in an index or
// data stream name and in a metric label.
func ValidDataset(name string) error {
	if name == "" {
		return errors.New("empty dataset")
	}
	if len(name) > MaxDatasetBytes {
		return fmt.Errorf("dataset is %d bytes, at most %d", len(name), MaxDatasetBytes)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.') {
			return fmt.Errorf("dataset %q: byte %d (%q) is not a lowercase letter, digit, '_' or '.'", name, i, c)
		}
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("dataset %q: starts or ends with '.', or has an empty part", name)
	}
	return nil
}

// MaxZoneBytes bounds a timezone header's value.
const MaxZoneBytes = 64

// ParseZone reads a timezone as the event.timezone header and the entries' "timezone"
// write it: an IANA name ("Europe/Berlin", "UTC") or a fixed offset ("+05:30",
// "-08:00", "Z").
func ParseZone(name string) (*time.Location, error) {
	if name == "" || len(name) > MaxZoneBytes {
		return nil, fmt.Errorf("timezone %q: want an IANA name or ±hh:mm", name)
	}
	if name == "Z" || name == "UTC" {
		return time.UTC, nil
	}
	if c := name[0]; c == '+' || c == '-' {
		if len(name) != 6 || name[3] != ':' {
			return nil, fmt.Errorf("timezone %q: want ±hh:mm", name)
		}
		h, err1 := strconv.Atoi(name[1:3])
		m, err2 := strconv.Atoi(name[4:6])
		if err1 != nil || err2 != nil || h > 14 || m > 59 || name[1] == '+' || name[1] == '-' || name[4] == '+' || name[4] == '-' {
			return nil, fmt.Errorf("timezone %q: want ±hh:mm", name)
		}
		off := h*3600 + m*60
		if c == '-' {
			off = -off
		}
		return time.FixedZone(name, off), nil
	}
	// time.LoadLocation also reads files named by the value: allow only what an
	// IANA name is made of.
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '_' || c == '-' || c == '+') {
			return nil, fmt.Errorf("timezone %q: not an IANA name", name)
		}
	}
	if name[0] == '/' || name == "Local" {
		return nil, fmt.Errorf("timezone %q: not an IANA name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %v", name, err)
	}
	return loc, nil
}
