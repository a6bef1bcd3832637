// Package registry remembers, durably, how far each file has been acknowledged by
// Kafka, so that the agent resumes every file where it left off after a restart or a
// crash, and never reads a line twice or skips one.
package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/logpipe/logpipe/internal/atomicfile"
)

// FileName is the registry's file in the agent's data directory.
const FileName = "registry.json"

// Entry is the state of one file incarnation.
type Entry struct {
	Path   string `json:"path"`    // the path it was last seen at
	Dev    uint64 `json:"dev"`     // device and inode identify the file while it exists
	Inode  uint64 `json:"inode"`   //
	Gen    int    `json:"gen"`     // bumped when the file was truncated (copytruncate)
	FileID string `json:"file_id"` // the record header naming this incarnation
	Offset int64  `json:"offset"`  // every byte below has been acknowledged by Kafka
	// Fingerprint of the first FPLen bytes, to tell inode reuse from the same file.
	FPLen int    `json:"fp_len"`
	FP    string `json:"fp"`
}

// Key identifies a file by device and inode.
func Key(dev, inode uint64) string { return fmt.Sprintf("%d:%d", dev, inode) }

// Registry is the set of entries, saved atomically to one file.
type Registry struct {
	path string

	mu      sync.Mutex
	entries map[string]Entry
	dirty   bool
}

// Open loads the registry from dir, or starts an empty one.
func Open(dir string) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: create %s: %w", dir, err)
	}
	r := &Registry{path: filepath.Join(dir, FileName), entries: map[string]Entry{}}
	data, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if r.entries, err = decode(data); err != nil {
		return nil, fmt.Errorf("registry %s is damaged (%v); move it away to start over, which re-ships every file from the start", r.path, err)
	}
	return r, nil
}

// decode parses a saved registry, checking each entry as the agent writes it.
func decode(data []byte) (map[string]Entry, error) {
	var list []Entry
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, err
	}
	if list == nil {
		return nil, errors.New("want a JSON array of entries")
	}
	entries := make(map[string]Entry, len(list))
	for i, e := range list {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		entries[Key(e.Dev, e.Inode)] = e
	}
	return entries, nil
}

// maxFPLen is the longest fingerprint the tailer takes.
const maxFPLen = 1 << 20

func (e Entry) validate() error {
	switch {
	case e.Path == "" || e.Path[0] != '/':
		return fmt.Errorf("path %q is not absolute", e.Path)
	case e.FileID == "":
		return errors.New("file_id is empty")
	case e.Offset < 0 || e.Gen < 0:
		return fmt.Errorf("offset %d or gen %d is negative", e.Offset, e.Gen)
	case e.FPLen < 0 || e.FPLen > maxFPLen:
		return fmt.Errorf("fp_len %d is out of range", e.FPLen)
	}
	return nil
}

// Get returns the entry of a file.
func (r *Registry) Get(key string) (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[key]
	return e, ok
}

// Put stores an entry.
func (r *Registry) Put(e Entry) {
	r.mu.Lock()
	r.entries[Key(e.Dev, e.Inode)] = e
	r.dirty = true
	r.mu.Unlock()
}

// SetOffset records that every byte of incarnation gen of the file below offset is
// acknowledged. Acknowledgements of an older incarnation (before a truncation) are
// ignored.
func (r *Registry) SetOffset(key string, gen int, offset int64) {
	r.mu.Lock()
	if e, ok := r.entries[key]; ok && e.Gen == gen && offset > e.Offset {
		e.Offset = offset
		r.entries[key] = e
		r.dirty = true
	}
	r.mu.Unlock()
}

// Remove forgets a file.
func (r *Registry) Remove(key string) {
	r.mu.Lock()
	if _, ok := r.entries[key]; ok {
		delete(r.entries, key)
		r.dirty = true
	}
	r.mu.Unlock()
}

// Entries returns every entry, sorted by path.
func (r *Registry) Entries() []Entry {
	r.mu.Lock()
	list := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		list = append(list, e)
	}
	r.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	return list
}

// Save writes the registry if it changed: a temporary file, fsync, rename, fsync of
// the directory, so that a crash leaves either the old or the new registry whole.
func (r *Registry) Save() error {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	list := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		list = append(list, e)
	}
	r.dirty = false
	r.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	data, err := json.MarshalIndent(list, "", " ")
	if err == nil {
		err = atomicfile.Write(r.path, data)
	}
	if err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return fmt.Errorf("registry: save: %w", err)
	}
	return nil
}
