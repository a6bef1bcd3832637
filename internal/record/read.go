package record

import (
	"strings"

	"github.com/IBM/sarama"
)

// Meta is what a record's headers say, as the transfer reads them. Each field is the
// header's value, nil where the record has no such header (records from other
// producers have none).
type Meta struct {
	Host, Path, FileID, Offset []byte
	Stream                     []byte
	Created                    []byte // the agent's read time (Created)
	Dataset, Timezone          []byte
	// Labels are the "fields.<name>" headers, in the order they came.
	Labels []*sarama.RecordHeader
	// A container log's names.
	Pod, Namespace, Container, ContainerID []byte
}

// Read reads the headers of a record once. A header that comes twice counts with its
// last value.
func Read(hs []*sarama.RecordHeader) Meta {
	var m Meta
	for _, h := range hs {
		switch k := string(h.Key); k {
		case Host:
			m.Host = h.Value
		case Path:
			m.Path = h.Value
		case FileID:
			m.FileID = h.Value
		case Offset:
			m.Offset = h.Value
		case Stream:
			m.Stream = h.Value
		case Created:
			m.Created = h.Value
		case Dataset:
			m.Dataset = h.Value
		case Timezone:
			m.Timezone = h.Value
		case PodName:
			m.Pod = h.Value
		case Namespace:
			m.Namespace = h.Value
		case ContainerName:
			m.Container = h.Value
		case ContainerID:
			m.ContainerID = h.Value
		default:
			if strings.HasPrefix(k, FieldPrefix) && len(k) > len(FieldPrefix) {
				m.Labels = append(m.Labels, h)
			}
		}
	}
	return m
}
