package tailer

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/logagent/registry"
)

// tree is a log directory with every kind of thing a hostile user could put at a
// watched path, and a secret outside it.
type tree struct {
	dir, logs, sub, secret string
}

func newTree(t *testing.T) tree {
	t.Helper()
	dir := t.TempDir()
	tr := tree{dir: dir, logs: filepath.Join(dir, "logs"), secret: filepath.Join(dir, "shadow")}
	tr.sub = filepath.Join(tr.logs, "app")
	must(t, os.MkdirAll(tr.sub, 0o755))
	must(t, os.WriteFile(tr.secret, []byte("root:SECRET:19000::::::\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(tr.sub, "good.log"), []byte("good line\n"), 0o644))
	must(t, os.Symlink(tr.secret, filepath.Join(tr.sub, "evil.log")))
	must(t, syscall.Mkfifo(filepath.Join(tr.sub, "fifo.log"), 0o644))
	must(t, os.Symlink(tr.dir, filepath.Join(tr.logs, "linkdir"))) // a symlinked directory
	ln, err := net.Listen("unix", filepath.Join(tr.sub, "sock.log"))
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	return tr
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestAccessRefusesSymlinksAndNonRegularFiles(t *testing.T) {
	tr := newTree(t)
	strict := Access{Trusted: tr.logs}
	for _, c := range []struct {
		path   string
		access Access
		want   error // nil: opens
	}{
		{filepath.Join(tr.sub, "good.log"), strict, nil},
		{filepath.Join(tr.sub, "evil.log"), strict, ErrSymlink},
		{filepath.Join(tr.sub, "fifo.log"), strict, ErrNotRegular},
		{filepath.Join(tr.sub, "sock.log"), strict, ErrNotRegular},
		{tr.sub, strict, ErrNotRegular},
		{filepath.Join(tr.logs, "linkdir", "shadow"), strict, ErrSymlink}, // a symlinked directory below the trusted one
		{"/dev/null", Access{Trusted: "/dev"}, ErrNotRegular},
		// A symlink in the trusted (literal) part of the path is followed.
		{filepath.Join(tr.logs, "linkdir", "shadow"), Access{Trusted: filepath.Join(tr.logs, "linkdir")}, nil},
		// With FollowSymlinks, symlinks are followed, but only to regular files.
		{filepath.Join(tr.sub, "evil.log"), Access{Trusted: tr.logs, FollowSymlinks: true}, nil},
		{filepath.Join(tr.sub, "fifo.log"), Access{FollowSymlinks: true}, ErrNotRegular},
	} {
		// Check (at glob expansion) and Open (at open time) agree, and neither blocks.
		start := time.Now()
		cerr := c.access.Check(c.path)
		f, oerr := c.access.Open(c.path)
		if f != nil {
			f.Close()
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: took %v", c.path, took)
		}
		for _, err := range []error{cerr, oerr} {
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("%s %+v: err = %v, want %v", c.path, c.access, err, c.want)
			}
			if re := (*RefusedError)(nil); c.want != nil && !errors.As(err, &re) {
				t.Errorf("%s: %v is not a *RefusedError", c.path, err)
			}
		}
	}
	// The file opened is in blocking mode, so reads wait rather than fail with EAGAIN.
	f, err := strict.Open(filepath.Join(tr.sub, "good.log"))
	must(t, err)
	defer f.Close()
	fl, err := fcntlGetfl(f)
	must(t, err)
	if fl&syscall.O_NONBLOCK != 0 {
		t.Fatal("file left in non-blocking mode")
	}
	if _, err := strict.Open(filepath.Join(tr.sub, "missing.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func fcntlGetfl(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fl int
	var ferr error
	rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		fl = int(r)
		if e != 0 {
			ferr = e
		}
	})
	return fl, ferr
}

// A harvester started on a FIFO (the path was replaced after the scan) returns at
// once, counting the refusal, instead of blocking in open forever.
func TestHarvesterRefusesFIFO(t *testing.T) {
	tr := newTree(t)
	reg, _ := registry.Open(t.TempDir())
	var c collected
	var st Stats
	for _, name := range []string{"fifo.log", "evil.log"} {
		h := New(Options{Path: filepath.Join(tr.sub, name), Registry: reg, Log: logging.Discard(), NewSink: sinkOf(c.emit), Stats: &st, Access: Access{Trusted: tr.logs}})
		done := make(chan struct{})
		go func() { h.Run(context.Background()); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the harvester is blocked", name)
		}
	}
	if st.RefusedNotRegular.Load() != 1 || st.RefusedSymlinks.Load() != 1 || len(c.get()) != 0 {
		t.Fatalf("refused %d not regular, %d symlinks; %d lines read", st.RefusedNotRegular.Load(), st.RefusedSymlinks.Load(), len(c.get()))
	}
}

// A watched file replaced by a symlink to a secret (as a rotation would replace it)
// is finished, and the secret is never read.
func TestHarvesterRotationToSymlink(t *testing.T) {
	tr := newTree(t)
	path := filepath.Join(tr.sub, "good.log")
	reg, _ := registry.Open(t.TempDir())
	var c collected
	var st Stats
	h := New(Options{Path: path, PollInterval: 50 * time.Millisecond, Registry: reg, Log: logging.Discard(), NewSink: sinkOf(c.emit), Stats: &st, Access: Access{Trusted: tr.logs}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitLines(t, &c, 1)
	must(t, os.Rename(path, path+".1"))
	must(t, os.Symlink(tr.secret, path))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the harvester keeps running on a symlink")
	}
	for _, l := range c.get() {
		if strings.Contains(string(l.Data), "SECRET") {
			t.Fatalf("shipped the secret: %q", l.Data)
		}
	}
	if st.RefusedSymlinks.Load() != 1 || st.Rotations.Load() != 1 {
		t.Fatalf("refused %d symlinks, %d rotations", st.RefusedSymlinks.Load(), st.Rotations.Load())
	}
}

func waitLines(t *testing.T, c *collected, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.get()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d lines; got %d", n, len(c.get()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
