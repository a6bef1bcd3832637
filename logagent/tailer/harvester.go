// Package tailer reads log files line by line as they grow, following rotation, and
// hands each file incarnation's lines to a Sink, tracked with the incarnation's
// checkpoint (package checkpoint), which moves the registry offset as Kafka
// acknowledges them.
//
// A Harvester follows one path. It keeps an open file descriptor and reads to the
// end, then polls. When the path names another file (rename + create rotation) it
// first drains the old descriptor to its end, then opens the new file from offset 0.
// When the file shrinks below the read offset (copytruncate rotation) the content is
// a new incarnation: it gets a new file id and is read from 0. The registry entry of
// a file (device, inode, incarnation, fingerprint of its first bytes) tells inode
// reuse from the same file.
package tailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"syscall"
	"time"

	"github.com/logpipe/logpipe/logagent/checkpoint"
	"github.com/logpipe/logpipe/logagent/container"
	"github.com/logpipe/logpipe/logagent/registry"
)

// fingerprintBytes is how much of the start of a file is hashed to recognise it.
const fingerprintBytes = 1024

// FileState is the incarnation of a file being read: what its lines are sent with.
type FileState struct {
	Path   string
	FileID string
	// Checkpoint tracks the lines sent and moves the registry offset as Kafka
	// acknowledges them; it is the producer's acknowledgement callback.
	Checkpoint *checkpoint.File

	key string // registry key
	gen int
}

// Sink takes the lines of one file incarnation; Options.NewSink makes one each time
// the harvester opens a file.
type Sink interface {
	// Send sends a line, tracked with the incarnation's Checkpoint. It may block
	// (back-pressure) and fails only when ctx ends.
	Send(ctx context.Context, l Line) error
	// Idle is called, from the harvester's goroutine, when the file stops growing:
	// the sink may let go of memory it keeps for a busy file.
	Idle()
}

// Options configure a Harvester.
type Options struct {
	Path         string
	FromEnd      bool          // a file seen for the first time starts at its end
	MaxLineBytes int           // longer lines are split
	PollInterval time.Duration // how often a file at its end is checked
	// MaxIdleInterval is how long the polls of a file that stays idle back off to.
	MaxIdleInterval time.Duration
	// Watched, if set, reports whether file system events report every change of
	// the path (its directory is watched on a local file system); the agent then
	// calls Wake on each change, and the polls of an idle file, only a safety net,
	// back off further, to MaxIdleIntervalEvents.
	Watched               func() bool
	MaxIdleIntervalEvents time.Duration
	// CloseInactive, if positive, closes the descriptor of a file that has not grown
	// for this long and whose lines are all acknowledged; the path is then watched
	// with stat, and the file reopened by identity (device, inode) when it grows.
	CloseInactive time.Duration
	// Registry remembers each file's identity; Checkpoints its acknowledged offset
	// (nil: a Checkpointer of Registry).
	Registry    *registry.Registry
	Checkpoints *checkpoint.Checkpointer
	// NewSink returns the sink of a file incarnation's lines.
	NewSink   func(*FileState) Sink
	Multiline *Multiline // nil: every line is an event
	// Decode, if set, decodes each line of a container log (container.ParseCRI or
	// ParseDocker): partial pieces are joined, and the runtime's timestamp and
	// stream kept. A line it cannot decode is passed on as it is.
	Decode func(line []byte) (container.Piece, error)
	Log    *slog.Logger
	Stats  *Stats // optional counters
	// Access says which symlinks of the path may be followed; only regular files are
	// ever read.
	Access Access
	// Open, if set, opens the file instead of Access.Open (tests use it to stand for
	// a slow file system).
	Open func(path string) (*os.File, error)
}

// Multiline joins lines into events, for stack traces: a line that matches Start
// begins an event, and the lines that follow and do not match join it. An event ends at
// the next start line, at MaxLines lines, at the line size limit, or when Timeout passes
// with no new line.
type Multiline struct {
	Start    *regexp.Regexp
	MaxLines int
	Timeout  time.Duration
}

// Harvester follows one path.
type Harvester struct {
	o  Options
	lr *LineReader

	event pendingEvent // multiline: the event being joined
	part  pendingPart  // container logs: the partial line being joined

	f        *os.File
	state    *FileState
	sink     Sink
	lastSize int64       // size at the last truncation check
	lastInfo os.FileInfo // the open file's stat at that check
	fpLen    int         // bytes the registry's fingerprint covers
	timer    *time.Timer // for polls
	wake     chan struct{}

	// inactive: the file was closed by CloseInactive; lastInfo is its stat then.
	inactive   bool
	lastGrowth time.Time // when the file last grew (or was opened)
}

// New returns a harvester for o.Path; Run starts it.
func New(o Options) *Harvester {
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.MaxIdleInterval < o.PollInterval {
		o.MaxIdleInterval = o.PollInterval
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 1 << 20
	}
	if o.Stats == nil {
		o.Stats = &Stats{}
	}
	if o.Checkpoints == nil {
		o.Checkpoints = checkpoint.New(o.Registry, nil)
	}
	return &Harvester{o: o, lr: NewLineReader(nil, 0, o.MaxLineBytes), wake: make(chan struct{}, 1)}
}

// Wake makes the harvester look at its file now rather than at its next poll: the
// agent calls it when the file system reports a change of the path. It never blocks.
func (h *Harvester) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run reads the file until ctx ends, or until the file is deleted and read to its end
// (then it returns nil). Errors opening or reading are logged and retried.
func (h *Harvester) Run(ctx context.Context) error {
	defer func() {
		if h.inactive && h.state != nil {
			h.state.Checkpoint.Close()
		}
	}()
	defer h.closeFile()
	idle := h.o.PollInterval
	for ctx.Err() == nil {
		if h.inactive {
			changed, err := h.changedWhileClosed()
			if errors.Is(err, os.ErrNotExist) {
				return nil // deleted while closed: nothing more to read
			}
			if !changed {
				idle = h.backOff(idle)
				if !h.sleep(ctx, idle) {
					return nil
				}
				continue
			}
			h.inactive = false
			idle = h.o.PollInterval
			h.o.Log.Debug("inactive file changed; reopening", "path", h.o.Path)
			// The path's file (the same or a new one) is held before the old one is let go.
			old := h.state
			err = h.open()
			old.Checkpoint.Close()
			if err != nil {
				h.state = nil
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				h.o.Log.Warn("cannot reopen file", "path", h.o.Path, "err", err)
				return nil
			}
		}
		if h.f == nil {
			if err := h.open(); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				if re := (*RefusedError)(nil); errors.As(err, &re) {
					// Not retried: the agent's next scan looks at the path again.
					h.o.Stats.refused(re)
					h.o.Log.Error("refusing to read file", "path", h.o.Path, "err", err)
					return nil
				}
				h.o.Stats.OpenErrors.Add(1)
				h.o.Log.Warn("cannot read file; retrying", "path", h.o.Path, "err", err)
				if !sleep(ctx, 5*time.Second) {
					return nil
				}
				continue
			}
		}
		before := h.lr.Offset()
		gone, err := h.readToEnd(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.o.Log.Warn("read failed; reopening", "path", h.o.Path, "err", err)
			h.closeFile()
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if gone {
			return nil
		}
		if h.event.lines > 0 && time.Since(h.event.last) >= h.o.Multiline.Timeout {
			if err := h.flushEvent(ctx); err != nil {
				return nil
			}
		}
		// An idle file is polled less and less often, up to MaxIdleInterval; new data
		// brings it back to PollInterval.
		if h.f == nil || h.lr.Offset() != before {
			idle = h.o.PollInterval
			h.lastGrowth = time.Now()
		} else {
			if idle == h.o.PollInterval {
				// The file just stopped growing: give back the memory a busy file uses.
				h.lr.Shrink()
				if h.sink != nil {
					h.sink.Idle()
				}
			}
			idle = h.backOff(idle)
			if h.closeIfInactive() {
				continue
			}
		}
		wait := idle
		if h.o.CloseInactive > 0 && h.f != nil {
			// Polls that back off past MaxIdleInterval still close the file on time.
			if left := h.o.CloseInactive - time.Since(h.lastGrowth); left > 0 {
				wait = min(wait, left)
			} else {
				wait = min(wait, h.o.MaxIdleInterval) // waiting for acknowledgements
			}
		}
		if h.event.lines > 0 {
			wait = min(wait, max(time.Millisecond, h.o.Multiline.Timeout-time.Since(h.event.last)))
		}
		if !h.sleep(ctx, wait) {
			return nil
		}
	}
	return nil
}

// backOff is the poll interval of an idle file after idle: doubling up to
// MaxIdleInterval; or, while events report every change of the file (they wake the
// harvester), MaxIdleIntervalEvents at once, the polls being only a safety net.
func (h *Harvester) backOff(idle time.Duration) time.Duration {
	if h.o.MaxIdleIntervalEvents > h.o.MaxIdleInterval && h.o.Watched != nil && h.o.Watched() {
		return h.o.MaxIdleIntervalEvents
	}
	return min(2*idle, h.o.MaxIdleInterval)
}

// closeIfInactive closes the file when it has not grown for CloseInactive, holds no
// partial line or event, and every line sent is acknowledged.
func (h *Harvester) closeIfInactive() bool {
	if h.o.CloseInactive <= 0 || h.f == nil || time.Since(h.lastGrowth) < h.o.CloseInactive ||
		h.lr.Buffered() > 0 || h.event.lines > 0 || h.part.pieces > 0 || h.state.Checkpoint.Outstanding() > 0 {
		return false
	}
	h.o.Log.Debug("closing inactive file", "path", h.o.Path, "offset", h.lr.Offset())
	h.o.Stats.ClosedInactive.Add(1)
	// The registry entry stays held: the harvester still follows the file.
	h.f.Close()
	h.f = nil
	h.inactive = true
	return true
}

// changedWhileClosed tells whether the path of an inactive file names another file
// or the file's size changed since it was closed.
func (h *Harvester) changedWhileClosed() (bool, error) {
	stat := os.Lstat
	if h.o.Access.FollowSymlinks {
		stat = os.Stat
	}
	fi, err := stat(h.o.Path)
	if err != nil {
		return false, err
	}
	return !os.SameFile(fi, h.lastInfo) || fi.Size() != h.lastInfo.Size() || fi.ModTime() != h.lastInfo.ModTime(), nil
}

// State is the current incarnation, or nil before the file was opened.
func (h *Harvester) State() *FileState { return h.state }

// open opens the path and decides where to start reading it.
func (h *Harvester) open() error {
	open := h.o.Open
	if open == nil {
		open = h.o.Access.Open
	}
	f, err := open(h.o.Path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", h.o.Path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return &RefusedError{Path: h.o.Path, Reason: ErrNotRegular, Mode: fi.Mode()}
	}
	dev, ino := fileID(fi)
	key := registry.Key(dev, ino)
	e, known := h.o.Registry.Get(key)
	switch {
	case !known:
		e = registry.Entry{Dev: dev, Inode: ino}
		if h.o.FromEnd {
			e.Offset = fi.Size()
		}
	case e.Offset > fi.Size():
		h.o.Log.Info("file is shorter than its acknowledged offset: truncated while away; reading it from the start", "path", h.o.Path, "offset", e.Offset, "size", fi.Size())
		e.Gen, e.Offset, e.FPLen, e.FP = e.Gen+1, 0, 0, ""
	case e.FPLen > 0 && fingerprint(f, e.FPLen) != e.FP:
		h.o.Log.Info("inode reused by another file; reading it from the start", "path", h.o.Path)
		e.Gen, e.Offset, e.FPLen, e.FP = e.Gen+1, 0, 0, ""
	}
	e.Path = h.o.Path
	e.FileID = fmt.Sprintf("%x-%x-%d", dev, ino, e.Gen)
	h.refreshFingerprint(f, fi.Size(), &e)
	h.o.Registry.Put(e)
	if _, err := f.Seek(e.Offset, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seek %s to %d: %w", h.o.Path, e.Offset, err)
	}
	h.f, h.lastSize, h.lastGrowth = f, fi.Size(), time.Now()
	h.lr.Reset(f, e.Offset)
	h.state = &FileState{Path: h.o.Path, FileID: e.FileID, key: key, gen: e.Gen,
		Checkpoint: h.o.Checkpoints.Begin(h.o.Path, key, e.Gen, e.Offset)}
	h.sink = h.o.NewSink(h.state)
	h.o.Log.Debug("harvesting", "path", h.o.Path, "file_id", e.FileID, "offset", e.Offset)
	return nil
}

// refreshFingerprint extends the fingerprint while the file is shorter than
// fingerprintBytes, so that it covers as much as exists.
func (h *Harvester) refreshFingerprint(f *os.File, size int64, e *registry.Entry) {
	if e.FPLen < fingerprintBytes && size > int64(e.FPLen) {
		n := int(min(size, fingerprintBytes))
		e.FPLen, e.FP = n, fingerprint(f, n)
	}
	h.fpLen = e.FPLen
}

// readToEnd emits every complete line up to the end of the file, then checks for
// rotation and truncation. gone reports that the file was deleted and is done.
func (h *Harvester) readToEnd(ctx context.Context) (gone bool, err error) {
	if truncated, err := h.truncated(); err != nil {
		return false, err
	} else if truncated {
		return false, nil
	}
	if err := h.readLines(ctx); err != nil {
		return false, err
	}
	fi := h.lastInfo
	if h.fpLen < fingerprintBytes && fi.Size() > int64(h.fpLen) {
		if e, ok := h.o.Registry.Get(h.state.key); ok && e.Gen == h.state.gen {
			h.refreshFingerprint(h.f, fi.Size(), &e)
			h.o.Registry.Put(e)
		}
	}
	stat := os.Lstat // a symlink now at the path is not the file being read
	if h.o.Access.FollowSymlinks {
		stat = os.Stat
	}
	pfi, perr := stat(h.o.Path)
	if perr == nil && os.SameFile(fi, pfi) {
		return false, nil // still the same file: wait for more
	}
	// Rotated (renamed or deleted). Writers may still finish a line on the old
	// descriptor: read once more after a poll interval before letting it go. That
	// read goes to the descriptor's end, not to the size of the stat above: lines
	// written to the renamed file after that stat (a writer's last line before it
	// reopens the path) exist nowhere else.
	if !sleep(ctx, h.o.PollInterval) {
		return false, ctx.Err()
	}
	h.lr.SetLimit(-1)
	if err := h.readLines(ctx); err != nil {
		return false, err
	}
	if l, ok := h.lr.Flush(); ok {
		if err := h.emit(ctx, l); err != nil {
			return false, err
		}
	}
	if err := h.flushPart(ctx); err != nil {
		return false, err
	}
	if err := h.flushEvent(ctx); err != nil {
		return false, err
	}
	h.o.Stats.Rotations.Add(1)
	h.o.Log.Info("file rotated; finished the old one", "path", h.o.Path, "file_id", h.state.FileID, "offset", h.lr.Offset())
	h.closeFile()
	if perr != nil && errors.Is(perr, os.ErrNotExist) {
		return true, nil
	}
	return false, nil
}

// readLines emits every complete line up to the end of what can be read.
func (h *Harvester) readLines(ctx context.Context) error {
	for {
		l, err := h.lr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if l.Split {
			h.o.Stats.LinesSplit.Add(1)
		}
		if err := h.emit(ctx, l); err != nil {
			return err
		}
	}
}

// pendingEvent is a multiline event being joined.
type pendingEvent struct {
	buf          []byte
	offset, next int64
	lines        int
	split        bool
	last         time.Time
	time         time.Time // of the first line (container logs)
	stream       string
}

// pendingPart is a container log line whose partial pieces are being joined.
type pendingPart struct {
	buf          []byte
	offset, next int64
	pieces       int
	time         time.Time
	stream       string
	read         time.Time
}

// emit decodes a container log line (with Decode), joining partial pieces, and hands
// the result on to emitEvent.
func (h *Harvester) emit(ctx context.Context, l Line) error {
	if h.o.Decode == nil {
		return h.emitEvent(ctx, l)
	}
	p, err := h.o.Decode(l.Data)
	if err != nil {
		h.o.Stats.FormatErrors.Add(1)
		if err := h.flushPart(ctx); err != nil {
			return err
		}
		return h.emitEvent(ctx, l) // passed on as it is
	}
	pp := &h.part
	if pp.pieces == 0 {
		pp.buf, pp.offset, pp.time, pp.stream = pp.buf[:0], l.Offset, p.Time, p.Stream
	}
	pp.buf = append(pp.buf, p.Text...)
	pp.pieces++
	pp.next, pp.read = l.Next, l.Read
	if len(pp.buf) > h.o.MaxLineBytes {
		// Longer than a line may be: the first max bytes go as a split piece that
		// ends, for the registry, where this container line starts.
		cut := Line{Data: pp.buf[:h.o.MaxLineBytes], Offset: pp.offset, Next: l.Offset, Split: true, Read: l.Read, Time: pp.time, Stream: pp.stream}
		h.o.Stats.LinesSplit.Add(1)
		if err := h.emitEvent(ctx, cut); err != nil {
			return err
		}
		pp.buf = append(pp.buf[:0], pp.buf[h.o.MaxLineBytes:]...)
		pp.offset = l.Offset
	}
	if p.Partial {
		return nil
	}
	return h.flushPart(ctx)
}

// flushPart emits the line being joined, if any (complete, or cut short by a rotation).
func (h *Harvester) flushPart(ctx context.Context) error {
	pp := &h.part
	if pp.pieces == 0 {
		return nil
	}
	err := h.emitEvent(ctx, Line{Data: pp.buf, Offset: pp.offset, Next: pp.next, Read: pp.read, Time: pp.time, Stream: pp.stream})
	if err == nil {
		pp.pieces = 0
		if cap(pp.buf) > 64<<10 {
			pp.buf = nil
		}
	}
	return err
}

// emitEvent hands a line to the sink, or, with Multiline, joins it to the pending event.
func (h *Harvester) emitEvent(ctx context.Context, l Line) error {
	ml := h.o.Multiline
	if ml == nil {
		return h.sink.Send(ctx, l)
	}
	e := &h.event
	if e.lines > 0 && (ml.Start.Match(l.Data) || e.lines >= ml.MaxLines || len(e.buf)+1+len(l.Data) > h.o.MaxLineBytes) {
		if err := h.flushEvent(ctx); err != nil {
			return err
		}
	}
	if e.lines == 0 {
		e.buf, e.offset, e.split = append(e.buf[:0], l.Data...), l.Offset, l.Split
		e.time, e.stream = l.Time, l.Stream
	} else {
		e.buf = append(append(e.buf, '\n'), l.Data...)
	}
	e.next, e.last = l.Next, time.Now()
	e.lines++
	return nil
}

// flushEvent emits the pending multiline event, if any.
func (h *Harvester) flushEvent(ctx context.Context) error {
	e := &h.event
	if e.lines == 0 {
		return nil
	}
	err := h.sink.Send(ctx, Line{Data: e.buf, Offset: e.offset, Next: e.next, Split: e.split, Time: e.time, Stream: e.stream})
	if err == nil {
		e.lines = 0
	}
	return err
}

// truncated checks, before reading, whether the file was truncated (copytruncate):
// it is shorter than what was read, or, when its size changed, its first bytes are no
// longer those fingerprinted (truncated and refilled past the old offset between two
// polls). Then the registry starts a new incarnation and the file is reopened from 0.
func (h *Harvester) truncated() (bool, error) {
	fi, err := h.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat open file: %w", err)
	}
	read := h.lr.Offset() + int64(h.lr.Buffered())
	cut := fi.Size() < read
	if !cut && fi.Size() != h.lastSize {
		if e, ok := h.o.Registry.Get(h.state.key); ok && e.Gen == h.state.gen && e.FPLen > 0 && fingerprint(h.f, e.FPLen) != e.FP {
			cut = true
		}
	}
	h.lastSize, h.lastInfo = fi.Size(), fi
	h.lr.SetLimit(fi.Size())
	if !cut {
		return false, nil
	}
	h.o.Stats.Truncations.Add(1)
	if err := h.flushPart(context.Background()); err != nil {
		return false, err
	}
	if err := h.flushEvent(context.Background()); err != nil {
		return false, err
	}
	h.o.Log.Info("file truncated; reading it from the start as a new incarnation", "path", h.o.Path, "was", read, "size", fi.Size())
	if e, ok := h.o.Registry.Get(h.state.key); ok && e.Gen == h.state.gen {
		e.Gen, e.Offset, e.FPLen, e.FP = e.Gen+1, 0, 0, ""
		h.o.Registry.Put(e)
	}
	h.closeFile()
	return true, nil
}

func (h *Harvester) closeFile() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
		h.state.Checkpoint.Close()
	}
}

func fingerprint(f *os.File, n int) string {
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return ""
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8])
}

func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

// sleep waits d with the harvester's own timer, or until Wake, or until ctx ends
// (then it returns false). One timer per harvester: idle files poll forever.
func (h *Harvester) sleep(ctx context.Context, d time.Duration) bool {
	if h.timer == nil {
		h.timer = time.NewTimer(d)
	} else {
		h.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		h.timer.Stop()
		return false
	case <-h.wake:
		h.timer.Stop()
		return true
	case <-h.timer.C:
		return true
	}
}

// sleep waits d, or until ctx ends (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
