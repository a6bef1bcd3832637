package output

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/logpipe/logpipe/logtransfer/document"
)

// File writes documents as NDJSON, one file per index (<dir>/<index>.ndjson), each
// line the document with its "_id" first. A batch is fsynced before Write returns, so
// the caller may commit. Delivery is at-least-once: a record re-delivered after a crash
// is appended again, with the same _id.
type File struct {
	dir string

	mu    sync.Mutex // Write is called from one goroutine per partition
	files map[string]*os.File
}

// NewFile writes into dir, creating it.
func NewFile(dir string) (*File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}
	return &File{dir: dir, files: map[string]*os.File{}}, nil
}

// Write appends docs to their index files and fsyncs them. A document that is not one
// line is rejected, as by the Elasticsearch sink.
func (f *File) Write(ctx context.Context, docs []document.Doc) ([]Result, error) {
	results := make([]Result, len(docs)) // Stored unless rejected
	bufs := map[string][]byte{}
	for i, d := range docs {
		if !OneLine(d.Body) {
			results[i] = Result{Outcome: Reject, Status: 400, Error: "logpipe: document is not one line of JSON"}
			continue
		}
		b := bufs[d.Index]
		b = append(b, `{"_id":"`...)
		b = append(b, d.ID...)
		b = append(b, '"')
		if len(d.Body) > 2 {
			b = append(b, ',')
		}
		b = append(b, d.Body[1:]...)
		bufs[d.Index] = append(b, '\n')
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for index, b := range bufs {
		fh, err := f.file(index)
		if err != nil {
			return nil, err
		}
		if _, err := fh.Write(b); err != nil {
			return nil, fmt.Errorf("write %s: %w", fh.Name(), err)
		}
		if err := fh.Sync(); err != nil {
			return nil, fmt.Errorf("fsync %s: %w", fh.Name(), err)
		}
	}
	return results, nil
}

func (f *File) file(index string) (*os.File, error) {
	if fh := f.files[index]; fh != nil {
		return fh, nil
	}
	if index == "" || filepath.Base(index) != index || index[0] == '.' {
		return nil, fmt.Errorf("index name %q cannot be a file name", index)
	}
	fh, err := os.OpenFile(filepath.Join(f.dir, index+".ndjson"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", err)
	}
	f.files[index] = fh
	return fh, nil
}

// Close closes the files.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var first error
	for _, fh := range f.files {
		if err := fh.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
