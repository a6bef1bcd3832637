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
	"syscall"
	"time"

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
	// Updated is when the entry last changed (Unix seconds), for clean_inactive. In
	// memory, 0 stands for "changed since the last Save", which stamps it: a clock read
	// per acknowledgement costs more than the rest of SetOffset.
	Updated int64 `json:"updated,omitempty"`
}

// Key identifies a file by device and inode.
func Key(dev, inode uint64) string { return fmt.Sprintf("%d:%d", dev, inode) }

// Registry is the set of entries, saved atomically to one file.
type Registry struct {
	path string

	mu      sync.Mutex
	entries map[string]Entry
	dirty   bool
	inUse   map[string]int      // keys held open by harvesters, with how many hold each
	cand    map[string]struct{} // keys let go since the last Clean: maybe forgettable
	changed chan struct{}       // signalled (without blocking) when dirty becomes true
	now     func() time.Time
}

// Open loads the registry from dir, or starts an empty one.
func Open(dir string) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: create %s: %w", dir, err)
	}
	r := &Registry{path: filepath.Join(dir, FileName), entries: map[string]Entry{},
		inUse: map[string]int{}, cand: map[string]struct{}{}, changed: make(chan struct{}, 1), now: time.Now}
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
	e.Updated = r.now().Unix()
	r.entries[Key(e.Dev, e.Inode)] = e
	r.markDirty()
	r.mu.Unlock()
}

// markDirty records a change and signals Changed; r.mu is held.
func (r *Registry) markDirty() {
	r.dirty = true
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Changed is signalled when the registry changes after a Save, or when a file is
// released (see Clean), so that saves can follow acknowledgements closely: one save covers every change made before it
// started (a group commit).
func (r *Registry) Changed() <-chan struct{} { return r.changed }

// Acquire notes that a harvester has the file of key open: its entry is not
// forgotten until Release.
func (r *Registry) Acquire(key string) {
	r.mu.Lock()
	r.inUse[key]++
	r.mu.Unlock()
}

// Release notes that a harvester let the file of key go and every line it sent is
// acknowledged; the next Clean looks at whether the file is gone.
func (r *Registry) Release(key string) {
	r.mu.Lock()
	if r.inUse[key]--; r.inUse[key] <= 0 {
		delete(r.inUse, key)
		r.cand[key] = struct{}{}
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

// Len is the number of entries.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Clean forgets entries no harvester holds: with removed, the ones whose file is no
// longer at the path it was last seen at (deleted, or rotated away); with inactive >
// 0, the ones unchanged for that long. It looks at the entries released since the
// last Clean, or, with all, at every entry (at start and now and then: files deleted
// while the agent was down). Files are examined without the registry's lock. It
// returns how many entries it forgot.
func (r *Registry) Clean(removed bool, inactive time.Duration, all bool) int {
	r.mu.Lock()
	var look []Entry
	if all {
		for k, e := range r.entries {
			if r.inUse[k] == 0 {
				look = append(look, e)
			}
		}
	} else {
		for k := range r.cand {
			if e, ok := r.entries[k]; ok && r.inUse[k] == 0 {
				look = append(look, e)
			}
		}
	}
	clear(r.cand)
	now := r.now()
	r.mu.Unlock()
	var forget []string
	for _, e := range look {
		switch {
		case inactive > 0 && e.Updated != 0 && now.Sub(time.Unix(e.Updated, 0)) > inactive:
			forget = append(forget, Key(e.Dev, e.Inode))
		case removed && !sameFile(e):
			forget = append(forget, Key(e.Dev, e.Inode))
		}
	}
	if len(forget) == 0 {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range forget {
		if _, ok := r.entries[k]; ok && r.inUse[k] == 0 {
			delete(r.entries, k)
			n++
		}
	}
	if n > 0 {
		r.markDirty()
	}
	return n
}

// sameFile reports whether e's file is still at e.Path (or the path cannot be
// examined for another reason than its absence: then it is kept).
func sameFile(e Entry) bool {
	fi, err := os.Stat(e.Path)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == e.Dev && st.Ino == e.Inode
}

// SetOffset records that every byte of incarnation gen of the file below offset is
// acknowledged. Acknowledgements of an older incarnation (before a truncation) are
// ignored.
func (r *Registry) SetOffset(key string, gen int, offset int64) {
	r.mu.Lock()
	if e, ok := r.entries[key]; ok && e.Gen == gen && offset > e.Offset {
		e.Offset = offset
		e.Updated = 0 // stamped by the next Save
		r.entries[key] = e
		r.markDirty()
	}
	r.mu.Unlock()
}

// Remove forgets a file.
func (r *Registry) Remove(key string) {
	r.mu.Lock()
	if _, ok := r.entries[key]; ok {
		delete(r.entries, key)
		r.markDirty()
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
	var now int64
	for k, e := range r.entries {
		if e.Updated == 0 {
			if now == 0 {
				now = r.now().Unix()
			}
			e.Updated = now
			r.entries[k] = e
		}
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
		r.markDirty()
		r.mu.Unlock()
		return fmt.Errorf("registry: save: %w", err)
	}
	return nil
}
