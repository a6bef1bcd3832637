package discover

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
)

// Event is a file system change a subscriber is told of.
type Event struct {
	Path string // the file or directory that changed
	// Write: the file's content changed (appended to or truncated); otherwise it was
	// created, removed, renamed or had its attributes changed.
	Write bool
	// Overflow: events were lost (the kernel's queue overflowed); every subscriber
	// must rescan and look at every file again. Path is empty.
	Overflow bool
}

// Hub delivers the events of one inotify instance to its subscribers, each of which
// names the directories it watches; a directory two subscribers watch is watched
// once. Without inotify (the instance limit is reached, or the platform has none) a
// Hub works but delivers nothing: its subscribers rely on their polling.
type Hub struct {
	log *slog.Logger
	w   *fsnotify.Watcher // nil: no events

	// Overflows counts event queue overflows (each makes every subscriber rescan);
	// WatchErrors counts directories that could not be watched (polled instead).
	Overflows, WatchErrors atomic.Int64

	mu   sync.Mutex
	dirs map[string]map[*Sub]struct{} // watched directory -> who watches it
	subs map[*Sub]struct{}
	// reliable: directories whose watch was added and that are on a local file
	// system, where every change made on this host is reported.
	reliable map[string]bool
}

// Sub is one subscriber: its callback is called from the hub's goroutine, with the
// hub's lock held, so it must return at once (signal a channel, never block) and must
// not call the hub.
type Sub struct {
	h    *Hub
	fn   func(Event)
	dirs map[string]struct{}
}

// NewHub starts an inotify instance; if that fails, the Hub delivers no events and
// says so in the log.
func NewHub(log *slog.Logger) *Hub {
	h := &Hub{log: log, dirs: map[string]map[*Sub]struct{}{}, subs: map[*Sub]struct{}{}, reliable: map[string]bool{}}
	w, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		log.Warn("file system events unavailable; finding and reading files by polling only", "err", err)
		return h
	}
	h.w = w
	return h
}

// Events reports whether the hub delivers events (inotify works).
func (h *Hub) Events() bool { return h.w != nil }

// Run delivers events until ctx ends, then closes the inotify instance.
func (h *Hub) Run(ctx context.Context) {
	if h.w == nil {
		<-ctx.Done()
		return
	}
	defer h.w.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-h.w.Events:
			if !ok {
				return
			}
			h.dispatch(ev)
		case err, ok := <-h.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				h.Overflows.Add(1)
				h.log.Warn("file system event queue overflowed; rescanning every entry")
				h.broadcast(Event{Overflow: true})
				continue
			}
			h.log.Warn("file system events", "err", err)
		}
	}
}

func (h *Hub) dispatch(ev fsnotify.Event) {
	e := Event{Path: ev.Name, Write: ev.Op == fsnotify.Write}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Events of a file come from its directory's watch; events of a watched
	// directory itself (removed, moved) from its own.
	seen := map[*Sub]bool{}
	for _, d := range []string{filepath.Dir(ev.Name), ev.Name} {
		for s := range h.dirs[d] {
			if !seen[s] {
				seen[s] = true
				s.fn(e)
			}
		}
	}
}

func (h *Hub) broadcast(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.fn(e)
	}
}

// Subscribe adds a subscriber that watches no directory yet.
func (h *Hub) Subscribe(fn func(Event)) *Sub {
	s := &Sub{h: h, fn: fn, dirs: map[string]struct{}{}}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// SetDirs makes dirs the directories s watches, adding and removing inotify watches
// as needed. A directory that cannot be watched is logged and counted; it is found
// by the subscriber's polling. It reports whether a directory was added: what was
// created in it before its watch was in place must be looked for once more.
func (s *Sub) SetDirs(dirs []string) (added bool) {
	h := s.h
	want := make(map[string]struct{}, len(dirs))
	for _, d := range dirs {
		want[d] = struct{}{}
	}
	var add, drop []string
	h.mu.Lock()
	for d := range want {
		if _, ok := s.dirs[d]; ok {
			continue
		}
		s.dirs[d] = struct{}{}
		if h.dirs[d] == nil {
			h.dirs[d] = map[*Sub]struct{}{}
			add = append(add, d)
		}
		h.dirs[d][s] = struct{}{}
	}
	for d := range s.dirs {
		if _, ok := want[d]; ok {
			continue
		}
		delete(s.dirs, d)
		delete(h.dirs[d], s)
		if len(h.dirs[d]) == 0 {
			delete(h.dirs, d)
			drop = append(drop, d)
		}
	}
	for _, d := range drop {
		delete(h.reliable, d)
	}
	h.mu.Unlock()
	if h.w == nil {
		return len(add) > 0
	}
	// Adding a watch that exists is harmless; the map is the truth of who listens.
	for _, d := range add {
		if err := h.w.Add(d); err != nil {
			h.WatchErrors.Add(1)
			h.log.Warn("cannot watch directory; its files are found by polling", "dir", d, "err", err)
			continue
		}
		if local := localFS(d); local {
			h.mu.Lock()
			if _, still := h.dirs[d]; still {
				h.reliable[d] = true
			}
			h.mu.Unlock()
		}
	}
	for _, d := range drop {
		h.mu.Lock()
		_, again := h.dirs[d]
		h.mu.Unlock()
		if !again {
			_ = h.w.Remove(d) // gone already when the directory was removed
		}
	}
	return len(add) > 0
}

// Reliable reports whether every change made on this host to the files of dir is
// reported: dir is watched, and on a local file system (not NFS, SMB, FUSE and the
// like, where other hosts' changes make no event). Then polls are only a safety net
// and may be rare.
func (h *Hub) Reliable(dir string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reliable[dir]
}

// Reliable reports whether every directory s watches is Reliable (and it watches
// at least one): then nothing s looks for can appear without an event.
func (s *Sub) Reliable() bool {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for d := range s.dirs {
		if !h.reliable[d] {
			return false
		}
	}
	return len(s.dirs) > 0
}

// Close unsubscribes s and drops the watches only it held.
func (s *Sub) Close() {
	s.SetDirs(nil)
	s.h.mu.Lock()
	delete(s.h.subs, s)
	s.h.mu.Unlock()
}

// Watched is the number of directories watched, for metrics.
func (h *Hub) Watched() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.dirs)
}
